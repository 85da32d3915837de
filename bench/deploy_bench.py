"""Time Slipway's deploys against doing the same by hand, in one run on one machine.

Each figure is from trigger to the new content answering over HTTP (through Traefik, the
router, for Slipway; on a published port by hand). Run with bench/run.
"""

import os
import platform as host
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")

import django  # noqa: E402

django.setup()

import docker  # noqa: E402
import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from apps.models import App, Environment  # noqa: E402
from bench.summary import record  # noqa: E402
from deployments import services, wiring  # noqa: E402
from deployments.adapters.builders import detect  # noqa: E402
from deployments.models import Deployment  # noqa: E402
from tests.support import (  # noqa: E402
    Worker,
    commit,
    log_text,
    make_repo,
    sample_files,
    through_proxy,
    wait_final,
)

HAND_PORT = 18_500
POLL = 0.05


def wait_body(fetch, expected: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if expected in fetch().text:
                return
        except requests.RequestException:
            pass
        time.sleep(POLL)
    raise RuntimeError(f"never saw {expected!r}")


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class Platform:
    def __init__(self, app: App):
        self.app = app

    def host(self, env="production"):
        return self.app.environment(env).hostname

    def deploy(self, expected: str, env="production", queue=None) -> float:
        """Seconds from the trigger to `expected` answering through the router. Traefik
        serves the new replicas a moment before the pipeline marks the deployment live, so
        the next step waits (untimed) for it to be final: promote needs staging live. It
        also waits for the deployment before it to be retired (drained, stopped, removed):
        a redeploy in use starts on an engine that is not stopping the last one's
        containers, and the by-hand side never stops any."""
        previous = self.app.environment(env).live_deployment
        queued = []

        def run():
            queued.append((queue or (lambda: services.queue_deployment(self.app, env)))())
            wait_body(lambda: through_proxy(self.host(env), timeout=2), expected)

        seconds = timed(run)
        deployment = wait_final(queued[0])
        assert deployment.status == "succeeded", log_text(deployment)
        if previous is not None and previous.pk != deployment.pk:
            wait_retired(previous)
        return seconds


def wait_retired(deployment: Deployment, timeout: float = 60) -> None:
    client = docker.from_env()
    deadline = time.monotonic() + timeout
    while any(_exists(client, c) for c in deployment.containers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"deployment #{deployment.number} was never retired")
        time.sleep(POLL)


def _exists(client, container_id: str) -> bool:
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


class ByHand:
    """What an operator types: docker build, docker run, curl until it answers."""

    def __init__(self, name: str):
        self.name, self.port, self.containers = name, HAND_PORT, []

    def build(self, context: Path, tag: str) -> None:
        subprocess.run(
            ["docker", "build", "-q", "-f", ".slipway/Dockerfile", "-t", tag, "."],
            cwd=context,
            check=True,
            capture_output=True,
        )

    def run(self, tag: str, expected: str) -> None:
        self.port += 1
        name = f"{self.name}-{self.port}"
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "-e",
                "PORT=5000",
                "-p",
                f"127.0.0.1:{self.port}:5000",
                tag,
            ],
            check=True,
            capture_output=True,
        )
        self.containers.append(name)
        wait_body(lambda: requests.get(f"http://127.0.0.1:{self.port}/", timeout=2), expected)

    def deploy(self, context: Path, tag: str, expected: str, release: str = "") -> float:
        return timed(
            lambda: (self.build(context, tag), self.release(tag, release), self.run(tag, expected))
        )

    def release(self, tag: str, command: str) -> None:
        """A release command by hand: a throwaway container of the new image, first."""
        if command:
            subprocess.run(["docker", "run", "--rm", tag, "sh", "-c", command], check=True)

    def cleanup(self) -> None:
        subprocess.run(["docker", "rm", "-f", *self.containers], capture_output=True)


def checkout(repo: Path, into: Path) -> Path:
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(repo, into, ignore=shutil.ignore_patterns(".git"))
    detect(into, "auto")  # writes the same generated Dockerfile the platform builds
    return into


