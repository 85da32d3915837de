"""Deployments whose worker or message was lost: the warden takes them back, and leaves a
live one alone. A worker SIGKILLed mid-step: tests/deployments/test_faults.py."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.models import App
from deployments import jobs, services, wiring
from deployments.models import Deployment
from deployments.workers import warden
from paas.celery import app as celery_app
from tests.support import make_repo, wait_final


def test_the_warden_requeues_a_pending_deployment_whose_message_was_lost(platform, owner, tmp_path):
    repo = make_repo(tmp_path / "st", {"index.html": "<h1>hi</h1>"})
    app = App.objects.create(name="lostmsg", owner=owner, repository=str(repo))
    platform.kill()  # nobody consumes the message...
    deployment = services.queue_deployment(app, "production")
    celery_app.control.purge()  # ...and then it is gone, as after a Redis restart
    platform.start()
    Deployment.objects.filter(pk=deployment.pk).update(
        created_at=deployment.created_at.replace(year=2000)
    )
    assert warden.reconcile(wiring.runtime(), wiring.router())["requeued"] == 1
    assert wait_final(deployment).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_a_claimed_deployment_with_a_live_heartbeat_is_left_alone(make_app):
    app = make_app("busy")
    deployment = app.new_deployment(app.environment("production"))
    assert deployment.claim()
    assert warden.recover_stale_deployments(runtime=None, router=None) == 0
    assert Deployment.objects.get(pk=deployment.pk).status == "building"


@pytest.mark.django_db(transaction=True)
def test_a_build_waiting_for_a_build_node_is_given_the_wait_timeout_not_the_heartbeats(
    make_app, settings, monkeypatch
):
    settings.PAAS_BUILD_WAIT_TIMEOUT = 600
    sent = []
    monkeypatch.setattr(jobs, "_send", lambda task, *args, **kw: sent.append((task, *args)))
    app = make_app("queued")
    deployment = app.new_deployment(app.environment("production"))
    assert deployment.claim() and deployment.hand_over("", "queued", deployment.attempt)
    quiet = timezone.now() - timedelta(seconds=settings.PAAS_HEARTBEAT_TIMEOUT + 60)
    Deployment.objects.filter(pk=deployment.pk).update(heartbeat_at=quiet)
    assert warden.recover_stale_deployments(runtime=wiring.runtime(), router=None) == 0

    # Past the wait: the warden gives it back to the queue as it does a lost worker's.
    long_ago = timezone.now() - timedelta(seconds=settings.PAAS_BUILD_WAIT_TIMEOUT + 60)
    Deployment.objects.filter(pk=deployment.pk).update(heartbeat_at=long_ago)
    assert warden.recover_stale_deployments(runtime=wiring.runtime(), router=None) == 1
    recovered = Deployment.objects.get(pk=deployment.pk)
    assert (recovered.status, recovered.attempt) == ("pending", 1)
    assert "handover" not in recovered.step_data
    assert sent == [("run_deployment", deployment.pk)]
    # The build node's message for attempt 0, delivered late, does nothing.
    assert not recovered.hand_over("queued", "building", 0)
