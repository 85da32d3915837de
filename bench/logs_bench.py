"""Runtime-log page latency from Slipway's store beside Docker's own `since`, at 1 KB,
100 MB and 1 GB of output, at the start, middle and end; then the collector's CPU and
memory while a container prints 10,000 lines a second. Run with `bench/run --logs`.

The store is filled with SQL (generate_series: minutes, not the hour a real app would
take); the Docker side is a real container that printed the same lines. Each page is 200
lines after a cursor, the API's default, timed as the service call the API makes.
"""

import os
import platform as host
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from apps.models import App  # noqa: E402
from bench.summary import record  # noqa: E402
from deployments import wiring  # noqa: E402
from deployments.adapters.runtime import ContainerSpec  # noqa: E402
from deployments.models import RuntimeLogLine  # noqa: E402
from deployments.services import log_store  # noqa: E402
from deployments.workers.networks import ensure_app_network  # noqa: E402

PAGE = 200
LINE = "x" * 90  # with "line NNNNNNNN " about 100 bytes a line
SIZES = {"1 KB": 10, "100 MB": 1_000_000, "1 GB": 10_000_000}
QUICK_SIZES = {"1 KB": 10, "1 MB": 10_000}  # --quick: to check the bench itself
BASE_NS = 1_700_000_000_000_000_000
REPEATS = 5


def median_ms(action) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def fill_store(env, lines: int) -> None:
    """`lines` rows for env, 1 µs apart, by one INSERT … SELECT."""
    RuntimeLogLine.objects.filter(environment=env).delete()
    table = RuntimeLogLine._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (app_id, environment_id, deployment, process, replica,"
            " container, stream, ns, text) SELECT %s, %s, 1, 'web', 1, 'bench', 'stdout',"
            " %s + n::bigint * 1000, 'line ' || lpad(n::text, 8, '0') || ' ' || %s"
            " FROM generate_series(0, %s - 1) AS n",
            [env.app_id, env.pk, BASE_NS, LINE, lines],
        )
        cursor.execute(f"ANALYZE {table}")


