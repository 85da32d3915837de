"""Zero downtime under load: failed requests through Traefik while Slipway switches routes.

Deploys the `whoami` sample (tests/samples/whoami: a keep-alive HTTP/1.1 server that
answers its container's hostname; here with its answers written in one send, see
whoami_files) once. Then, for a control phase with no deployment and
for each of redeploy, rollback, restart, scale 1 to 3 and scale 3 to 1, it runs 10
keep-alive clients (one http.client connection each, reused) and 10 new-connection clients
(a new connection per request) against the app through the router on loopback
(127.0.0.1:PAAS_PROXY_HTTP_PORT with the Host header). A phase's load runs from just before
the trigger until the deployment is final and the drain period plus SETTLE_SECONDS has
passed, and on until it has MIN_REQUESTS requests, at most PHASE_CAP_SECONDS. Any non-2xx
answer or connection error is a failure; a keep-alive client reconnects after one and keeps
counting. Failures are listed per second from the trigger beside the deployment's steps
and the count of this host's TIME-WAIT sockets to the replicas' port (Traefik's closed
connections to replicas), and each phase first waits (bounded) for the previous one's to
expire.

Then the switch latency: from a route file write to the new upstream answering through
Traefik, for the platform's writer (wiring.router().apply) beside a file written by hand
(temp file + os.replace) that holds only a router and a service: the floor.

Run with `bench/run --zero-downtime` (its own installation and Traefik).
"""

import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
import yaml  # noqa: E402
from deploy_bench import machine  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from apps.models import App  # noqa: E402
from bench.summary import record  # noqa: E402
from deployments import services, wiring  # noqa: E402
from deployments.adapters.router import Route  # noqa: E402
from deployments.models import Deployment, LogLine  # noqa: E402
from deployments.services import routing  # noqa: E402
from tests.support import Worker, log_text, make_repo, sample_files, wait_final  # noqa: E402

KEEP_ALIVE_CLIENTS = 10
NEW_CONNECTION_CLIENTS = 10
MIN_REQUESTS = 50_000
PHASE_CAP_SECONDS = 120.0
SETTLE_SECONDS = 2.0  # after the deployment is final and the drain period has passed
LEAD_IN_SECONDS = 0.5  # load before the trigger
CLIENT_TIMEOUT = 5.0
SWITCHES = 20  # each, platform and by hand
SWITCH_TIMEOUT = 15.0
POLL_SECONDS = 0.001
APP_PORT = 5000
ROUTED = re.compile(r"==> Routed .* \((\d+) ms\)")
MAX_LISTED_FAILURES = 20
MAX_WINDOW_FAILURES = 60
MAX_LOG_LINES = 15
COOL_TIME_WAIT = 1_000
LISTEN_COUNTERS = ("ListenOverflows", "ListenDrops")
COOL_MAX_SECONDS = 75.0


# --- load -------------------------------------------------------------------------------------


@dataclass
class Failure:
    at: float  # time.time() when the request started
    took: float  # seconds until the error or the answer
    client: str
    kind: str
    detail: str


