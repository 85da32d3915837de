"""A worker killed with SIGKILL mid-build leaves nothing stuck and nothing orphaned."""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.models import App
from deployments import jobs, services, wiring
from deployments.models import Deployment, LogLine
from deployments.workers import warden
from paas.celery import app as celery_app
from tests.support import containers, log_text, make_repo, through_proxy, wait_final, wait_for


def _slow_dockerfile(marker: str) -> str:
    # The marker busts the layer cache, so every run really builds (and really sleeps).
    return (
        f"FROM {settings.PAAS_BASE_IMAGES['python']}\n"
        f"RUN echo building-{marker} && sleep 6\n"
        "WORKDIR /srv\nRUN echo ok > index.html\n"
        'CMD ["sh", "-c", "exec python3 -m http.server $PORT"]\n'
    )


def _containers_of(app, marker):
    labelled = containers(label=f"slipway.app={app.name}")
    builders = [c for c in containers() if marker in " ".join(c.attrs["Config"]["Cmd"] or [])]
    return labelled, builders


def _silence_the_heartbeat(deployment) -> None:
    """Leave the row as PAAS_HEARTBEAT_TIMEOUT of silence would, without waiting it out."""
    stale = timezone.now() - timedelta(seconds=settings.PAAS_HEARTBEAT_TIMEOUT + 1)
    Deployment.objects.filter(pk=deployment.pk).update(heartbeat_at=stale)


def test_a_worker_killed_mid_build_is_recovered_without_orphans(platform, owner, tmp_path):
    marker = uuid.uuid4().hex
    repo = make_repo(tmp_path / "slow", {"Dockerfile": _slow_dockerfile(marker)})
    app = App.objects.create(name="slowbuild", owner=owner, repository=str(repo))
    deployment = services.queue_deployment(app, "production")

    wait_for(
        lambda: LogLine.objects.filter(
            deployment=deployment, text__contains=f"building-{marker}"
        ).exists(),
        timeout=120,
        message="the build to reach the slow step",
    )
    platform.kill()
    assert Deployment.objects.get(pk=deployment.pk).status == "building"

    platform.start()
    _silence_the_heartbeat(deployment)
    result = warden.reconcile(wiring.runtime(), wiring.router())
    assert result["recovered"] == 1

    final = wait_final(deployment)
    assert final.status in ("succeeded", "failed"), final.status
    assert "stopped answering" in log_text(final)
    labelled, builders = _containers_of(app, marker)
    if final.status == "succeeded":
        assert final.attempt == 1
        assert [c.name for c in labelled] == [f"{settings.PAAS_INSTANCE}-slowbuild-production-1"]
        assert through_proxy(app.environment("production").hostname).status_code == 200
    else:
        assert final.error_code == "worker_lost" and labelled == []
    assert builders == [], "an intermediate build container of the killed build was left behind"


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