def store_pages(env, lines: int) -> dict[str, float]:
    cursor_at = {"start": BASE_NS, "middle": BASE_NS + (lines // 2) * 1000}
    figures = {
        where: median_ms(lambda ns=ns: log_store.page(env, since_ns=ns, limit=PAGE))
        for where, ns in cursor_at.items()
    }
    figures["end"] = median_ms(lambda: log_store.page(env, since_ns=0, limit=PAGE))
    return figures


def docker_container(client, lines: int):
    """A container that printed `lines` lines like the store's (no log cap: Docker's
    default json-file, as a container not started by Slipway has)."""
    program = (
        "import sys\n"
        f"w = sys.stdout.write\nfor n in range({lines}): w(f'line {{n:08d}} {LINE}\\n')\n"
    )
    container = client.containers.run(
        "slipway/python:bookworm", ["python3", "-c", program], detach=True
    )
    container.wait(timeout=1800)
    return container


def docker_pages(client, container, lines: int) -> dict[str, float]:
    """Docker's own: 200 lines after a cursor (`since` in seconds, then skipping to the
    cursor, as Slipway's reader of Docker's logs does), and the end with `tail`. The middle
    cursor is halfway between the container's start and finish."""
    runtime = wiring.runtime()
    state = client.api.inspect_container(container.id)["State"]
    started, finished = _rfc3339(state["StartedAt"]), _rfc3339(state["FinishedAt"])
    middle = (started + finished) // 2
    return {
        "start": median_ms(lambda: runtime.logs(container.id, since_ns=started, limit=PAGE)),
        "middle": median_ms(lambda: runtime.logs(container.id, since_ns=middle, limit=PAGE)),
        "end": median_ms(lambda: runtime.logs(container.id, since_ns=0, limit=PAGE)),
    }


def _rfc3339(stamp: str) -> int:
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def collector_cost(app) -> dict[str, float]:
    """CPU seconds per second and peak RSS of `manage.py paas_collect_logs` while one app
    container prints 10,000 lines a second for 30 s."""
    collector = subprocess.Popen(
        [sys.executable, "manage.py", "paas_collect_logs"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    time.sleep(3)
    before = _cpu_seconds(collector.pid)
    program = (
        "import sys, time\n"
        "for second in range(30):\n"
        "    t = time.monotonic()\n"
        "    for n in range(10000): sys.stdout.write(f'tick {second} {n} " + LINE + "\\n')\n"
        "    sys.stdout.flush(); time.sleep(max(0, 1 - (time.monotonic() - t)))\n"
    )
    printer = _printer(app, program)
    peak, started = 0, time.monotonic()
    while time.monotonic() - started < 32:
        peak = max(peak, _rss_bytes(collector.pid))
        time.sleep(0.5)
    cpu = _cpu_seconds(collector.pid) - before
    stored = RuntimeLogLine.objects.filter(app=app, text__startswith="tick").count()
    collector.terminate()
    collector.wait(timeout=30)
    wiring.runtime().remove(printer)
    return {"cpu_per_second": cpu / (time.monotonic() - started), "rss": peak, "stored": stored}


def _printer(app, program: str) -> str:
    runtime = wiring.runtime()
    ensure_app_network(app, runtime)
    spec = ContainerSpec(
        name="slipwaybench-logprinter",
        image="slipway/python:bookworm",
        env={},
        port=5000,
        labels={
            **app.resource_labels,
            "slipway.environment": "production",
            "slipway.process": "web",
            "slipway.deployment": "1",
        },
        network=app.network,
        memory="256m",
        cpus=1.0,
        command=["python3", "-c", program],
        restart=False,
    )
    runtime.remove(spec.name)
    return runtime.start(spec)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    App.objects.filter(name="logbench").delete()
    app = App.objects.create(name="logbench", owner=owner, repository="https://example.com/x.git")
    env = app.environment("production")
    client = docker.from_env()
    rows = []
    sizes = QUICK_SIZES if "--quick" in sys.argv else SIZES
    for label, lines in sizes.items():
        fill_store(env, lines)
        ours = store_pages(env, lines)
        container = docker_container(client, lines)
        try:
            theirs = docker_pages(client, container, lines)
        finally:
            container.remove(force=True)
        for where in ("start", "middle", "end"):
            rows.append((label, where, ours[where], theirs[where]))
        print(f"# {label}: done", file=sys.stderr, flush=True)
    RuntimeLogLine.objects.filter(environment=env).delete()
    cost = collector_cost(app)
    # The printer's network goes with the app, as Slipway's own cleanup removes an app's
    # (bench/hundred_apps.py checks that none is left behind).
    wiring.runtime().remove_network(app.network)
    app.delete()
    print_table(rows, cost)


def print_table(rows, cost) -> None:
    print(f"Machine: {os.cpu_count()} cores, {host.platform()}, Python {host.python_version()}")
    print()
    print("| Output | Cursor at | Slipway's store (ms) | Docker's `since`/`tail` (ms) | Ratio |")
    print("|---|---|---:|---:|---:|")
    for label, where, ours, theirs in rows:
        ratio = theirs / ours if ours else float("inf")
        print(f"| {label} | {where} | {ours:.1f} | {theirs:.1f} | {ratio:.1f}× faster |")
        figure = f"Runtime-log page, {label} of output, cursor at the {where}"
        record(figure, ours, "ms", "< 50 ms", ours < 50, theirs, "Docker's since/tail")
    print()
    print(
        f"Collector at 10,000 lines/s for 30 s: {cost['cpu_per_second'] * 100:.0f} % of one core,"
        f" peak RSS {cost['rss'] / 2**20:.0f} MiB, {cost['stored']:,} of 300,000 lines stored."
    )


if __name__ == "__main__":
    main()
