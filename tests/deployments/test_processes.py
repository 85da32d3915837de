"""Process types, the release phase and formation, end to end on the real worker, Docker and
Traefik, with tests/samples/procfile: whoami's web process (it says its hostname), a worker that
finishes its job on SIGTERM, and a release that prints what it saw and exits RELEASE_EXIT.
"""

import http.client
import threading
import time
from collections import Counter

import docker
import pytest
from django.conf import settings

from apps.models import App, AuditEntry
from deployments import services
from deployments.adapters.router.traefik import TraefikRouter
from deployments.adapters.runtime.docker import DockerRuntime
from deployments.models import Deployment
from deployments.services import formation
from deployments.workers import warden
from deployments.workers.pipeline.context import Context
from deployments.workers.pipeline.steps import ReleasePhase
from tests.support import (
    containers,
    log_text,
    make_repo,
    sample_files,
    through_proxy,
    wait_final,
    wait_for,
)


def _deploy(owner, tmp_path, name: str, **env) -> tuple[App, Deployment]:
    image = settings.PAAS_BASE_IMAGES["python"]
    # whoami's server (it says its hostname) as the web process, beside the procfile sample.
    files = {
        **sample_files("whoami", python_image=image),
        **sample_files("procfile", python_image=image),
    }
    app = App.objects.create(name=name, owner=owner, repository=str(make_repo(tmp_path, files)))
    if env:
        services.set_env_vars(app.environment("production"), env)
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", log_text(deployment)
    return app, deployment


def _kinds(deployment: Deployment) -> Counter:
    client = docker.from_env()
    return Counter(
        client.containers.get(c).labels["slipway.process"] for c in deployment.containers
    )


def _running(container: str) -> bool:
    try:
        return docker.from_env().api.inspect_container(container)["State"]["Running"]
    except docker.errors.NotFound:
        return False


def test_every_procfile_line_runs_and_the_release_runs_before_them(platform, owner, tmp_path):
    app, deployment = _deploy(owner, tmp_path / "repo", "procs", MARK="first")
    log = log_text(deployment)
    assert f"release ran with MARK=first PORT={settings.PAAS_DEFAULT_PORT}" in log, log
    assert log.index("release ran") < log.index("==> Starting 1 web, 1 worker")
    assert _kinds(deployment) == {"web": 1, "worker": 1}
    worker = deployment.process_containers["worker"][0]
    assert _running(worker)
    assert "worker started" in docker.from_env().containers.get(worker).logs().decode()
    # The release container is gone; only the two processes are left.
    left = containers(
        label=[f"slipway.app={app.name}", f"slipway.instance={settings.PAAS_INSTANCE}"]
    )
    assert sorted(c.id for c in left) == sorted(deployment.containers)
    host = app.environment("production").hostname
    assert through_proxy(host).text == deployment.web_containers[0][:12]
    shown = formation.formation(app.environment("production"))["processes"]
    assert shown == {
        "web": {"replicas": 1, "command": "python3 server.py"},
        "worker": {"replicas": 1, "command": 'echo "worker booting" && python3 worker.py'},
    }


def test_a_failing_release_leaves_the_live_deployment_serving_untouched(platform, owner, tmp_path):
    app, first = _deploy(owner, tmp_path / "repo", "relfail")
    env = app.environment("production")
    before = {
        c: docker.from_env().api.inspect_container(c)["State"]["StartedAt"]
        for c in first.containers
    }
    services.set_env_vars(env, {"RELEASE_EXIT": "3", "MARK": "second"})
    second = wait_final(services.queue_deployment(app, "production"))
    assert second.status == "failed" and second.error_code == "release_failed", log_text(second)
    assert "exited with code 3" in second.error_message
    assert "release ran with MARK=second" in log_text(second)
    env.refresh_from_db()
    assert env.live_deployment_id == first.pk
    after = {
        c: docker.from_env().api.inspect_container(c)["State"]["StartedAt"]
        for c in first.containers
    }
    assert after == before  # not restarted, not replaced
    assert not containers(label=f"slipway.deployment={second.number}", name=f"-{app.name}-")
    assert through_proxy(env.hostname).text == first.web_containers[0][:12]


def test_a_rollback_runs_the_release_of_the_image_it_puts_back(platform, owner, tmp_path):
    app, first = _deploy(owner, tmp_path / "repo", "relback", MARK="first")
    services.set_env_vars(app.environment("production"), {"MARK": "second"})
    second = wait_final(services.queue_deployment(app, "production"))
    assert second.status == "succeeded", log_text(second)
    back = wait_final(services.rollback(first))
    log = log_text(back)
    assert back.status == "succeeded", log
    # The old image, today's env vars: the release runs before its containers start.
    assert "release ran with MARK=second" in log
    assert log.index("release ran") < log.index("==> Starting 1 web, 1 worker")
    assert "==> Reusing the image of deployment #1" in log