class Client(threading.Thread):
    """One client: `keep_alive` reuses one connection (a new one after an error), else a new
    connection per request."""

    def __init__(self, host: str, keep_alive: bool, stop: threading.Event):
        super().__init__(daemon=True)
        self.host, self.keep_alive, self.stop = host, keep_alive, stop
        self.kind = "keep-alive" if keep_alive else "new-connection"
        self.latencies: list[float] = []
        self.failures: list[Failure] = []
        self.answers: Counter = Counter()

    @property
    def count(self) -> int:
        return len(self.latencies) + len(self.failures)

    def run(self) -> None:
        connection = None
        headers = {"Host": self.host}
        while not self.stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(
                    "127.0.0.1", settings.PAAS_PROXY_HTTP_PORT, timeout=CLIENT_TIMEOUT
                )
            wall, start = time.time(), time.perf_counter()
            try:
                connection.request("GET", "/", headers=headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                took = time.perf_counter() - start
                self.failures.append(
                    Failure(wall, took, self.kind, type(exc).__name__, str(exc)[:120])
                )
                connection.close()
                connection = None
                continue
            elapsed = time.perf_counter() - start
            if 200 <= response.status < 300:
                self.latencies.append(elapsed)
                self.answers[body.decode(errors="replace")] += 1
            else:
                detail = body[:80].decode(errors="replace").strip()
                self.failures.append(
                    Failure(wall, elapsed, self.kind, f"HTTP {response.status}", detail)
                )
            if not self.keep_alive:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()


class Load:
    def __init__(self, host: str):
        self.stop = threading.Event()
        self.clients = [Client(host, True, self.stop) for _ in range(KEEP_ALIVE_CLIENTS)]
        self.clients += [Client(host, False, self.stop) for _ in range(NEW_CONNECTION_CLIENTS)]

    def start(self) -> "Load":
        self.started = time.monotonic()
        for client in self.clients:
            client.start()
        return self

    @property
    def count(self) -> int:
        return sum(client.count for client in self.clients)

    def finish(self) -> float:
        self.stop.set()
        for client in self.clients:
            client.join(timeout=CLIENT_TIMEOUT + 5)
        return time.monotonic() - self.started


# --- phases -----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    duration: float = 0.0
    cooldown: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    by_kind: dict = field(default_factory=dict)  # client kind -> (requests, failed, p50, p99)
    answers: Counter = field(default_factory=Counter)
    deployment: Deployment | None = None
    trigger_wall: float = 0.0
    final_after: float | None = None
    old_gone_after: float | None = None
    routed_ms: int | None = None
    timeline: list[tuple[float, str]] = field(default_factory=list)
    time_wait: list[tuple[float, int]] = field(default_factory=list)  # (s from trigger, n)
    window_end: float | None = None  # s from the trigger: final + drain + SETTLE_SECONDS
    listen: dict = field(default_factory=dict)  # the live replicas' accept-queue counters
    traefik_log: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.failures)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def backend_time_wait() -> int:
    """Sockets of this host in TIME-WAIT towards the app's port: Traefik's closed connections
    to replicas. Each holds a local port for 60 s, and the ports to one ip:port run out at
    ip_local_port_range's size."""
    out = subprocess.run(
        ["ss", "-Htan", "state", "time-wait", f"( dport = :{APP_PORT} )"],
        capture_output=True,
        text=True,
    ).stdout
    return out.count("\n")


def cool_down() -> float:
    """Wait (bounded) until the previous phase's TIME-WAIT sockets to replicas have expired,
    so that each phase starts with the same free ports."""
    start = time.monotonic()
    while backend_time_wait() > COOL_TIME_WAIT and time.monotonic() - start < COOL_MAX_SECONDS:
        time.sleep(1)
    return time.monotonic() - start


