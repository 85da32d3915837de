"""Upgrade in place: an installation on an older commit of main, three apps serving under
load, upgraded the way a user does it: `git pull`, then the README's run command again.

1. Clones this repository, resets the clone's main to an older commit (default HEAD~20; one
   whose migrations differ from HEAD's) and starts it with `scripts/run` in the background
   (its own session and log), as an installation of its own: the instance, database, Redis
   db and ports bench/run --upgrade exports. The clone's venv is a thin one: its .pth files
   put the clone itself (as `pip install -e` would) and this checkout's installed packages
   on the path, and its stamp says installed, so scripts/run's ensure_venv has nothing to do
   (pyproject.toml must be the same at both commits; the run says so if not).
2. Deploys three apps from local repositories through the clone's own code (`manage.py
   shell`: the same use case the API calls): whoami (a Dockerfile), static and node, and
   waits until each answers through the clone's Traefik.
3. Starts zero_downtime's load (keep-alive and new-connection clients) on all three, runs
   `git pull` in the clone (a fast-forward to main) and `scripts/run` again, and keeps the
   load until the new run is up (its dashboard answers, the worker is ready), no migration
   is unapplied, and UPGRADE_SETTLE_SECONDS more.
4. Reports requests and failures per app, the upgrade's duration and the migrations it
   applied; then runs `scripts/run` once more under load and checks it changes nothing: no
   migration, the same app containers (id and start time), the same routes (the route files
   and Traefik's routers and services), every app serving, no failed request.
5. Tears down what it made, on failure too: its runs, containers, networks, volumes and
   images with its instance's name, its egress rules, its Traefik, database and Redis db.

`--old REV` picks the older commit. `--uncommitted [PATHSPEC ...]` pulls from a copy of main
with this working tree's uncommitted changes of those paths (all tracked files if none)
committed on top of HEAD, to try a fix before it is committed.

Run with `bench/run --upgrade`.
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This process's Django only (its clients read the proxy port); the clone's runs make their own.
os.environ.setdefault("SECRET_KEY", "upgrade-bench-only")
os.environ.setdefault("PAAS_ENCRYPTION_KEY", "w3Ekc3colzx9dP95Iu0w7FQ-geDmQWe_wvBzY6nXuZg=")

import docker  # noqa: E402
import zero_downtime as zd  # noqa: E402  (sets Django up)
from deploy_bench import machine  # noqa: E402

from tests.support import make_repo, sample_files  # noqa: E402

INSTANCE = os.environ["PAAS_INSTANCE"]
DATABASE = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
REDIS_DB = os.environ["REDIS_URL"].rsplit("/", 1)[1]
HTTP_PORT = int(os.environ["PAAS_PROXY_HTTP_PORT"])
API_PORT = int(os.environ["PAAS_ROUTER_API_PORT"])
DASHBOARD_HOST = os.environ.get("PAAS_DOMAIN", "localhost")
CHILD_ENV_DROP = ("SECRET_KEY", "PAAS_ENCRYPTION_KEY", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")

DEFAULT_OLD = "HEAD~20"
KEEP_ALIVE_CLIENTS = 4  # per app: three apps share the 2 cores
NEW_CONNECTION_CLIENTS = 4
UPGRADE_SETTLE_SECONDS = 10.0
LEAD_IN_SECONDS = 2.0
START_TIMEOUT = 600.0
SERVE_TIMEOUT = 300.0
RUNNING = "Slipway is running at"
APPLYING = re.compile(r"^\s*Applying (\S+)\.\.\.", re.M)


def sh(*args, cwd=None, env=None, check=True) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def git(*args, cwd=ROOT) -> str:
    return sh("git", *args, cwd=cwd).strip()


def psql(sql: str) -> str:
    return sh("runuser", "-u", "postgres", "--", "psql", "-X", "-tAc", sql)


# --- the clone ---------------------------------------------------------------------------------


@dataclass
class Installation:
    work: Path
    clone: Path = field(init=False)
    env: dict = field(init=False)
    runs: list = field(default_factory=list)  # (Popen, log path)

    def __post_init__(self):
        self.clone = self.work / "slipway"
        self.env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROP}
        self.env["PYTHONUNBUFFERED"] = "1"

    @property
    def python(self) -> Path:
        return self.clone / ".venv" / "bin" / "python"

    @property
    def var(self) -> Path:
        return self.clone / "var"

    def manage(self, *args, check=True) -> str:
        """With the settings file scripts/run wrote (the environment wins, as there)."""
        env = dict(self.env)
        settings_file = self.var / "slipway.env"
        lines = settings_file.read_text().splitlines() if settings_file.exists() else []
        for line in lines:
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env.setdefault(key, value)
        return sh(self.python, "manage.py", *args, cwd=self.clone, env=env, check=check)

    def shell(self, code: str) -> dict:
        out = self.manage("shell", "-c", code)
        return json.loads(out.strip().splitlines()[-1])

    def start_run(self) -> tuple[subprocess.Popen, Path, int]:
        """scripts/run in the background, in its own session, with its own log; the worker
        log's size, to find its 'ready' line."""
        log = self.work / f"run-{len(self.runs) + 1}.log"
        worker_log = self.var / "log" / "worker.log"
        offset = worker_log.stat().st_size if worker_log.exists() else 0
        with log.open("wb") as handle:
            run = subprocess.Popen(
                [str(self.clone / "scripts" / "run")],
                cwd=self.clone,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.runs.append((run, log))
        return run, log, offset

    def wait_up(self, run: subprocess.Popen, log: Path, worker_offset: int) -> None:
        """Its 'running' line, its worker ready, and its dashboard answering through Traefik."""
        worker_log = self.var / "log" / "worker.log"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if run.poll() is not None:
                raise RuntimeError(
                    f"scripts/run exited with {run.returncode}:\n{tail(log)}\n"
                    f"(another run of this installation still up: {self.other_runs(run)})"
                )
            text = log.read_text(errors="replace")
            worker = worker_log.read_bytes()[worker_offset:] if worker_log.exists() else b""
            if RUNNING in text and b" ready." in worker and dashboard_answers():
                return
            time.sleep(0.2)
        raise RuntimeError(f"scripts/run did not come up in {START_TIMEOUT:g} s:\n{tail(log)}")

    def other_runs(self, run) -> list[int]:
        return [r.pid for r, _ in self.runs if r is not run and r.poll() is None]

    def dashboard_owner(self) -> int | None:
        """Which of our runs serves the dashboard: the one among the ancestors of what
        listens on its port (gunicorn's master and workers)."""
        port = os.environ["PAAS_DASHBOARD_UPSTREAM"].rsplit(":", 1)[1]
        ours = {run.pid for run, _ in self.runs}
        for pid in re.findall(r"pid=(\d+)", sh("ss", "-Hltnp", f"sport = :{port}", check=False)):
            for _ in range(4):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    break
                pid = re.search(r"^PPid:\s*(\d+)", status, re.M).group(1)
                if int(pid) in ours:
                    return int(pid)
        return None

    def took_over(self, previous: subprocess.Popen, run: subprocess.Popen) -> list[str]:
        """What is wrong if the new run did not replace the previous one."""
        problems = []
        if previous.poll() is None:
            problems.append(f"the previous run (pid {previous.pid}) still runs")
        if run.poll() is not None:
            problems.append(f"the new run exited with {run.returncode}")
        owner = self.dashboard_owner()
        if owner != run.pid:
            problems.append(f"the dashboard is served by pid {owner}'s gunicorn, not the new run's")
        return problems

    def unapplied(self) -> list[str]:
        plan = self.manage("showmigrations", "--plan")
        return [line.split()[-1] for line in plan.splitlines() if line.startswith("[ ]")]


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def older_commit(rev: str) -> str:
    old = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    changed = git("diff", "--name-only", old, "HEAD", "--", "*/migrations/*")
    if not changed:
        raise RuntimeError(f"{rev} has HEAD's migrations: pick an older one (--old)")
    return old


def upstream_with_uncommitted(work: Path, pathspecs: list[str]) -> Path:
    """A copy of main with the working tree's uncommitted changes of `pathspecs` committed."""
    upstream = work / "upstream"
    git("clone", "-q", "--no-hardlinks", str(ROOT), str(upstream))
    diff = sh("git", "diff", "--binary", "HEAD", "--", *pathspecs, cwd=ROOT)
    if not diff:
        raise RuntimeError(f"no uncommitted changes in {pathspecs or 'the working tree'}")
    subprocess.run(["git", "apply", "--index"], input=diff, text=True, cwd=upstream, check=True)
    git(
        "-c", "user.name=bench", "-c", "user.email=bench@localhost",
        "commit", "-q", "-m", "uncommitted changes (bench/upgrade.py)", cwd=upstream,
    )  # fmt: skip
    return upstream


def requirements_hash(root: Path) -> str:
    """scripts/lib.sh's: sha256 of pyproject.toml then constraints.txt, if any."""
    files = [root / "pyproject.toml", root / "constraints.txt"]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files if f.exists())).hexdigest()