@pytest.mark.django_db
@pytest.mark.parametrize(
    "trigger, on_rollback, runs",
    [
        ("git", True, True),
        ("rollback", True, True),
        ("rollback", False, False),  # PAAS_RELEASE_ON_ROLLBACK=false
        ("promote", False, True),
        ("scale", True, False),  # the same release, already run
        ("restart", True, False),
    ],
)
def test_which_deployments_run_the_release_phase(make_app, settings, trigger, on_rollback, runs):
    settings.PAAS_RELEASE_ON_ROLLBACK = on_rollback
    app, built = make_app("rel"), {"processes": {"web": ""}, "release_command": "./release.sh"}
    env = app.environment("production")
    source = app.new_deployment(env, status="succeeded", step_data=built)
    if trigger == "git":
        deployment = app.new_deployment(env, trigger=trigger, step_data=built)
    else:
        deployment = app.new_deployment(env, trigger=trigger, source_deployment=source)
    skipped = ReleasePhase().skip(Context(deployment, runtime=None, router=None))
    assert skipped is not runs


def test_a_stop_gives_the_worker_its_sigterm_and_time_to_finish(platform, owner, tmp_path):
    """The worker's Procfile line is a shell chain (echo && python): the init signals the
    whole process group, so python gets SIGTERM even with sh in between."""
    _, deployment = _deploy(owner, tmp_path / "repo", "sigterm")
    worker = deployment.process_containers["worker"][0]
    started = time.monotonic()
    DockerRuntime().stop(worker, settings.PAAS_STOP_GRACE_SECONDS)
    took = time.monotonic() - started
    logs = docker.from_env().containers.get(worker).logs().decode()
    assert "worker got SIGTERM; finishing the job" in logs and "worker done" in logs, logs
    assert took < settings.PAAS_STOP_GRACE_SECONDS - 2, took  # it finished; no SIGKILL


class Load(threading.Thread):
    """Requests one after another on a keep-alive connection until stopped."""

    def __init__(self, host: str):
        super().__init__(daemon=True)
        self.host, self.stopped = host, threading.Event()
        self.answers: Counter = Counter()
        self.failures: list[str] = []

    def run(self):
        port = settings.PAAS_PROXY_HTTP_PORT
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        while not self.stopped.is_set():
            try:
                connection.request("GET", "/", headers={"Host": self.host})
                response = connection.getresponse()
                body = response.read().decode()
                if response.status == 200:
                    self.answers[body] += 1
                else:
                    self.failures.append(f"{response.status} {body[:80]}")
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        connection.close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.join(20)


def _scale(app, counts) -> Deployment:
    _, scaling = formation.set_formation(app, "production", counts)
    done = wait_final(scaling)
    assert done.status == "succeeded", log_text(done)
    return done


def test_scaling_web_to_three_and_back_fails_no_request(platform, owner, tmp_path):
    app, _ = _deploy(owner, tmp_path / "repo", "scaler")
    host = app.environment("production").hostname
    with Load(host) as load:
        three = _scale(app, {"web": 3, "worker": 0})
        wanted = {c[:12] for c in three.web_containers}
        wait_for(lambda: wanted <= set(load.answers), timeout=15, message="all 3 replicas")
        one = _scale(app, {"web": 1, "worker": 1})
        wait_for(lambda: load.answers[one.web_containers[0][:12]] > 20, timeout=15)
    assert load.failures == [], load.failures[:5]
    assert len(three.web_containers) == 3 and three.process_containers == {}
    assert _kinds(one) == {"web": 1, "worker": 1}
    retired = lambda: not any(_running(c) for c in three.containers)  # noqa: E731
    wait_for(retired, timeout=30, message="the 3 replicas to retire after the drain")
    assert sum(load.answers.values()) > 100


def test_a_killed_or_removed_worker_is_brought_back_by_the_warden(platform, owner, tmp_path):
    app, deployment = _deploy(owner, tmp_path / "repo", "workerkill")
    client, runtime = docker.from_env(), DockerRuntime()
    worker = deployment.process_containers["worker"][0]
    client.api.stop(worker, timeout=0)  # SIGKILL, and no restart by the policy
    warden.restart_crashed(runtime, TraefikRouter())
    assert _running(worker)
    client.api.remove_container(worker, force=True)
    warden.restart_crashed(runtime, TraefikRouter())
    live = Deployment.objects.get(pk=deployment.pk)
    fresh = live.process_containers["worker"][0]
    assert fresh != worker and _running(fresh) and fresh in live.containers
    assert "The worker process of deployment" in log_text(live)
    restarts = AuditEntry.objects.filter(app=app, action="process.restart_crashed")
    assert restarts.count() == 2 and restarts.first().target == f"#{live.number} production worker"
