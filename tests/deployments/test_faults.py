"""SIGKILL of the Celery worker at each step of a deployment: fetch, build, release phase,
start and health check. For each, the warden gives the deployment back within 30 s of the
kill, the next attempt succeeds, and nothing of the killed attempt is left behind (no
container, no half-made replica, no release container, no build container).

One case runs with the production timing (PAAS_HEARTBEAT_TIMEOUT 18 s, a warden round every
5 s) and prints how long the resume took; the others with the suite's shorter timeout.
A build slower than the heartbeat timeout is not taken for a dead one."""

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.db import DatabaseError, connection

from apps.models import App
from deployments import jobs, services, wiring
from deployments.models import Deployment, LogLine, Run
from deployments.services import runs
from deployments.workers import pipeline, routing, warden
from paas.celery import app as celery_app
from tests.githttp import PrivateGitServer
from tests.support import (
    containers,
    git,
    log_text,
    make_repo,
    services_command,
    through_proxy,
    wait_final,
    wait_for,
)

RESUME_WITHIN = 30  # seconds from the kill to the next attempt running (the target)
PRODUCTION_HEARTBEAT_TIMEOUT = 18  # paas/settings.py's default (the suite runs with 8)


def _dockerfile(marker: str, build_sleep: int = 0, start_sleep: int = 0) -> str:
    # The marker busts the layer cache, so every build really runs its RUN line.
    serve = "exec python3 -m http.server $PORT"
    if start_sleep:
        serve = f"sleep {start_sleep}; {serve}"
    return (
        f"FROM {settings.PAAS_BASE_IMAGES['python']}\n"
        f"RUN echo building-{marker} && sleep {build_sleep}\n"
        f"WORKDIR /srv\nRUN echo ok-{marker} > index.html\n"
        f'CMD ["sh", "-c", "{serve}"]\n'
    )


def _logged(deployment, text: str) -> bool:
    return LogLine.objects.filter(deployment=deployment, text__contains=text).exists()


def _running(app, process: str) -> list:
    return containers(
        label=[f"slipway.app={app.name}", f"slipway.process={process}"], status="running"
    )


def _at_step(deployment, step: str) -> bool:
    return Deployment.objects.filter(pk=deployment.pk, step=step).exists()


@dataclass
class Case:
    """What the app is made of, and when (mid-step) its worker is killed."""

    files: Callable[[str], dict[str, str]]
    killed_when: Callable[[Deployment, "Fixture"], bool]
    replicas: int = 1
    formation: dict | None = None
    recorded_step: str = ""  # the step the row names then, if not the case's own


@dataclass
class Fixture:
    marker: str
    git_server: PrivateGitServer | None = None


CASES = {
    "fetch": Case(
        files=lambda m: {"Dockerfile": _dockerfile(m)},
        # The git server has taken the clone's fetch and holds it.
        killed_when=lambda d, f: f.git_server.stall_first == 0,
    ),
    "build": Case(
        files=lambda m: {"Dockerfile": _dockerfile(m, build_sleep=6)},
        killed_when=lambda d, f: _logged(d, f"building-{f.marker}"),
    ),
    "release": Case(
        files=lambda m: {"Dockerfile": _dockerfile(m), "Procfile": "release: sleep 6\n"},
        killed_when=lambda d, f: (
            _logged(d, "==> Release phase:") and bool(_running(d.app, "release"))
        ),
    ),
    "start": Case(
        # Six containers to start: the kill lands with some made and some not.
        files=lambda m: {"Dockerfile": _dockerfile(m), "Procfile": "worker: sleep infinity\n"},
        killed_when=lambda d, f: (
            _at_step(d, "start") and bool(Deployment.objects.get(pk=d.pk).containers)
        ),
        replicas=3,
        formation={"worker": 3},
    ),
    "health": Case(
        files=lambda m: {"Dockerfile": _dockerfile(m, start_sleep=6)},
        killed_when=lambda d, f: _logged(d, "==> Health check: GET"),
        # The health step records itself once its replicas answered.
        recorded_step="start",
    ),
}