def machine() -> str:
    """Cores, CPU, memory, kernel, and the versions of Docker Engine and of the running
    Traefik (its API says which)."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
    mem = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        // 1024
        // 1024
    )
    docker_version = subprocess.run(
        ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()
    try:
        api = f"{settings.PAAS_ROUTER_API_URL.rstrip('/')}/api/version"
        traefik_version = requests.get(api, timeout=5).json()["Version"]
    except (requests.RequestException, ValueError, KeyError):
        traefik_version = "unknown"
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem} GiB, Linux {host.release()}, "
        f"Docker {docker_version}, Traefik {traefik_version}"
    )


def main() -> None:
    user, _ = get_user_model().objects.get_or_create(username="bench")
    App.objects.filter(name__startswith="bench").delete()
    work = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    worker = Worker(work / "worker.log", concurrency=2).start()
    marker = uuid.uuid4().hex[:8]  # busts the dependency-layer cache: a cold build for both
    files = sample_files("python")
    files["requirements.txt"] += f"# bench {marker}\n"
    repo = make_repo(work / "repo", files)
    app = App.objects.create(name=f"bench-{marker}", owner=user, repository=str(repo))
    Environment.create_for(app, "staging")  # promote's source
    slipway, hand, rows = Platform(app), ByHand(f"bench-hand-{marker}"), []
    hand_files = dict(files, **{"requirements.txt": files["requirements.txt"] + "# hand\n"})
    hand_repo = make_repo(work / "hand-repo", hand_files)
    changes = CodeChanges((repo, hand_repo), hand, work / "ctx", marker)
    try:
        rows.append(
            (
                "Cold deploy (pip install)",
                slipway.deploy("hello v1"),
                hand.deploy(checkout(hand_repo, work / "ctx"), changes.tag(1), "hello v1"),
            )
        )
        rows.append(("Code-only change", *changes.median_of(CODE_ONLY_RUNS, slipway)))

        # Back to the deployment before the newest: its image is kept (PAAS_KEEP_IMAGES).
        newest = Deployment.objects.filter(app=app).order_by("-number").first()
        before = Deployment.objects.get(app=app, number=newest.number - 1)
        back = changes.version - 1
        rows.append(
            (
                "Rollback (no build)",
                slipway.deploy(f"hello v{back}", queue=lambda: services.rollback(before)),
                timed(lambda: hand.run(changes.tag(back), f"hello v{back}")),
            )
        )

        latest = f"hello v{changes.version}"
        slipway.deploy(latest, env="staging")
        rows.append(
            (
                "Promote staging to production (no build)",
                slipway.deploy(latest, queue=lambda: services.promote(app)),
                timed(lambda: hand.run(changes.tag(changes.version), latest)),
            )
        )

        # The release phase adds a one-off container per deployment: here one that does nothing.
        App.objects.filter(pk=app.pk).update(release_command="true")
        rows.append(
            ("Code-only change with a release command (`true`)", *changes.once(slipway, "true"))
        )
    finally:
        hand.cleanup()
        worker.stop()
        from deployments.workers.cleanup import cleanup_app

        app.request_cleanup()
        cleanup_app(app.pk, wiring.runtime(), wiring.router())
        subprocess.run(["docker", "rmi", *changes.tags()], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    report(rows)


# One code-only redeploy takes well under a second, and this VM's speed varies from one
# second to the next (one run: 0.40 to 0.57 s by hand): the row is the median of several,
# Slipway's and the hand-run's taken in turns, each run printed.
CODE_ONLY_RUNS = 5


class CodeChanges:
    """The next version of the app's text, committed to both repositories, deployed by
    Slipway and then by hand."""

    def __init__(self, repos: tuple[Path, Path], hand: "ByHand", context: Path, marker: str):
        self.repos, self.hand, self.context, self.marker = repos, hand, context, marker
        self.version = 1

    def tag(self, version: int) -> str:
        return f"bench-hand:{self.marker}-{version}"

    def tags(self) -> list[str]:
        return [self.tag(version) for version in range(1, self.version + 1)]

    def once(self, slipway: Platform, release: str = "") -> tuple[float, float]:
        old, self.version = f"v{self.version}", self.version + 1
        new = f"v{self.version}"
        for repo in self.repos:
            commit(repo, {"app.py": (repo / "app.py").read_text().replace(old, new)}, "code only")
        ours = slipway.deploy(f"hello {new}")
        context = checkout(self.repos[1], self.context)
        theirs = self.hand.deploy(context, self.tag(self.version), f"hello {new}", release)
        return ours, theirs

    def median_of(self, runs: int, slipway: Platform) -> tuple[float, float]:
        measured = [self.once(slipway) for _ in range(runs)]
        for ours, theirs in measured:
            print(f"  code-only run: Slipway {ours:.2f} s, by hand {theirs:.2f} s", flush=True)
        return (
            statistics.median(ours for ours, _ in measured),
            statistics.median(theirs for _, theirs in measured),
        )


# The target for each row: its words, and whether (Slipway, by hand) meets it.
TARGETS = {
    "Cold deploy (pip install)": ("≤ by hand + 2 s", lambda ours, hand: ours <= hand + 2),
    "Code-only change": (
        "< 3 s and ≤ 1.5× by hand",
        lambda ours, hand: ours < 3 and ours <= 1.5 * hand,
    ),
    "Rollback (no build)": ("< 1.5 s", lambda ours, hand: ours < 1.5),
    "Promote staging to production (no build)": ("< 1.5 s", lambda ours, hand: ours < 1.5),
    "Code-only change with a release command (`true`)": ("< 3 s", lambda ours, hand: ours < 3),
}


def report(rows) -> None:
    print(f"\nMachine: {machine()}\n")
    print("| What | Slipway (s) | By hand (s) | Ratio |")
    print("|---|---:|---:|---:|")
    for what, ours, theirs in rows:
        print(f"| {what} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f}× |")
        target, meets = TARGETS[what]
        record(what, ours, "s", target, meets(ours, theirs), theirs, "docker build + run by hand")


if __name__ == "__main__":
    main()