def run_phase(name: str, app: App, trigger) -> Phase:
    """`trigger` None: the control phase, the same load with no deployment."""
    phase = Phase(name, cooldown=cool_down())
    env = app.environment("production")
    old = env.live_deployment
    old_containers = list(old.containers) if old else []
    engine = docker.from_env()
    traefik_log = Path(settings.VAR_DIR) / "log" / f"traefik-{settings.PAAS_INSTANCE}.log"
    log_offset = traefik_log.stat().st_size if traefik_log.exists() else 0

    listen_before = listen_counters(engine, old_containers)
    load = Load(env.hostname).start()
    time.sleep(LEAD_IN_SECONDS)
    phase.trigger_wall, triggered = time.time(), time.monotonic()
    deployment = trigger() if trigger else None
    if trigger and deployment is None:
        load.finish()
        raise RuntimeError(f"{name}: nothing was queued")
    final_at = gone_at = None if deployment else triggered
    next_sample = triggered
    while True:
        now = time.monotonic()
        if now >= next_sample:
            phase.time_wait.append((now - triggered, backend_time_wait()))
            next_sample += 1
        if final_at is None and Deployment.objects.get(pk=deployment.pk).is_final:
            final_at = now
        if final_at is not None and gone_at is None and not _any_exists(engine, old_containers):
            gone_at = now
        drained = final_at is not None and now >= final_at + (
            settings.PAAS_DRAIN_SECONDS + SETTLE_SECONDS if deployment else 0
        )
        if drained and load.count >= MIN_REQUESTS:
            break
        if now - load.started >= PHASE_CAP_SECONDS:
            break
        time.sleep(0.1)
    phase.duration = load.finish()
    live = app.environment("production").live_deployment
    after = listen_counters(engine, list(live.containers) if live else [])
    for name in LISTEN_COUNTERS:
        phase.listen[name] = sum(
            values[name] - listen_before.get(container, {}).get(name, 0)
            for container, values in after.items()
        )
    if final_at is not None:
        phase.window_end = (
            final_at
            - triggered
            + (settings.PAAS_DRAIN_SECONDS + SETTLE_SECONDS if deployment else 0)
        )

    for kind in ("keep-alive", "new-connection"):
        clients = [c for c in load.clients if c.kind == kind]
        latencies = sorted(x for c in clients for x in c.latencies)
        failed = sum(len(c.failures) for c in clients)
        phase.by_kind[kind] = (
            len(latencies) + failed,
            failed,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
        )
    phase.latencies = sorted(x for c in load.clients for x in c.latencies)
    phase.failures = sorted((f for c in load.clients for f in c.failures), key=lambda f: f.at)
    for client in load.clients:
        phase.answers.update(client.answers)
    if phase.failures and traefik_log.exists():
        with traefik_log.open("rb") as handle:
            handle.seek(log_offset)
            lines = handle.read().decode(errors="replace").splitlines()
        phase.traefik_log = [line for line in lines if " INF " not in line][-MAX_LOG_LINES:]
    if deployment is None:
        return phase

    deployment.refresh_from_db()
    phase.deployment = deployment
    phase.final_after = None if final_at is None else final_at - triggered
    phase.old_gone_after = None if gone_at is None else gone_at - triggered
    for line in LogLine.objects.filter(deployment=deployment).order_by("id"):
        if line.text.startswith("==>") or line.text.startswith("Healthy"):
            phase.timeline.append((line.created_at.timestamp() - phase.trigger_wall, line.text))
        routed = ROUTED.search(line.text)
        if routed:
            phase.routed_ms = int(routed.group(1))
    return phase


def listen_counters(engine, containers: list[str]) -> dict[str, dict[str, int]]:
    """TcpExt ListenOverflows and ListenDrops in each container's network namespace: SYNs
    dropped because the app's accept queue was full (the client retries after 1 s)."""
    counters = {}
    for container in containers:
        try:
            pid = engine.containers.get(container).attrs["State"]["Pid"]
            lines = Path(f"/proc/{pid}/net/netstat").read_text().splitlines()
        except (docker.errors.NotFound, OSError):
            continue
        names, values = (line.split()[1:] for line in lines if line.startswith("TcpExt:"))
        table = dict(zip(names, map(int, values), strict=True))
        counters[container] = {name: table.get(name, 0) for name in LISTEN_COUNTERS}
    return counters


def _any_exists(engine, containers: list[str]) -> bool:
    for container in containers:
        try:
            engine.containers.get(container)
            return True
        except docker.errors.NotFound:
            continue
    return False


# --- switch latency ---------------------------------------------------------------------------


class Poller:
    """GETs through Traefik on one keep-alive connection until `host` answers `expected`."""

    def __init__(self):
        self.connection = None

    def until(self, host: str, expected: str, timeout: float = SWITCH_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connection is None:
                self.connection = http.client.HTTPConnection(
                    "127.0.0.1", settings.PAAS_PROXY_HTTP_PORT, timeout=CLIENT_TIMEOUT
                )
            try:
                self.connection.request("GET", "/", headers={"Host": host})
                response = self.connection.getresponse()
                body = response.read().decode(errors="replace")
                if response.status == 200 and body == expected:
                    return
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"{host} never answered {expected!r} through Traefik")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def hand_written(route_id: str, host: str, upstream: str) -> str:
    """The least Traefik needs: a router and a service with one server."""
    return (
        "http:\n"
        "  routers:\n"
        f"    {route_id}:\n"
        f"      rule: Host(`{host}`)\n"
        "      entryPoints: [web]\n"
        f"      service: {route_id}\n"
        "  services:\n"
        f"    {route_id}:\n"
        "      loadBalancer:\n"
        "        servers:\n"
        f"          - url: http://{upstream}\n"
    )