def _make_app(owner, tmp_path, name: str, case: Case, fixture: Fixture) -> App:
    work = make_repo(tmp_path / "work", case.files(fixture.marker))
    repository = str(work)
    if fixture.git_server is not None:
        git(fixture.git_server.root, "clone", "-q", "--bare", str(work), "site.git")
        repository = f"{fixture.git_server.url}/site.git"
    app = App.objects.create(name=name, owner=owner, repository=repository)
    env = app.environment("production")
    env.replicas, env.formation = case.replicas, case.formation or {}
    env.save(update_fields=["replicas", "formation"])
    return app


def _resumed(deployment) -> bool:
    d = Deployment.objects.get(pk=deployment.pk)
    return d.attempt >= 1 and d.status in ("building", "starting", "succeeded")


def _wait_resumed(deployment, killed_at: float, warden_every: float) -> float:
    """Warden rounds as beat runs them, until the next attempt runs; seconds since the kill."""
    next_round = time.monotonic()
    while time.monotonic() - killed_at < RESUME_WITHIN + 30:
        if time.monotonic() >= next_round:
            warden.reconcile(wiring.runtime(), wiring.router())
            next_round += warden_every
        if _resumed(deployment):
            return time.monotonic() - killed_at
        time.sleep(0.2)
    raise AssertionError(f"#{deployment.number} was not resumed: {log_text(deployment)}")


def _assert_nothing_left_of_the_killed_attempt(app, final, marker: str) -> None:
    labelled = containers(label=f"slipway.app={app.name}")
    assert {c.id for c in labelled} == set(final.containers), [c.name for c in labelled]
    builders = [c for c in containers() if marker in " ".join(c.attrs["Config"]["Cmd"] or [])]
    assert builders == [], "a build container of the killed attempt was left behind"


@pytest.fixture
def stalling_git_server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    server = PrivateGitServer(root, None, stall_first=20)
    yield server
    server.close()


@pytest.mark.parametrize("step", list(CASES))
def test_a_worker_killed_mid_step_is_resumed_within_30_s_and_leaves_nothing(
    step, platform, owner, tmp_path, settings, stalling_git_server
):
    case = CASES[step]
    fixture = Fixture(uuid.uuid4().hex, stalling_git_server if step == "fetch" else None)
    warden_every = 1.0
    if step == "build":
        # The production timing: an 18 s heartbeat timeout (the killed worker beat every
        # PAAS_HEARTBEAT_SECONDS, 2 s, as in production) and beat's 5 s warden rounds.
        settings.PAAS_HEARTBEAT_TIMEOUT, warden_every = PRODUCTION_HEARTBEAT_TIMEOUT, 5.0
    app = _make_app(owner, tmp_path, f"kill{step}", case, fixture)
    deployment = services.queue_deployment(app, "production")

    wait_for(lambda: case.killed_when(deployment, fixture), timeout=120, every=0.05)
    platform.kill()
    killed_at = time.monotonic()
    assert Deployment.objects.get(pk=deployment.pk).step == (case.recorded_step or step)
    platform.start()

    took = _wait_resumed(deployment, killed_at, warden_every)
    print(f"killed during {step}: resumed {took:.1f} s after the kill")
    assert took < RESUME_WITHIN

    final = wait_final(deployment)
    assert (final.status, final.attempt) == ("succeeded", 1), log_text(final)
    assert "stopped answering" in log_text(final)
    answer = through_proxy(app.environment("production").hostname)
    assert answer.status_code == 200 and f"ok-{fixture.marker}" in answer.text
    _assert_nothing_left_of_the_killed_attempt(app, final, fixture.marker)


def test_a_build_slower_than_the_heartbeat_timeout_is_not_taken_for_a_dead_one(
    platform, owner, tmp_path
):
    marker = uuid.uuid4().hex
    slow = settings.PAAS_HEARTBEAT_TIMEOUT + 4
    repo = make_repo(tmp_path / "slow", {"Dockerfile": _dockerfile(marker, build_sleep=slow)})
    app = App.objects.create(name="slowbutalive", owner=owner, repository=str(repo))
    deployment = services.queue_deployment(app, "production")
    while not Deployment.objects.get(pk=deployment.pk).is_final:
        assert warden.reconcile(wiring.runtime(), wiring.router())["recovered"] == 0
        time.sleep(1)
    final = Deployment.objects.get(pk=deployment.pk)
    assert (final.status, final.attempt) == ("succeeded", 0), log_text(final)
    assert "stopped answering" not in log_text(final)