def thin_venv(clone: Path) -> None:
    venv = clone / ".venv"
    base = Path(sys.base_prefix) / "bin" / "python3"
    sh(base, "-m", "venv", "--without-pip", venv)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    ours = sysconfig.get_paths()["purelib"]  # this checkout's venv: the same packages
    (site / "slipway-upgrade-bench.pth").write_text(f"{clone}\n{ours}\n")
    for tool in ("celery", "gunicorn"):
        script = (Path(sys.prefix) / "bin" / tool).read_text().split("\n", 1)[1]
        (venv / "bin" / tool).write_text(f"#!{venv / 'bin' / 'python'}\n{script}")
        (venv / "bin" / tool).chmod(0o755)
    (venv / "bin" / "traefik").symlink_to(Path(sys.prefix) / "bin" / "traefik")
    (venv / ".slipway-installed").write_text(requirements_hash(clone) + "\n")


# --- probes ------------------------------------------------------------------------------------


def get(host: str, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def dashboard_answers() -> bool:
    try:
        return get(DASHBOARD_HOST, "/", timeout=2)[0] < 500
    except (OSError, http.client.HTTPException):
        return False


class DashboardWatch(threading.Thread):
    """Polls the dashboard through Traefik every 0.2 s: how long it did not answer."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.down = 0.0

    def run(self) -> None:
        while not self.stop.wait(0.2):
            start = time.monotonic()
            if not dashboard_answers():
                self.down += max(0.2, time.monotonic() - start)


APPS_CODE = """
import json
from apps.models import App
out = {}
for app in App.objects.filter(name__startswith="upg-").order_by("name"):
    env = app.environment("production")
    live = env.live_deployment
    out[app.name] = {
        "host": env.hostname,
        "live": live.number if live else None,
        "containers": sorted(live.containers) if live else [],
    }
print(json.dumps(out))
"""


def snapshot(inst: Installation) -> dict:
    engine = docker.from_env()
    containers = {}
    for c in engine.containers.list(all=True, filters={"label": f"slipway.instance={INSTANCE}"}):
        containers[c.name] = (c.id[:12], c.attrs["State"]["StartedAt"], c.status)
    dynamic = inst.var / "traefik" / INSTANCE / "dynamic"
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in sorted(dynamic.glob("*.yml"))
    }
    api = f"http://127.0.0.1:{API_PORT}/api/http"
    routers = {
        r["name"]: (r.get("rule"), r.get("service"))
        for r in api_json(f"{api}/routers")
        if r["name"].endswith("@file")
    }
    services = {
        s["name"]: sorted(x["url"] for x in s.get("loadBalancer", {}).get("servers", []))
        for s in api_json(f"{api}/services")
        if s["name"].endswith("@file")
    }
    return {
        "apps": inst.shell(APPS_CODE),
        "containers": containers,
        "route_files": files,
        "routers": routers,
        "services": services,
    }


def api_json(url: str):
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def differences(before: dict, after: dict) -> list[str]:
    out = []
    for key in ("apps", "containers", "route_files", "routers", "services"):
        a, b = before[key], after[key]
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                out.append(f"{key}: {name}: {a.get(name)} -> {b.get(name)}")
    return out


# --- deploy ------------------------------------------------------------------------------------

DEPLOY_CODE = """
import json
from django.contrib.auth import get_user_model
from apps.models import App
from deployments import services
user, _ = get_user_model().objects.get_or_create(username="upgrade-bench")
out = {}
for name, repo in json.loads(%r).items():
    app = App.objects.create(name=name, owner=user, repository=repo)
    deployment = services.queue_deployment(app, "production")
    out[name] = {"host": app.environment("production").hostname, "deployment": deployment.pk}
print(json.dumps(out))
"""

STATUS_CODE = """
import json
from deployments.models import Deployment, LogLine
out = {}
for pk in json.loads(%r):
    d = Deployment.objects.get(pk=pk)
    lines = LogLine.objects.filter(deployment=d).order_by("-id")[:15]
    out[pk] = [d.status, [line.text for line in reversed(lines)]]
print(json.dumps(out))
"""


def deploy_apps(inst: Installation) -> dict[str, str]:
    files = {
        "upg-whoami": zd.whoami_files(),
        "upg-static": sample_files("static"),
        "upg-node": sample_files("node"),
    }
    repos = {name: str(make_repo(inst.work / "repos" / name, f)) for name, f in files.items()}
    made = inst.shell(DEPLOY_CODE % json.dumps(repos))
    deadline = time.monotonic() + SERVE_TIMEOUT
    waiting = dict(made)
    while waiting and time.monotonic() < deadline:
        for name, info in list(waiting.items()):
            try:
                if get(info["host"], timeout=2)[0] == 200:
                    del waiting[name]
            except (OSError, http.client.HTTPException):
                pass
        time.sleep(0.5)
    if waiting:
        ids = [info["deployment"] for info in waiting.values()]
        raise RuntimeError(
            f"not serving after {SERVE_TIMEOUT:g} s: {sorted(waiting)}: "
            + json.dumps(inst.shell(STATUS_CODE % json.dumps(ids)), indent=1)
        )
    return {name: info["host"] for name, info in made.items()}


# --- load --------------------------------------------------------------------------------------


def start_load(hosts: dict[str, str]) -> dict[str, "zd.Load"]:
    zd.KEEP_ALIVE_CLIENTS, zd.NEW_CONNECTION_CLIENTS = KEEP_ALIVE_CLIENTS, NEW_CONNECTION_CLIENTS
    return {name: zd.Load(host).start() for name, host in hosts.items()}


@dataclass
class Tally:
    requests: int
    failed: int
    kinds: dict
    p50_ms: float
    p99_ms: float


def finish_load(loads: dict) -> tuple[dict[str, Tally], float]:
    duration = 0.0
    out = {}
    for name, load in loads.items():
        duration = max(duration, load.finish())
        latencies = sorted(x for c in load.clients for x in c.latencies)
        failures = [f for c in load.clients for f in c.failures]
        kinds: dict = {}
        for f in failures:
            key = f"{f.kind} ({f.client}): {f.detail[:60]}"
            kinds[key] = kinds.get(key, 0) + 1
        out[name] = Tally(
            len(latencies) + len(failures),
            len(failures),
            kinds,
            zd.percentile(latencies, 0.5) * 1000,
            zd.percentile(latencies, 0.99) * 1000,
        )
    return out, duration


# --- teardown ----------------------------------------------------------------------------------


def teardown(inst: Installation | None) -> None:
    if inst is not None:
        for run, _ in inst.runs:
            if run.poll() is None:
                try:
                    os.killpg(run.pid, 15)  # its own session: scripts/run and its children
                    run.wait(timeout=90)
                except ProcessLookupError:
                    pass
                except subprocess.TimeoutExpired:
                    os.killpg(run.pid, 9)
                    run.wait()
    engine = docker.from_env()
    label = {"label": f"slipway.instance={INSTANCE}"}
    for container in engine.containers.list(all=True, filters=label):
        container.remove(force=True, v=True)
    for network in engine.networks.list(filters=label):
        network.remove()
    for network in engine.networks.list(names=[f"{INSTANCE}_build"]):
        if network.name == f"{INSTANCE}_build":
            network.remove()
    for volume in engine.volumes.list(filters=label):
        volume.remove(force=True)
    for image in engine.images.list():
        if any(tag.startswith(f"{INSTANCE}/") for tag in image.tags):
            engine.images.remove(image.id, force=True)
    if inst is not None and inst.python.exists():
        inst.manage("paas_firewall", "remove", check=False)
        sh(inst.clone / "scripts" / "services", "traefik-stop", env=inst.env, check=False)
    psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    sh("redis-cli", "-n", REDIS_DB, "flushdb", check=False)
    if inst is not None:
        keep = ROOT / "var" / "log" / "upgrade-bench"
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        for log in [*inst.work.glob("run-*.log"), *(inst.var / "log").glob("*.log")]:
            shutil.copy(log, keep / log.name)
        shutil.rmtree(inst.work, ignore_errors=True)


# --- main --------------------------------------------------------------------------------------


@dataclass
class Result:
    old: str = ""
    new: str = ""
    pulled_from: str = ""
    migrations_to_apply: list = field(default_factory=list)
    upgrade: dict = field(default_factory=dict)
    upgrade_seconds: float = 0.0
    upgrade_load_seconds: float = 0.0
    applied: list = field(default_factory=list)
    unapplied_after: list = field(default_factory=list)
    old_run_exit: int | None = None
    takeover: list = field(default_factory=list)
    second_takeover: list = field(default_factory=list)
    dashboard_down: float = 0.0
    upgrade_diff: list = field(default_factory=list)
    second: dict = field(default_factory=dict)
    second_load_seconds: float = 0.0
    second_applied: list = field(default_factory=list)
    second_diff: list = field(default_factory=list)
    second_dashboard_down: float = 0.0


def upgrade_in_place(inst: Installation, hosts: dict, result: Result, source: str) -> None:
    previous = inst.runs[-1][0]
    loads = start_load(hosts)
    watch = DashboardWatch()
    watch.start()
    time.sleep(LEAD_IN_SECONDS)
    started = time.monotonic()
    try:
        print(git("pull", "--ff-only", source, "main", cwd=inst.clone), flush=True)
        run, log, offset = inst.start_run()
        inst.wait_up(run, log, offset)
        result.unapplied_after = inst.unapplied()
        result.upgrade_seconds = time.monotonic() - started
        time.sleep(UPGRADE_SETTLE_SECONDS)
    finally:
        result.upgrade, result.upgrade_load_seconds = finish_load(loads)
        watch.stop.set()
    result.dashboard_down = watch.down
    result.old_run_exit = previous.poll()
    result.takeover = inst.took_over(previous, run)
    result.applied = APPLYING.findall(log.read_text(errors="replace"))


def second_run(inst: Installation, hosts: dict, result: Result) -> None:
    previous = inst.runs[-1][0]
    before = snapshot(inst)
    loads = start_load(hosts)
    watch = DashboardWatch()
    watch.start()
    time.sleep(LEAD_IN_SECONDS)
    try:
        run, log, offset = inst.start_run()
        inst.wait_up(run, log, offset)
        time.sleep(UPGRADE_SETTLE_SECONDS)
    finally:
        result.second, result.second_load_seconds = finish_load(loads)
        watch.stop.set()
    result.second_dashboard_down = watch.down
    result.second_takeover = inst.took_over(previous, run)
    result.second_applied = APPLYING.findall(log.read_text(errors="replace"))
    result.second_diff = differences(before, snapshot(inst))
    for name, host in hosts.items():
        status, _ = get(host)
        if status != 200:
            result.second_diff.append(f"{name} answers {status} after the second run")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", default=DEFAULT_OLD, help="the older commit (default HEAD~20)")
    parser.add_argument("--uncommitted", nargs="*", metavar="PATHSPEC")
    args = parser.parse_args()

    result = Result(old=older_commit(args.old), new=git("rev-parse", "HEAD"))
    result.migrations_to_apply = git(
        "diff", "--name-only", "--diff-filter=A", result.old, "HEAD", "--", "*/migrations/*"
    ).split()
    teardown(None)  # what a run that was killed left
    psql(f"CREATE DATABASE {DATABASE} OWNER slipway")
    inst = Installation(Path(tempfile.mkdtemp(prefix="slipway-upgrade-")))
    try:
        source = str(ROOT)
        if args.uncommitted is not None:
            upstream = upstream_with_uncommitted(inst.work, args.uncommitted)
            source = str(upstream)
            result.new = git("rev-parse", "HEAD", cwd=upstream)
        result.pulled_from = source
        git("clone", "-q", str(ROOT), str(inst.clone))
        git("reset", "-q", "--hard", result.old, cwd=inst.clone)
        thin_venv(inst.clone)
        if requirements_hash(inst.clone) != requirements_hash(ROOT):
            print("note: pyproject.toml differs: the upgrade's run will pip install", flush=True)

        print(f"old platform: {result.old[:10]} in {inst.clone}", flush=True)
        run, log, offset = inst.start_run()
        inst.wait_up(run, log, offset)
        print("old platform up; deploying three apps", flush=True)
        hosts = deploy_apps(inst)
        print(f"serving: {', '.join(hosts.values())}", flush=True)
        start = snapshot(inst)

        print(f"upgrade: git pull from {source}, then scripts/run, under load", flush=True)
        upgrade_in_place(inst, hosts, result, source)
        result.upgrade_diff = differences(start, snapshot(inst))
        print("upgraded; second run", flush=True)
        second_run(inst, hosts, result)
    finally:
        teardown(inst)
    report(result)


def report(r: Result) -> None:
    print(f"\nMachine: {machine()}")
    print(f"Upgrade of installation {INSTANCE} (Traefik on 127.0.0.1:{HTTP_PORT})")
    print(f"  from {r.old[:10]} to {r.new[:10]} (git pull from {r.pulled_from})")
    print(
        f"  load per app: {KEEP_ALIVE_CLIENTS} keep-alive + {NEW_CONNECTION_CLIENTS} "
        f"new-connection clients, from {LEAD_IN_SECONDS:g} s before `git pull` until the new "
        f"run is up, no migration unapplied, and {UPGRADE_SETTLE_SECONDS:g} s more\n"
    )
    for title, tallies, seconds in (
        ("Upgrade (git pull + scripts/run)", r.upgrade, r.upgrade_load_seconds),
        ("Second run (scripts/run again)", r.second, r.second_load_seconds),
    ):
        print(f"{title}, load for {seconds:.1f} s:\n")
        print("| App | Requests | Failed | p50 (ms) | p99 (ms) |")
        print("|---|---:|---:|---:|---:|")
        for name, t in tallies.items():
            print(f"| {name} | {t.requests:,} | {t.failed:,} | {t.p50_ms:.1f} | {t.p99_ms:.1f} |")
        total = sum(t.requests for t in tallies.values())
        failed = sum(t.failed for t in tallies.values())
        print(f"| all | {total:,} | {failed:,} | | |\n")
        for name, t in tallies.items():
            for kind, n in sorted(t.kinds.items(), key=lambda kv: -kv[1])[:10]:
                print(f"  {name}: {n:,} × {kind}")
    print(f"Upgrade took {r.upgrade_seconds:.1f} s (git pull to the new run up, migrated)")
    print(f"  the old run exited with {r.old_run_exit} (143: stopped by the new run's TERM)")
    for problem in r.takeover:
        print(f"  MANUAL STEP NEEDED: {problem}")
    print(f"  migrations new at HEAD: {', '.join(r.migrations_to_apply)}")
    print(f"  migrations the run applied ({len(r.applied)}): {', '.join(r.applied)}")
    print(f"  unapplied after: {r.unapplied_after or 'none'}")
    print(f"  dashboard not answering through Traefik: {r.dashboard_down:.1f} s")
    print("  changed by the upgrade (before → after):")
    for line in r.upgrade_diff or ["nothing"]:
        print(f"    {line}")
    print("Second run:")
    print(f"  migrations applied: {len(r.second_applied)} {r.second_applied or ''}")
    for problem in r.second_takeover:
        print(f"  MANUAL STEP NEEDED: {problem}")
    print(f"  dashboard not answering through Traefik: {r.second_dashboard_down:.1f} s")
    print("  changed (apps, containers' id and start, route files, Traefik routers/services):")
    for line in r.second_diff or ["nothing"]:
        print(f"    {line}")
    failed = sum(t.failed for t in r.upgrade.values()) + sum(t.failed for t in r.second.values())
    ok = not (
        failed
        or r.unapplied_after
        or r.second_applied
        or r.second_diff
        or r.takeover
        or r.second_takeover
    )
    print(f"\nResult: {'PASS' if ok else 'FAIL'} ({failed} failed requests in all)")
    print(f"Logs: {ROOT / 'var' / 'log' / 'upgrade-bench'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
