"""Idle memory of Slipway's own processes, as scripts/run starts them: the proportional set
size (PSS) of each process tree, beside a bare django.setup() and an empty Celery worker.
Run with `bench/run --memory` (`--idle SECONDS` to check the benchmark itself quickly).

The processes are started by scripts/lib.sh's exec_web, exec_worker (with beat in a thread
of it) and exec_collector, the functions scripts/run starts them with, so the command lines
and options are the platform's own. Once all are ready, one signed-in request to the dashboard
(as a user would open it), then IDLE_SECONDS of idling (beat sends the warden's rounds and
the worker runs them), then each tree's PSS from /proc/<pid>/smaps_rollup. PSS counts a
page shared by N processes as 1/N in each, so the figures add up: the sum is what the
processes cost the machine together. The baselines run afterwards, alone, for the same
idle time, so that neither side shares the other's pages.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402

from bench.summary import record  # noqa: E402
from paas.celery import app as celery_app  # noqa: E402

IDLE_SECONDS = 30
READY_SECONDS = 180
TARGET_MIB = 300  # web + worker + beat, from the issue (before: about 434; Dokploy: 464 MiB)
USER = "memory-bench"
# Beat is a thread of the worker (paas/celery.py's BeatThread): one tree for both.
WORKER = "worker (with beat)"
TOTAL = "web + worker + beat"

EMPTY_CELERY_APP = """\
import os

from celery import Celery

# No tasks, no Django: what Celery's worker costs by itself.
app = Celery("empty", broker=os.environ["REDIS_URL"])
"""
DJANGO_ONLY = "import django, time; django.setup(); print('ready', flush=True); time.sleep(3600)"


@dataclass
class Part:
    """One of the measured process trees, started in a session of its own."""

    name: str
    process: subprocess.Popen
    log: Path
    in_total: bool = True
    processes: list[dict] = field(default_factory=list)

    @property
    def pss_mib(self) -> float:
        return sum(p["pss"] for p in self.processes) / 1024

    @property
    def rss_mib(self) -> float:
        return sum(p["rss"] for p in self.processes) / 1024


# --- starting and stopping ------------------------------------------------------------------


def start(name: str, argv: list[str], log: Path, env=None, cwd=ROOT, in_total=True) -> Part:
    """argv in a new session (so that stopping it stops its children too), output to log."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Part(name, process, log, in_total)


def start_platform_process(name: str, function: str, *args: str, log: Path, **kw) -> Part:
    """One of scripts/lib.sh's exec_* functions: bash execs into the process itself."""
    script = f'set -euo pipefail; source "{ROOT}/scripts/lib.sh"; "$@"'
    return start(name, ["bash", "-c", script, "bash", function, *args], log, **kw)