def write_by_hand(path: Path, content: str) -> None:
    """Temp file in the same directory (a name Traefik does not load), fsync, os.replace,
    fsync the directory: the same steps as the platform's writer."""
    temp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure_switches(app: App, marker: str) -> tuple[list[float], list[float]]:
    """Two whoami containers of the app's image on its network; the platform's route and a
    hand-written one switched between them in turn, SWITCHES times each."""
    engine = docker.from_env()
    image = app.environment("production").live_deployment.image_id
    upstreams, containers = {}, []
    try:
        for name in ("switch-a", "switch-b"):
            container = engine.containers.run(
                image,
                detach=True,
                name=f"{settings.PAAS_INSTANCE}-{app.name}-{name}",
                hostname=name,
                environment={"PORT": str(APP_PORT)},
                network=app.network,
                labels=app.resource_labels,
            )
            containers.append(container)
            container.reload()
            address = container.attrs["NetworkSettings"]["Networks"][app.network]["IPAddress"]
            upstreams[name] = f"{address}:{APP_PORT}"
        router = wiring.router()
        platform_id, platform_host = f"zdswitch-{marker}", f"zd-switch-{marker}.localhost"
        hand_id, hand_host = f"zdhand-{marker}", f"zd-hand-{marker}.localhost"
        hand_path = Path(settings.PAAS_ROUTER_DYNAMIC_DIR) / f"{hand_id}.yml"
        poller = Poller()

        def platform_switch(name: str) -> float:
            route = Route(
                route_id=platform_id, hosts=(platform_host,), upstreams=(upstreams[name],)
            )
            start = time.perf_counter()
            router.apply(route)
            poller.until(platform_host, name)
            return time.perf_counter() - start

        def hand_switch(name: str) -> float:
            content = hand_written(hand_id, hand_host, upstreams[name])
            start = time.perf_counter()
            write_by_hand(hand_path, content)
            poller.until(hand_host, name)
            return time.perf_counter() - start

        try:
            platform_switch("switch-a")  # the first answer also says the containers are up
            hand_switch("switch-a")
            platform, hand = [], []
            for index in range(SWITCHES):
                target = "switch-b" if index % 2 == 0 else "switch-a"
                time.sleep(0.3)  # past Traefik's throttle window: each switch starts idle
                platform.append(platform_switch(target))
                time.sleep(0.3)
                hand.append(hand_switch(target))
        finally:
            poller.close()
            router.remove(platform_id)
            hand_path.unlink(missing_ok=True)
    finally:
        for container in containers:
            container.remove(force=True)
    return platform, hand


# The sample writes its headers and its body in two send()s. On a connection that Traefik
# keeps open to it, Nagle's algorithm holds the body until the headers are ACKed, which
# Traefik delays by up to 40 ms: 40 ms per request, ~450 req/s for 20 clients. Buffered,
# each answer is one write and the router, not the app, is what is measured.
ONE_WRITE = "    wbufsize = -1  # buffered: headers and body in one write (bench)\n"


def whoami_files() -> dict[str, str]:
    files = sample_files("whoami", python_image=settings.PAAS_BASE_IMAGES["python"])
    anchor = '    protocol_version = "HTTP/1.1"'
    if anchor not in files["server.py"]:
        raise RuntimeError("tests/samples/whoami/server.py changed: update whoami_files()")
    files["server.py"] = files["server.py"].replace(anchor, ONE_WRITE + anchor, 1)
    return files


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    user, _ = get_user_model().objects.get_or_create(username="bench")
    App.objects.filter(name__startswith="zd-").delete()
    work = Path(tempfile.mkdtemp(prefix="slipway-zd-"))
    worker = Worker(work / "worker.log", concurrency=2).start()
    marker = uuid.uuid4().hex[:8]
    files = whoami_files()
    repo = make_repo(work / "repo", files)
    app = App.objects.create(name=f"zd-{marker}", owner=user, repository=str(repo))
    phases: list[Phase] = []
    switches = None
    try:
        first = wait_final(services.queue_deployment(app, "production"))
        if first.status != "succeeded":
            raise RuntimeError(f"the first deployment failed:\n{log_text(first)}")

        def live():
            return app.environment("production").live_deployment

        plan = [
            ("steady (no deployment)", None),
            ("redeploy", lambda: services.redeploy(live())),
            ("rollback", lambda: services.rollback(first)),
            ("restart", lambda: services.restart(app, "production")),
            ("scale 1→3", lambda: routing.scale(app, "production", 3)),
            ("scale 3→1", lambda: routing.scale(app, "production", 1)),
        ]
        for name, trigger in plan:
            phase = run_phase(name, app, trigger)
            phases.append(phase)
            print(f"{name}: {phase.requests:,} requests, {len(phase.failures)} failed", flush=True)
            if phase.deployment and phase.deployment.status != "succeeded":
                print(log_text(phase.deployment))
        switches = measure_switches(app, marker)
    finally:
        worker.stop()
        from deployments.workers.cleanup import cleanup_app

        app.request_cleanup()
        cleanup_app(app.pk, wiring.runtime(), wiring.router())
        shutil.rmtree(work, ignore_errors=True)
    report(phases, switches)