# --- limits: a full disk, a release past its time -------------------------------------------
# Run in this process (pipeline.run), so the settings below hold for the worker's part too;
# what the pipeline would queue (a retry, a retirement) is recorded, not sent.


@pytest.fixture
def sent(monkeypatch):
    queued = []
    monkeypatch.setattr(jobs, "_send", lambda task, *args, **kw: queued.append((task, *args)))
    return queued


@pytest.fixture
def tiny_build_dir(tmp_path, settings):
    """PAAS_BUILD_DIR on a 1 MiB tmpfs: the disk is full as soon as a clone needs more."""
    mount = tmp_path / "builds"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    settings.PAAS_BUILD_DIR = mount
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def _run_in_process(app) -> Deployment:
    env = app.environment("production")
    d = app.new_deployment(env)
    pipeline.run(d.pk, wiring.runtime(), wiring.router())
    return Deployment.objects.get(pk=d.pk)


def test_a_disk_full_during_the_fetch_ends_the_attempt_cleanly(
    platform, owner, tmp_path, tiny_build_dir, sent
):
    # 4 MiB that does not compress: git cannot pack it smaller than the tmpfs.
    noise = os.urandom(4 * 1024 * 1024).hex()
    repo = make_repo(tmp_path / "big", {"Dockerfile": _dockerfile("full"), "noise.txt": noise})
    app = App.objects.create(name="diskfull", owner=owner, repository=str(repo))
    d = _run_in_process(app)
    # A platform error: the attempt is undone and queued again (the space may come back).
    assert d.status in ("failed", "pending"), d.status
    text = log_text(d)
    assert "No space left on device" in text or "disk" in text.lower(), text
    assert "Traceback" not in text
    assert list(tiny_build_dir.iterdir()) == [], "the half-made clone was left on the disk"
    assert containers(label=f"slipway.app={app.name}") == []
    if d.status == "pending":
        assert sent == [("run_deployment", d.pk)]


def test_a_release_past_its_time_limit_is_killed_and_switches_nothing(
    platform, owner, tmp_path, settings, sent
):
    settings.PAAS_RELEASE_TIMEOUT = 3
    files = {"Dockerfile": _dockerfile("rel"), "Procfile": "release: sleep 60\n"}
    app = App.objects.create(
        name="slowrelease", owner=owner, repository=str(make_repo(tmp_path / "r", files))
    )
    started = time.monotonic()
    d = _run_in_process(app)
    assert time.monotonic() - started < 60, "the release ran to its end"
    assert (d.status, d.error_code) == ("failed", "release_failed"), log_text(d)
    assert "did not finish within 3s" in d.error_message
    assert app.environment("production").live_deployment is None
    assert containers(label=f"slipway.app={app.name}") == [], "the release container stayed"


# --- PostgreSQL and Redis away mid-deployment, mid-run ----------------------------------------


def _postgres_away_for(seconds: float) -> None:
    services_command("postgres-stop")
    time.sleep(seconds)
    services_command()
    connection.close()  # this process's connection died with the server
    wait_for(_database_answers, timeout=30, message="PostgreSQL to answer")


def _database_answers() -> bool:
    try:
        Deployment.objects.exists()
        return True
    except DatabaseError:
        connection.close()
        return False