def stop(parts: list[Part]) -> None:
    """TERM to each part's session (a worker finishes its task first), then KILL what is
    left after 60 s: nothing this benchmark started outlives it."""
    for part in parts:
        _signal_group(part.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    for part in parts:
        try:
            part.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for part in parts:
        _signal_group(part.process.pid, signal.SIGKILL)
        part.process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


# --- readiness ------------------------------------------------------------------------------


def wait_for(what: str, ready, parts: list[Part]) -> None:
    """Poll ready() until it holds; a part that exits meanwhile fails the benchmark."""
    deadline = time.monotonic() + READY_SECONDS
    while not ready():
        for part in parts:
            if part.process.poll() is not None:
                raise SystemExit(f"{part.name} exited ({part.process.returncode}):\n{tail(part)}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready within {READY_SECONDS} s")
        time.sleep(0.5)


def tail(part: Part, lines: int = 30) -> str:
    return "\n".join(part.log.read_text(errors="replace").splitlines()[-lines:])


def logged(part: Part, text: str):
    return lambda: text in part.log.read_text(errors="replace")


def listening(port: int):
    def ready() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    return ready


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_pool(app) -> dict:
    """The running worker's pool, from its own stats: implementation, size and pids."""
    replies = app.control.inspect(timeout=1).stats() or {}
    return next(iter(replies.values()), {}).get("pool", {})


def pool_name(implementation: str) -> str:
    """`celery worker --pool`'s name for a pool class: celery.concurrency.prefork:TaskPool."""
    module = implementation.split(":")[0].rsplit(".", 1)[-1]
    return {"thread": "threads"}.get(module, module)


def open_dashboard(port: int) -> int:
    """The dashboard's home page as a signed-in user sees it: one request, its status."""
    user, _ = get_user_model().objects.get_or_create(username=USER)
    browser = Client()
    browser.force_login(user)
    cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
    url = f"http://127.0.0.1:{port}/"
    request = urllib.request.Request(
        url,
        headers={
            "Host": settings.PAAS_PUBLIC_HOST,
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        if response.url != url:  # sent to sign in: not the page a signed-in user sees
            raise SystemExit(f"the dashboard sent the signed-in user to {response.url}")
        return response.status


# --- memory ---------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """pid and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        # The name, field 2, is in parentheses and may hold spaces: fields after its end.
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def memory_kib(pid: int) -> dict | None:
    """Pss and Rss (KiB) of one process, and what its command line is (None: it is gone, or a
    zombie, whose smaps_rollup is empty)."""
    try:
        return _memory_kib(pid)
    except (OSError, KeyError):
        return None


def _memory_kib(pid: int) -> dict:
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    fields = {line.split(":")[0]: line.split()[1] for line in rollup.splitlines()[1:]}
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return {
        "pid": pid,
        "pss": int(fields["Pss"]),
        "rss": int(fields["Rss"]),
        "private": int(fields["Private_Clean"]) + int(fields["Private_Dirty"]),
        "command": b" ".join(argv).decode(errors="replace").strip()[:70],
    }


def measure(parts: list[Part]) -> None:
    for part in parts:
        found = (memory_kib(pid) for pid in tree(part.process.pid))
        part.processes = [process for process in found if process]


# --- the two runs ---------------------------------------------------------------------------


def run_platform(logs: Path, idle: int) -> tuple[list[Part], dict]:
    """web, the worker with its beat thread and the log collector as scripts/run starts
    them, measured idle."""
    port = free_port()
    schedule = str(logs / "celerybeat-schedule")
    parts = [
        start_platform_process("web", "exec_web", f"127.0.0.1:{port}", log=logs / "web.log"),
        start_platform_process(WORKER, "exec_worker", schedule, log=logs / "worker.log"),
        start_platform_process(
            "log collector", "exec_collector", log=logs / "collector.log", in_total=False
        ),
    ]
    try:
        web, worker, collector = parts
        wait_for("web", listening(port), parts)
        wait_for("worker", lambda: worker_pool(celery_app).get("max-concurrency"), parts)
        wait_for("beat", logged(worker, "beat: Starting"), parts)
        wait_for("log collector", logged(collector, "log collector running"), parts)
        pool = worker_pool(celery_app)
        status = open_dashboard(port)
        if status != 200:
            raise SystemExit(f"the dashboard answered {status}:\n{tail(web)}")
        time.sleep(idle)
        measure(parts)
    finally:
        stop(parts)
    return parts, pool


def run_baselines(logs: Path, idle: int, pool: dict) -> list[Part]:
    """A bare django.setup() with the same settings, and an empty Celery worker with the
    platform worker's pool and concurrency; alone, measured after the same idle time."""
    (logs / "empty_celery.py").write_text(EMPTY_CELERY_APP)
    without_django = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # Celery's Django fixup sets Django up whenever DJANGO_SETTINGS_MODULE is set.
    empty_worker = [
        str(ROOT / ".venv/bin/celery"),
        "-A",
        "empty_celery",
        "worker",
        "-l",
        "info",
        "--pool",
        pool_name(pool["implementation"]),
        "--concurrency",
        str(pool["max-concurrency"]),
        # A queue of its own: tasks the platform's beat left in the default queue are not its.
        "--queues",
        "memory-bench-empty",
    ]
    parts = [
        start("bare django.setup()", [sys.executable, "-c", DJANGO_ONLY], logs / "django.log"),
        start(
            "empty Celery worker",
            empty_worker,
            logs / "empty-worker.log",
            env={**without_django, "PYTHONPATH": str(logs)},
            cwd=logs,
        ),
    ]
    try:
        wait_for("bare django.setup()", logged(parts[0], "ready"), parts)
        wait_for("empty Celery worker", logged(parts[1], "ready."), parts)
        time.sleep(idle)
        measure(parts)
    finally:
        stop(parts)
    return parts


# --- report ---------------------------------------------------------------------------------


def summary_table(platform: list[Part], baselines: list[Part]) -> str:
    total = sum(p.pss_mib for p in platform if p.in_total)
    lines = [
        "| Process tree | Processes | PSS (MiB) | RSS (MiB) |",
        "|---|---:|---:|---:|",
    ]
    for part in platform:
        lines.append(_row(part.name, part))
    lines.append(f"| **{TOTAL}** | | **{total:.1f}** | |")
    for part in baselines:
        lines.append(_row(f"baseline: {part.name}", part))
    return "\n".join(lines)


def _row(name: str, part: Part) -> str:
    return f"| {name} | {len(part.processes)} | {part.pss_mib:.1f} | {part.rss_mib:.1f} |"


def process_table(parts: list[Part]) -> str:
    lines = [
        "| Tree | PID | PSS (MiB) | Private (MiB) | RSS (MiB) | Command |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for part in parts:
        for p in part.processes:
            lines.append(
                f"| {part.name} | {p['pid']} | {p['pss'] / 1024:.1f} | {p['private'] / 1024:.1f}"
                f" | {p['rss'] / 1024:.1f} | `{p['command']}` |"
            )
    return "\n".join(lines)


def record_figures(platform: list[Part], baselines: list[Part]) -> None:
    by_name = {p.name: p for p in platform + baselines}
    django_only = by_name["bare django.setup()"].pss_mib
    empty_worker = by_name["empty Celery worker"].pss_mib
    total = sum(p.pss_mib for p in platform if p.in_total)
    met = total < TARGET_MIB
    record(
        f"Idle memory: {TOTAL} (PSS)",
        round(total, 1),
        "MiB",
        f"< {TARGET_MIB} MiB",
        met,
        round(django_only + empty_worker, 1),
        "bare django.setup() + empty Celery worker",
    )
    in_total = f"in the total's {TARGET_MIB} MiB"
    baseline_of = {
        "web": (django_only, "bare django.setup()"),
        WORKER: (empty_worker, "empty Celery worker"),
        "log collector": (django_only, "bare django.setup()"),
    }
    for part in platform:
        baseline, name = baseline_of[part.name]
        record(
            f"Idle memory: {part.name} (PSS)",
            round(part.pss_mib, 1),
            "MiB",
            in_total if part.in_total else "– (not in the total)",
            met if part.in_total else True,
            round(baseline, 1),
            name,
        )


def tasks_run(worker: Part) -> int:
    """How many tasks the worker ran, from its log: beat's rounds reached it."""
    return worker.log.read_text(errors="replace").count(" succeeded in ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=IDLE_SECONDS, help="seconds idle")
    idle = parser.parse_args().idle
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as tmp:
        logs = Path(tmp)
        platform, pool = run_platform(logs, idle)
        ran = tasks_run(platform[1])
        baselines = run_baselines(logs, idle, pool)
    total = sum(p.pss_mib for p in platform if p.in_total)
    print(f"Idle memory after {idle} s, one dashboard request ({os.cpu_count()} cores);")
    print(f"the worker ran {ran} tasks meanwhile (beat's rounds)\n")
    print(summary_table(platform, baselines))
    verdict = "met" if total < TARGET_MIB else "missed"
    print(f"\nTarget: {TOTAL} < {TARGET_MIB} MiB: {verdict}")
    print("\n" + process_table(platform + baselines))
    record_figures(platform, baselines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
