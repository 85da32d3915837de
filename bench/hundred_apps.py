"""A hundred small static apps on one host: deployed through Slipway's own pipeline (a real
Celery worker, two at a time as scripts/run's worker on 2 cores), then each fetched
through Traefik on its own host name; the time it took, each idle app's memory (its
containers' cgroup, as `docker stats` counts it), the host's memory before and after, and
the dashboard's figures for their owner (bench/dashboard_bench.py's measure(), when it is
there). Everything goes again through Slipway's own delete. Run with
`bench/run --hundred-apps` (`--quick`: 5 apps, to check the bench itself).

Docker's default address pools hold about 30 bridge networks; each app's network has a
subnet of PAAS_NETWORK_POOL instead, so app 31 is where a missing pool would show.
"""

import importlib
import importlib.util
import os
import platform as host
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")
# One user owns all of them (the dashboard's worst case); the default quota is 20 apps.
os.environ.setdefault("PAAS_MAX_APPS_PER_USER", "1000")

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from apps.models import App  # noqa: E402
from bench.summary import record  # noqa: E402
from deployments import services, wiring  # noqa: E402
from deployments.models import FINAL_STATUSES, Deployment  # noqa: E402
from deployments.workers.cleanup import cleanup_app  # noqa: E402
from tests.support import Worker, make_repo, sample_files, through_proxy  # noqa: E402

APPS, QUICK_APPS = 100, 5
PREFIX = "hundred-"
OWNER = "hundred-owner"
DEPLOY_TIMEOUT = 600  # seconds for all of them: the locked run stays under ~12 minutes
CLEANUP_TIMEOUT = 240
IDLE_SECONDS = 10  # after the last request, before their memory is read
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory/docker")
STATUS_TARGET = (500, 50)  # the status partial: req/s at least, p95 ms under
LIST_TARGET = 156  # the apps list: req/s at least (the figure with 5 apps)
WRK_SECONDS, QUICK_WRK_SECONDS = 15, 3  # per page, as bench/dashboard_bench.py runs wrk