def _final_with_warden_rounds(deployment, every: float = 5.0, timeout: float = 180) -> Deployment:
    """Wait for the end while the warden runs as beat would run it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        warden.reconcile(wiring.runtime(), wiring.router())
        d = Deployment.objects.get(pk=deployment.pk)
        if d.is_final:
            return d
        time.sleep(every)
    raise AssertionError(f"#{deployment.number} did not end: {log_text(deployment)}")


@pytest.mark.restarts_services
def test_postgresql_away_for_10_s_mid_build_leaves_nothing_stuck_or_lost(
    platform, owner, tmp_path, settings
):
    settings.PAAS_HEARTBEAT_TIMEOUT = PRODUCTION_HEARTBEAT_TIMEOUT  # 10 s away is no death
    marker = uuid.uuid4().hex
    repo = make_repo(tmp_path / "pg", {"Dockerfile": _dockerfile(marker, build_sleep=14)})
    app = App.objects.create(name="pgaway", owner=owner, repository=str(repo))
    deployment = services.queue_deployment(app, "production")
    wait_for(lambda: _logged(deployment, f"building-{marker}"), timeout=120, every=0.1)
    lines_before = LogLine.objects.filter(deployment=deployment).count()

    _postgres_away_for(10)

    final = _final_with_warden_rounds(deployment)
    assert final.status == "succeeded", log_text(final)
    assert LogLine.objects.filter(deployment=deployment).count() >= lines_before
    assert f"ok-{marker}" in through_proxy(app.environment("production").hostname).text
    labelled = containers(label=f"slipway.app={app.name}")
    assert {c.id for c in labelled} == set(final.containers)


@pytest.mark.restarts_services
def test_postgresql_away_for_10_s_mid_run_lets_the_command_finish(live_app, settings):
    settings.PAAS_HEARTBEAT_TIMEOUT = PRODUCTION_HEARTBEAT_TIMEOUT
    run = runs.start_run(live_app, "production", "echo before; sleep 16; echo after")
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "running", timeout=60)
    _postgres_away_for(10)
    deadline = time.monotonic() + 90
    while not (done := Run.objects.get(pk=run.pk)).is_final and time.monotonic() < deadline:
        warden.reconcile(wiring.runtime(), wiring.router())
        time.sleep(2)
    assert (done.status, done.exit_code) == ("succeeded", 0), done.message
    assert ["before", "after"] == [
        t for t in done.log_lines.values_list("text", flat=True) if not t.startswith("==>")
    ]
    assert containers(label=f"slipway.run={run.pk}") == []


@pytest.mark.restarts_services
def test_a_redis_restart_mid_build_loses_nothing(platform, owner, tmp_path):
    marker = uuid.uuid4().hex
    repo = make_repo(tmp_path / "rd", {"Dockerfile": _dockerfile(marker, build_sleep=6)})
    app = App.objects.create(name="redisaway", owner=owner, repository=str(repo))
    deployment = services.queue_deployment(app, "production")
    wait_for(lambda: _logged(deployment, f"building-{marker}"), timeout=120, every=0.1)
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], check=False)
    services_command()
    final = _final_with_warden_rounds(deployment, every=2)
    # Celery's worker ends when the broker goes while it holds an unacknowledged task (kombu
    # 5.7: "Unrecoverable error" restoring it), once that task is done; scripts/run starts
    # it again. Wait until it has either ended or answers, so the next test has a worker.
    wait_for(lambda: _worker_ended_or_answers(platform), timeout=60, message="the worker")
    platform.ensure_running()
    assert final.status == "succeeded", log_text(final)
    assert f"ok-{marker}" in through_proxy(app.environment("production").hostname).text
    assert {c.id for c in containers(label=f"slipway.app={app.name}")} == set(final.containers)


def _worker_ended_or_answers(worker) -> bool:
    if worker.process.poll() is not None:
        return True
    try:  # a connection of its own: the pool's were cut by the restart
        with celery_app.connection_for_write() as broker:
            return bool(celery_app.control.ping(timeout=1, connection=broker))
    except Exception:  # noqa: BLE001 - Redis still coming back
        return False


# --- found by this suite: a warden round in the middle of an app's first switch -------------


@pytest.mark.django_db(transaction=True)
def test_a_warden_round_between_a_first_switch_and_going_live_keeps_the_new_route(make_app):
    # The Redis case above once answered 404: a round ran after the first deployment wrote
    # its route and before it was recorded live, found no live deployment, and removed it.
    app = make_app("firstswitch", staging=False)
    env = app.environment("production")
    deployment = app.new_deployment(env)
    assert deployment.claim()
    deployment.mark_starting()
    router = wiring.router()
    router.apply(routing.route_for(env, ["10.213.0.9:5000"], "/"))
    try:
        warden.sync_routes(router, wiring.runtime())
        assert router.get(env.route_id) is not None
        deployment.mark_failed("test", "gone")  # and once it is over, the route goes
        warden.sync_routes(router, wiring.runtime())
        assert router.get(env.route_id) is None
    finally:
        router.remove(env.route_id)
