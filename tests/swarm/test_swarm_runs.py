"""Release phases and one-off runs on the lab swarm: each is a one-task service that is not
restarted, on whichever node Swarm picks, read through Swarm's log broker and removed at
the end (SwarmRuntime.run_once)."""

import pytest

from deployments.models import Deployment, Run, Trigger
from deployments.services import runs as run_requests
from deployments.workers import runs as one_off_runs
from tests.support import log_text

from .conftest import SERVE_HOSTNAME, answering, deploy

pytestmark = pytest.mark.django_db(transaction=True)


def with_release(app, live: Deployment, release: str) -> Deployment:
    """A recorded deployment of the live image whose release command is `release`."""
    return app.new_deployment(
        app.environment("production"),
        status="succeeded",
        image_id=live.image_id,
        step_data={"processes": {"web": SERVE_HOSTNAME}, "release_command": release},
    )


def leftover_services(swarm, label: str) -> list:
    return swarm.client.api.services(filters={"label": label})


def test_the_release_phase_runs_as_a_task_and_a_failing_one_changes_nothing(
    swarm, swarm_app, settings
):
    settings.PAAS_RELEASE_ON_ROLLBACK = True  # a rollback runs its release phase
    first = deploy(swarm_app, swarm)
    assert first.status == "succeeded"
    released = deploy(
        swarm_app, swarm, Trigger.ROLLBACK, source=with_release(swarm_app, first, "echo migrated")
    )
    assert released.status == "succeeded", log_text(released)
    assert "migrated" in log_text(released).splitlines()
    serving = answering(swarm_app)

    broken = with_release(swarm_app, first, "echo migrating && exit 7")
    failed = deploy(swarm_app, swarm, Trigger.ROLLBACK, source=broken)
    assert failed.status == "failed"
    assert failed.error_code == "release_failed", log_text(failed)
    assert "exited with code 7" in failed.error_message
    assert "migrating" in log_text(failed)
    assert answering(swarm_app) == serving  # the live replicas, untouched
    assert leftover_services(swarm, "slipway.process=release") == []


def test_a_one_off_run_runs_as_a_task_with_its_output_and_exit_code(swarm, swarm_app):
    assert deploy(swarm_app, swarm).status == "succeeded"
    run = run_requests.start_run(swarm_app, "production", "echo one; echo two; exit 3")
    assert one_off_runs.execute(run.pk, swarm) == "failed"
    run = Run.objects.get(pk=run.pk)
    assert run.exit_code == 3
    lines = list(run.log_lines.values_list("text", flat=True))
    assert "one" in lines and "two" in lines, lines
    assert leftover_services(swarm, "slipway.kind=run") == []
    assert swarm.containers_with_labels({"slipway.kind": "run"}) == []
