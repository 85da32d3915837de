"""The warden brings crashed apps back — on the real worker, dockerd and Caddy — and leaves
stopped apps and environments with a deployment in progress alone."""

import json
import time

import docker
import pytest
from django.conf import settings

from apps.models import App
from apps.models.notifications import NotificationDelivery
from deployments import services, wiring
from deployments.models import Deployment
from deployments.workers import warden
from tests.deployments.test_notifications import Receiver, loopback_target
from tests.support import log_text, through_proxy, wait_for

pytestmark = pytest.mark.live_app("crashy")


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(autouse=True)
def _crash_notifications(live_app, hook, settings):
    """Every test here deploys an app that answers, and listens to what the warden reports."""
    assert through_proxy(_host(live_app)).status_code == 200
    live_app.target, _ = loopback_target(
        settings, live_app, hook.url, ["app.crashed", "app.recovered"]
    )


def _host(app):
    return app.environment("production").hostname


def _live(app) -> Deployment:
    return Deployment.objects.get(pk=app.environment("production").live_deployment_id)


def _container(app):
    return docker.from_env().containers.get(_live(app).web_containers[0])


def _status(app) -> str:
    return App.objects.get(pk=app.pk).status


def _events(app) -> list[tuple[str, dict]]:
    deliveries = NotificationDelivery.objects.filter(target=app.target).order_by("created_at", "id")
    return [(d.event, json.loads(d.body)) for d in deliveries]


def test_a_killed_container_is_restarted_and_answers_again(live_app, hook):
    container = _container(live_app)
    killed_at = time.monotonic()
    container.kill()
    assert through_proxy(_host(live_app)).status_code >= 500

    assert warden.reconcile(wiring.runtime(), wiring.router())["restarted"] == 1

    wait_for(lambda: through_proxy(_host(live_app)).status_code == 200, timeout=10, message="200")
    back_after = time.monotonic() - killed_at
    assert (
        back_after
        < settings.CELERY_BEAT_SCHEDULE["warden"]["schedule"] + settings.PAAS_HEALTH_TIMEOUT
    )
    container.reload()
    assert container.status == "running" and container.id == _live(live_app).web_containers[0]
    assert _status(live_app) == "running"
    events = _events(live_app)
    assert [event for event, _ in events] == ["app.crashed", "app.recovered"]
    assert events[0][1]["status"] == "crashed" and events[0][1]["error"]["code"] == "app_crashed"
    assert events[1][1]["status"] == "running"
    assert "stopped; the warden is restarting it" in log_text(_live(live_app))
    wait_for(lambda: hook.events() == ["app.crashed", "app.recovered"], timeout=15, message="sent")


def test_a_removed_container_is_replaced_by_a_fresh_one(live_app):
    before = _live(live_app)
    old_id = before.web_containers[0]
    _container(live_app).remove(force=True)

    assert warden.reconcile(wiring.runtime(), wiring.router())["restarted"] == 1

    after = _live(live_app)
    new_id = after.web_containers[0]
    assert new_id != old_id and after.containers == [new_id]
    assert docker.from_env().containers.get(new_id).status == "running"
    assert through_proxy(_host(live_app)).status_code == 200
    assert _status(live_app) == "running"
    assert "is gone; the warden is restarting it" in log_text(after)


def test_an_app_that_cannot_come_back_stays_crashed_and_is_retried(live_app):
    live = _live(live_app)
    _container(live_app).remove(force=True)
    docker.from_env().images.remove(live.image_id, force=True)  # nothing to start it from

    assert warden.reconcile(wiring.runtime(), wiring.router())["restarted"] == 0
    assert _status(live_app) == "crashed"
    assert "could not bring the app back" in log_text(live)
    assert (
        warden.reconcile(wiring.runtime(), wiring.router())["restarted"] == 0
    )  # the next round tries again...
    assert log_text(live).count("could not bring the app back") == 2
    assert [event for event, _ in _events(live_app)] == ["app.crashed"]  # ...and tells once


def test_a_stopped_app_is_left_stopped(live_app):
    services.stop(live_app, "production")
    wait_for(lambda: through_proxy(_host(live_app)).status_code == 503, timeout=30, message="503")
    wait_for(lambda: _container(live_app).status == "exited", timeout=30, message="stopped")

    assert warden.reconcile(wiring.runtime(), wiring.router())["restarted"] == 0

    assert _container(live_app).status == "exited"
    assert through_proxy(_host(live_app)).status_code == 503
    assert _status(live_app) == "stopped" and _events(live_app) == []


def test_an_environment_with_a_deployment_in_progress_is_not_touched(live_app):
    container = _container(live_app)
    container.kill()
    # Created, not enqueued: it stays pending for as long as the test needs.
    live_app.new_deployment(live_app.environment("production"))

    assert warden.reconcile(wiring.runtime(), wiring.router())["restarted"] == 0

    container.reload()
    assert container.status == "exited"
    assert _status(live_app) != "crashed" and _events(live_app) == []
