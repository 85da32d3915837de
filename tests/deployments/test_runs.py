"""One-off runs through the real worker, dockerd and the app's network: output and exit code,
a kill from the API's cancel, and a worker killed mid-run leaving nothing running.

The live deployment is recorded, not built (its image is the local static base, which has
a shell and busybox): what is under test is the run, not the pipeline."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from deployments import services, wiring
from deployments.adapters.runtime import ContainerSpec
from deployments.models import Run, RunLogLine
from deployments.services import runs
from deployments.workers import warden
from deployments.workers.networks import ensure_app_network
from tests.support import containers, make_live_deployment, wait_for

PEER = "echo peer-says-hi > /srv/index.html; exec busybox httpd -f -p 8080 -h /srv"


@pytest.fixture
def live_app(platform, make_app, local_image_id):
    app = make_app("runner")
    make_live_deployment(app, local_image_id)
    return app


def start_peer(app, image) -> None:
    """A container on the app's network answering as `peer`, as an add-on answers by name."""
    runtime = wiring.runtime()
    ensure_app_network(app, runtime)
    spec = ContainerSpec(
        name=f"{settings.PAAS_INSTANCE}-{app.name}-peer",
        image=image,
        env={},
        port=8080,
        labels=app.resource_labels,
        network=app.network,
        memory="64m",
        cpus=0.2,
        command=["sh", "-c", PEER],
        aliases=["peer"],
    )
    runtime.start(spec)


def wait_run_final(run, timeout=90) -> Run:
    def final():
        fresh = Run.objects.get(pk=run.pk)
        return fresh if fresh.is_final else None

    return wait_for(final, timeout, message=f"run {run.pk} to finish")


def output(run) -> list[str]:
    return list(RunLogLine.objects.filter(run=run).values_list("text", flat=True))


def run_containers(run) -> list:
    return containers(label=f"slipway.run={run.pk}")


def test_a_run_prints_its_output_and_ends_with_its_exit_code(live_app, local_image_id):
    env = live_app.environment("production")
    services.set_env_vars(env, {"GREETING": "hello from the env"})
    start_peer(live_app, local_image_id)
    script = (
        'echo "$GREETING"; echo "port=$PORT"; echo oops >&2; '
        "busybox wget -qO- http://peer:8080/; exit 3"
    )
    run = wait_run_final(runs.start_run(live_app, "production", script))
    assert (run.status, run.exit_code, run.error_code) == ("failed", 3, "exit_code")
    lines = output(run)
    assert "hello from the env" in lines and "oops" in lines
    assert f"port={live_app.port or settings.PAAS_DEFAULT_PORT}" in lines
    # A container on the app's network answered by its name, from inside the run's.
    assert "peer-says-hi" in lines, lines
    assert lines[-1] == "==> Exited with code 3"
    assert run.started_at and run.finished_at and run.deployment_id == env.live_deployment_id
    ok = wait_run_final(runs.start_run(live_app, "production", "echo done"))
    assert (ok.status, ok.exit_code) == ("succeeded", 0) and "done" in output(ok)
    assert run_containers(run) == [] and run_containers(ok) == []


def test_cancelling_a_running_command_kills_its_container(live_app):
    run = runs.start_run(live_app, "production", "echo started; sleep 120; echo never")
    wait_for(lambda: "started" in output(run), timeout=60, message="the command to start")
    assert len(run_containers(run)) == 1
    runs.cancel_run(Run.objects.get(pk=run.pk))
    final = wait_run_final(run, timeout=20)
    assert final.status == "cancelled" and final.error_code == "cancelled"
    assert "never" not in output(final) and "==> Killed: the run was cancelled." in output(final)
    assert (final.finished_at - final.started_at) < timedelta(seconds=60)
    assert run_containers(run) == []


def test_a_worker_killed_mid_run_leaves_no_running_run_nor_container(live_app, platform):
    run = runs.start_run(live_app, "production", "echo started; sleep 300")
    wait_for(lambda: "started" in output(run), timeout=60, message="the command to start")
    platform.kill()
    try:
        assert Run.objects.get(pk=run.pk).status == "running"
        assert len(run_containers(run)) == 1  # nobody is left to remove it
        # As PAAS_HEARTBEAT_TIMEOUT of silence would leave it, without waiting it out.
        stale = timezone.now() - timedelta(seconds=settings.PAAS_HEARTBEAT_TIMEOUT + 1)
        Run.objects.filter(pk=run.pk).update(heartbeat_at=stale)
        result = warden.reconcile(wiring.runtime(), wiring.router())
    finally:
        platform.start()
    assert result["runs"]["lost"] == 1 and result["runs"]["removed"] == 1
    final = Run.objects.get(pk=run.pk)
    assert (final.status, final.error_code) == ("failed", "worker_lost")
    assert run_containers(run) == []