def say(text: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def host_memory_used() -> int:
    """Bytes in use on the host: MemTotal - MemAvailable, as `free` reports "used"."""
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = int(value.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]


# --- making and deploying the apps ----------------------------------------------------------


def app_name(index: int) -> str:
    return f"{PREFIX}{index:03d}"


def make_repos(work: Path, count: int) -> dict[str, Path]:
    """One git repository of the static sample per app; its page names its app, so a
    request that Traefik sent to the wrong app does not count as served."""
    repos = {}
    for index in range(1, count + 1):
        name = app_name(index)
        files = sample_files("static")
        files["index.html"] = files["index.html"].replace("static says hello", f"{name} says hello")
        repos[name] = make_repo(work / name, files)
    return repos


def create_and_deploy(owner, repos: dict[str, Path]) -> list[Deployment]:
    """Each app as the dashboard's form makes it, its first deployment queued with it."""
    deployments = []
    for name, repo in repos.items():
        app = services.create_app(owner, {"name": name, "repository": str(repo)}, deploy=True)
        deployments.append(app.deployments.get())
    return deployments


def wait_all_final(deployments: list[Deployment], timeout: float) -> list[Deployment]:
    """The deployments once none is pending or running (or the timeout passed)."""
    ids = [d.pk for d in deployments]
    deadline, last_said = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        current = list(Deployment.objects.filter(pk__in=ids).select_related("app"))
        done = sum(d.status in FINAL_STATUSES for d in current)
        if done == len(ids):
            return current
        if time.monotonic() - last_said > 15:
            say(f"{done} of {len(ids)} deployments final")
            last_said = time.monotonic()
        time.sleep(1)
    return list(Deployment.objects.filter(pk__in=ids).select_related("app"))


def by_app_order(deployments: list[Deployment]) -> list[Deployment]:
    return sorted(deployments, key=lambda d: d.app.name)


def failures(deployments: list[Deployment]) -> list[str]:
    """One line per deployment that did not succeed: which app (its place in the order it
    was made), its status, and what the pipeline said."""
    lines = []
    for place, d in enumerate(by_app_order(deployments), start=1):
        if d.status != "succeeded":
            message = (d.error_message or "").strip().splitlines()[:1]
            lines.append(
                f"app #{place} ({d.app.name}): {d.status}, {d.error_code or '-'}: "
                f"{message[0] if message else '-'} (step {d.step or '-'}, subnet "
                f"{d.app.subnet or 'none'})"
            )
    return lines


def deploy_seconds(deployments: list[Deployment]) -> list[float]:
    """Each deployment's own time, started to finished (its queue wait left out)."""
    return [
        (d.finished_at - d.started_at).total_seconds()
        for d in deployments
        if d.status == "succeeded" and d.started_at and d.finished_at
    ]


# --- serving and memory ---------------------------------------------------------------------


def served(app: App, attempts: int = 3) -> bool:
    """Its page, its own, through Traefik on the app's host name."""
    hostname = app.environment("production").hostname
    for attempt in range(attempts):
        try:
            response = through_proxy(hostname, timeout=5)
            if response.status_code == 200 and f"{app.name} says hello" in response.text:
                return True
        except requests.RequestException:
            pass
        time.sleep(1 + attempt)
    return False


def container_memory(client, container_id: str) -> int:
    """What `docker stats` shows as memory used: the cgroup's usage less its inactive file
    cache (cgroup v1, read directly: the stats API takes a second or two per container)."""
    folder = CGROUP_MEMORY / container_id
    if not folder.is_dir():
        stats = client.api.stats(container_id, stream=False)["memory_stats"]
        return stats["usage"] - stats.get("stats", {}).get("total_inactive_file", 0)
    usage = int((folder / "memory.usage_in_bytes").read_text())
    for line in (folder / "memory.stat").read_text().splitlines():
        key, value = line.split()
        if key == "total_inactive_file":
            return usage - int(value)
    return usage


def app_containers(client, apps: list[App]) -> list[list[str]]:
    """The ids of each app's running containers."""
    found = []
    for app in apps:
        filters = {"label": [f"{k}={v}" for k, v in app.resource_labels.items()]}
        found.append([c["Id"] for c in client.api.containers(filters=filters)])
    return found


def processes() -> dict[int, list[bytes]]:
    """Every process's argv, by pid (one that ended meanwhile is left out)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found[int(proc.name)] = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
    return found


def pss(pid: int) -> int:
    """Proportional set size: shared pages split between the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def shim_memory(container_ids: set[str]) -> int:
    """PSS of the containerd shims of these containers: one process per container, kept
    outside its cgroup, so `docker stats` does not count it."""
    total = 0
    for pid, argv in processes().items():
        if b"containerd-shim" in argv[0] and b"-id" in argv[:-1]:
            if argv[argv.index(b"-id") + 1].decode() in container_ids:
                total += pss(pid)
    return total


def engine_memory() -> dict[str, int]:
    """PSS of dockerd, containerd and Traefik, the processes every app adds to."""
    totals = dict.fromkeys(("dockerd", "containerd", "traefik"), 0)
    for pid, argv in processes().items():
        name = Path(argv[0].decode(errors="replace")).name
        if name in totals:
            totals[name] += pss(pid)
    return totals


# --- the dashboard --------------------------------------------------------------------------


def dashboard_figures(owner, seconds: int) -> tuple[list[dict], str]:
    """bench/dashboard_bench.py's measure(owner) (wrk on the status poll, the apps list and
    an app page, its own gunicorn): its rows, or why there are none."""
    if importlib.util.find_spec("bench.dashboard_bench") is None:
        return [], "bench/dashboard_bench.py does not exist"
    module = importlib.import_module("bench.dashboard_bench")
    if not callable(getattr(module, "measure", None)):
        return [], "bench/dashboard_bench.py has no measure(user)"
    try:
        return list(module.measure(owner, seconds=seconds)), ""
    except Exception as exc:  # its failure is a finding here, not the end of this run
        return [], f"bench/dashboard_bench.py measure() failed: {exc!r}"


# --- removing them --------------------------------------------------------------------------


def remove_apps(names: list[str]) -> list[str]:
    """Slipway's own delete (request_cleanup, done by the worker) for every app; what is
    still there after CLEANUP_TIMEOUT goes through cleanup_app here. Names of apps that
    had to."""
    for app in App.objects.filter(name__in=names):
        for active in app.deployments.exclude(status__in=FINAL_STATUSES):
            services.cancel_deployment(active)
        services.request_cleanup(app)
    deadline = time.monotonic() + CLEANUP_TIMEOUT
    while App.objects.filter(name__in=names).exists() and time.monotonic() < deadline:
        time.sleep(1)
    left = list(App.objects.filter(name__in=names))
    for app in left:
        cleanup_by_hand(app)
    return [app.name for app in left]


def cleanup_by_hand(app: App) -> None:
    app.request_cleanup()
    cleanup_app(app.pk, wiring.runtime(), wiring.router())


def leftovers() -> dict[str, list[str]]:
    """What of the apps is still on the engine or the router: should be nothing."""
    instance = settings.PAAS_INSTANCE
    client = docker.from_env()
    containers = client.api.containers(all=True, filters={"label": f"slipway.instance={instance}"})
    networks = client.api.networks(filters={"label": f"slipway.instance={instance}"})
    return {
        "containers": [c["Names"][0].lstrip("/") for c in containers],
        "app networks": [n["Name"] for n in networks if n["Name"].startswith(f"{instance}-")],
        "routes": wiring.router().route_ids(prefix=f"{instance}-{PREFIX}"),
    }


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    count = QUICK_APPS if "--quick" in sys.argv else APPS
    owner, _ = get_user_model().objects.get_or_create(username=OWNER)
    for stale in App.objects.filter(owner=owner):  # a run that was killed
        cleanup_by_hand(stale)
    work = Path(tempfile.mkdtemp(prefix="slipway-hundred-"))
    names = [app_name(i) for i in range(1, count + 1)]
    memory_before, engine_before = host_memory_used(), engine_memory()
    worker = Worker(work / "worker.log", concurrency=2).start()
    results = {"count": count, "memory_before": memory_before, "engine_before": engine_before}
    failed = False
    try:
        results.update(deploy_and_check(owner, make_repos(work, count)))
        seconds = QUICK_WRK_SECONDS if "--quick" in sys.argv else WRK_SECONDS
        results["dashboard"], results["dashboard_note"] = dashboard_figures(owner, seconds)
    except Exception:  # reported, and the apps still go
        traceback.print_exc()
        failed = True
    finally:
        say("removing the apps")
        results["by_hand"] = remove_apps(names)
        worker.stop()
        results["leftovers"] = leftovers()
        results["memory_cleaned"] = host_memory_used()
        shutil.rmtree(work, ignore_errors=True)
    report(results)
    if failed:
        sys.exit(1)


def deploy_and_check(owner, repos: dict[str, Path]) -> dict:
    say(f"deploying {len(repos)} apps")
    start = time.monotonic()
    queued = create_and_deploy(owner, repos)
    final = by_app_order(wait_all_final(queued, DEPLOY_TIMEOUT))
    total = time.monotonic() - start
    say("checking each through Traefik")
    apps = [d.app for d in final]
    # One that failed to deploy is not served: no need to wait on its retries.
    served_count = sum(served(d.app) for d in final if d.status == "succeeded")
    time.sleep(IDLE_SECONDS)
    client = docker.from_env()
    ids = app_containers(client, apps)
    memory = [sum(container_memory(client, c) for c in per_app) for per_app in ids if per_app]
    return {
        "shims": shim_memory({c for per_app in ids for c in per_app}),
        "engine_with_apps": engine_memory(),
        "total_seconds": total,
        "deploy_seconds": deploy_seconds(final),
        "failures": failures(final),
        "served": served_count,
        "app_memory": memory,
        "memory_with_apps": host_memory_used(),
    }


def mib(value: float) -> float:
    return value / 2**20


def report(r: dict) -> None:
    count = r["count"]
    print(f"Machine: {os.cpu_count()} cores, {host.platform()}, Python {host.python_version()}")
    print(f"\n{count} static apps, one owner, worker concurrency 2.\n")
    if "total_seconds" not in r:
        print("The run stopped before the apps were deployed (see the error above).")
        print_cleanup(r)
        return
    print("| Figure | Value |")
    print("|---|---:|")
    print_deploys(r)
    print_memory(r)
    for line in r["failures"]:
        print(f"\nNot deployed: {line}")
    print_dashboard(r)
    print_cleanup(r)
    record_figures(r)


def print_deploys(r: dict) -> None:
    count, own = r["count"], r["deploy_seconds"]
    print(f"| Deployments succeeded | {len(own)} / {count} |")
    print(f"| Served through Traefik (own page, own host) | {r['served']} / {count} |")
    print(f"| Total, first create to last final | {r['total_seconds']:.1f} s |")
    print(f"| Per app (total / {count}) | {r['total_seconds'] / count:.2f} s |")
    if own:
        print(f"| One deployment, started to finished (median) | {statistics.median(own):.2f} s |")


def print_memory(r: dict) -> None:
    memory = r["app_memory"]
    if memory:
        print(f"| Memory per idle app (median) | {mib(statistics.median(memory)):.1f} MiB |")
        print(f"| Memory per idle app (max) | {mib(max(memory)):.1f} MiB |")
        print(f"| Memory of all {len(memory)} apps (sum) | {mib(sum(memory)):.0f} MiB |")
    shims = mib(r["shims"])
    print(f"| Their containerd shims, outside their cgroups (PSS, sum) | {shims:.0f} MiB |")
    for name, before in r["engine_before"].items():
        after = mib(r["engine_with_apps"][name])
        print(f"| {name} PSS, before → with the apps | {mib(before):.0f} → {after:.0f} MiB |")
    print(f"| Host memory used before | {mib(r['memory_before']):,.0f} MiB |")
    print(f"| Host memory used with the apps | {mib(r['memory_with_apps']):,.0f} MiB |")
    print(f"| Host memory used after removing them | {mib(r['memory_cleaned']):,.0f} MiB |")


def print_dashboard(r: dict) -> None:
    rows = r.get("dashboard") or []
    print(f"\nThe dashboard with {r['count']} apps for their owner:")
    if not rows:
        print(f"not measured: {r.get('dashboard_note') or 'no rows'}")
        return
    print("\n| Page | req/s | p95 (ms) | Failed |\n|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['page']} | {row['requests_per_s']:.0f} | {row['p95_ms']:.1f}"
            f" | {row.get('failed', '?')} |"
        )


def print_cleanup(r: dict) -> None:
    if r.get("by_hand"):
        print(f"\nNot deleted by the worker in {CLEANUP_TIMEOUT} s, cleaned here: {r['by_hand']}")
    left = {what: names for what, names in r.get("leftovers", {}).items() if names}
    print(f"\nLeft after the delete: {left or 'nothing (containers, app networks, routes)'}")


def record_figures(r: dict) -> None:
    count, memory = r["count"], r["app_memory"]
    record(
        f"Static apps served through Traefik, of {count}",
        r["served"],
        "apps",
        f"all {count}",
        r["served"] == count,
    )
    record(
        f"Deploying {count} apps, per app",
        round(r["total_seconds"] / count, 2),
        "s",
        "report",
        True,
    )
    if memory:
        record(
            "Memory per idle static app (median)",
            round(mib(statistics.median(memory)), 1),
            "MiB",
            "report",
            True,
        )
        record(
            f"Memory of {len(memory)} idle static apps",
            round(mib(sum(memory))),
            "MiB",
            "report",
            True,
        )
        shim = round(mib(r["shims"] / len(memory)), 1)
        record("containerd shim per idle static app (PSS)", shim, "MiB", "report", True)
    for row in r.get("dashboard") or []:
        record_dashboard_row(row, count)


def record_dashboard_row(row: dict, count: int) -> None:
    """The status poll's two targets: as fast as it goes, at least so many req/s; at that
    many req/s (dashboard_bench's offered_per_s row, with its "met"), a p95 under so many
    ms. The apps
    list's: as many req/s as with 5 apps before."""
    page, rate, p95 = row["page"], row["requests_per_s"], row["p95_ms"]
    least, under = STATUS_TARGET
    rate_target = p95_target = "report"
    rate_met = p95_met = True
    if row.get("offered_per_s"):
        p95_target = f"< {under} ms at {row['offered_per_s']} req/s"
        p95_met = row["met"]  # dashboard_bench's verdict: the rate kept, the p95 under
    elif "status" in page.lower():
        rate_target, rate_met = f"≥ {least} req/s", rate >= least
    elif "apps list" in page.lower():
        rate_target, rate_met = f"≥ {LIST_TARGET} req/s", rate >= LIST_TARGET
    record(f"Dashboard with {count} apps: {page}", round(rate), "req/s", rate_target, rate_met)
    record(f"Dashboard with {count} apps: {page}, p95", round(p95, 1), "ms", p95_target, p95_met)


if __name__ == "__main__":
    main()