def runtime_description() -> str:
    if settings.PAAS_RUNTIME != "swarm":
        return "docker (this host's engine)"
    names = [node.attrs["Description"]["Hostname"] for node in docker.from_env().nodes.list()]
    return f"swarm, {len(names)} nodes ({', '.join(sorted(names))})"


def report(phases: list[Phase], switches) -> None:
    print(f"\nMachine: {machine()}")
    print(f"Runtime: {runtime_description()}")
    print(f"Traefik's serversTransport (static configuration): {servers_transport()}")
    print(
        f"Load per phase: {KEEP_ALIVE_CLIENTS} keep-alive + {NEW_CONNECTION_CLIENTS} "
        f"new-connection clients (threads) on 127.0.0.1:{settings.PAAS_PROXY_HTTP_PORT}, "
        f"from {LEAD_IN_SECONDS:g} s before the trigger until final + drain "
        f"({settings.PAAS_DRAIN_SECONDS} s) + {SETTLE_SECONDS:g} s and at least "
        f"{MIN_REQUESTS:,} requests (cap {PHASE_CAP_SECONDS:g} s); before each phase, a wait "
        f"(at most {COOL_MAX_SECONDS:g} s) until at most {COOL_TIME_WAIT:,} sockets to the "
        f"replicas' port are in TIME-WAIT\n"
    )
    print("| Phase | Requests | Failed | p50 (ms) | p99 (ms) | Duration (s) | Req/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in phases:
        print(
            f"| {p.name} | {p.requests:,} | {len(p.failures):,} | "
            f"{percentile(p.latencies, 0.5) * 1000:.1f} | "
            f"{percentile(p.latencies, 0.99) * 1000:.1f} | {p.duration:.1f} | "
            f"{p.requests / p.duration:,.0f} |"
        )

    for p in phases:
        print(f"\n{p.name}: ", end="")
        d = p.deployment
        if d is None:
            print("no deployment", end="")
        else:
            print(f"deployment #{d.number} {d.status}", end="")
            if p.final_after is not None:
                print(f", final at +{p.final_after:.2f} s", end="")
            if p.old_gone_after is not None:
                print(f", old replicas removed by +{p.old_gone_after:.2f} s", end="")
        print(
            f", load from -{LEAD_IN_SECONDS:g} s to +{p.duration - LEAD_IN_SECONDS:.2f} s "
            f"(cool-down before: {p.cooldown:.0f} s)"
        )
        for kind, (count, bad, p50, p99) in p.by_kind.items():
            print(
                f"  {kind}: {count:,} requests, {bad:,} failed, p50 {p50 * 1000:.1f} ms, "
                f"p99 {p99 * 1000:.1f} ms"
            )
        print(
            f"  answered by {len(p.answers)} replicas: "
            + ", ".join(f"{host} {n:,}" for host, n in sorted(p.answers.items()))
        )
        for at, text in p.timeline:
            print(f"  +{at:6.2f} s  {text}")
        peak = max((n for _, n in p.time_wait), default=0)
        print(f"  TIME-WAIT sockets to the replicas' port: peak {peak:,}")
        print(
            "  the live replicas' accept queue during the phase: "
            + ", ".join(f"{name} {n:,}" for name, n in p.listen.items())
        )
        if p.deployment is not None:
            inside = in_window(p)
            print(
                f"  in the switch window (-{LEAD_IN_SECONDS:g} s to +{p.window_end:.2f} s): "
                f"{len(inside):,} failed; after it: {len(p.failures) - len(inside):,} failed"
            )
        if p.failures:
            print_failures(p)

    print()
    for p in phases:
        record(
            f"Failed requests, {p.name} (keep-alive and new-connection clients)",
            len(p.failures),
            f"of {p.requests:,}",
            "0 of ≥ 50,000",
            not p.failures and p.requests >= MIN_REQUESTS,
        )
        if not p.failures:
            print(f"{p.name}: 0 failed of {p.requests:,}")
        else:
            kinds = Counter(f"{f.kind} ({f.client})" for f in p.failures)
            listed = ", ".join(f"{n:,} {kind}" for kind, n in kinds.most_common())
            print(f"{p.name}: {len(p.failures):,} failed of {p.requests:,}: {listed}")
        if p.deployment is not None and p.failures:
            inside = in_window(p)
            kinds = Counter(f"{f.kind} ({f.client})" for f in inside)
            listed = ", ".join(f"{n:,} {kind}" for kind, n in kinds.most_common())
            print(
                f"  of which in the switch window (to +{p.window_end:.2f} s): {len(inside):,}"
                + (f": {listed}" if listed else "")
            )

    routed = [p.routed_ms for p in phases if p.routed_ms is not None]
    print("\nSwitch latency:")
    if routed:
        print(
            "  the pipeline's 'Routed … (NN ms)' (write to Traefik's API serving it), per phase: "
            + ", ".join(f"{ms}" for ms in routed)
            + f" ms; median {statistics.median(routed):.0f} ms"
        )
    if switches:
        for what, values in (
            ("Slipway's writer (wiring.router().apply)", switches[0]),
            ("by hand (temp file + os.replace)", switches[1]),
        ):
            ms = sorted(v * 1000 for v in values)
            print(
                f"  write to the new upstream answering through Traefik, {what}: median "
                f"{statistics.median(ms):.0f} ms over {len(ms)} switches "
                f"(min {ms[0]:.0f}, max {ms[-1]:.0f})"
            )


def print_failures(p: Phase) -> None:
    """When they came (per second from the trigger, beside the TIME-WAIT count), what they
    were, the first ones one by one, and what Traefik logged above info."""
    print("  failures per second (from the trigger), with TIME-WAIT sockets at that second:")
    samples = {int(at): n for at, n in p.time_wait}
    per_second: dict[int, Counter] = {}
    for f in p.failures:
        per_second.setdefault(int(f.at - p.trigger_wall), Counter())[f.kind] += 1
    for second, kinds in sorted(per_second.items()):
        listed = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        tw = samples.get(second)
        tw_text = "" if tw is None else f"  [TIME-WAIT {tw:,}]"
        print(f"    +{second:3d} s: {sum(kinds.values()):5,} failed ({listed}){tw_text}")
    print("  kinds and details:")
    for (client, kind, detail), n in Counter(
        (f.client, f.kind, f.detail) for f in p.failures
    ).most_common(MAX_LISTED_FAILURES):
        print(f"    {n:6,}  {client}  {kind}  {detail}")
    inside = in_window(p)
    after = p.failures[len(inside) :]
    for title, listed, most in (
        ("in the switch window, each", inside, MAX_WINDOW_FAILURES),
        ("after it, the first ones", after, MAX_LISTED_FAILURES),
    ):
        if not listed:
            continue
        print(f"  {title} (start from the trigger, time taken, client, kind):")
        for f in listed[:most]:
            start = f.at - p.trigger_wall
            print(f"    +{start:7.3f} s  {f.took * 1000:6.0f} ms  {f.client}  {f.kind}")
        if len(listed) > most:
            print(f"    … and {len(listed) - most:,} more")
    if p.traefik_log:
        print(f"  Traefik's log above info during the phase (last {MAX_LOG_LINES} lines):")
        for line in p.traefik_log:
            print(f"    {line[:300]}")


def in_window(p: Phase) -> list[Failure]:
    """The failures from the load's start to final + drain + SETTLE_SECONDS (a prefix)."""
    if p.deployment is None or p.window_end is None:
        return []
    return [f for f in p.failures if f.at - p.trigger_wall <= p.window_end]


def servers_transport() -> str:
    path = Path(settings.VAR_DIR) / "traefik" / settings.PAAS_INSTANCE / "traefik.yml"
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return "unknown"
    return json.dumps(config.get("serversTransport", {}))


if __name__ == "__main__":
    main()
