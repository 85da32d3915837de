"""Automatic rollback after go-live, on the real worker, Docker and Traefik: a release that
passes its health check and then crash-loops is replaced by the previous deployment, with
the reason on both and a notification; a healthy release, a rollback, and an app that
turned it off are left alone."""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.models import App
from apps.models.notifications import NotificationDelivery
from deployments import services, wiring
from deployments.models import Deployment, EnvironmentMetric
from deployments.workers.auto_rollback import check_recent_releases, error_rate
from tests.deployments.test_notifications import Receiver, loopback_target
from tests.support import (
    commit,
    log_text,
    make_live_deployment,
    make_repo,
    through_proxy,
    wait_final,
    wait_for,
)

DOCKERFILE = 'FROM {image}\nWORKDIR /srv\nCOPY server.py .\nCMD ["python3", "server.py"]\n'
# Answers at once (the health check passes, the release goes live), then after LIFE seconds
# exits 1: the engine's restart policy brings it back, and it dies again.
SERVER = """
import http.server, os, sys, threading
LIFE = {life}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"version {version}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
if LIFE:
    threading.Timer(LIFE, lambda: os._exit(1)).start()
server = http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler)
server.serve_forever()
"""


def _files(version: int, life: float = 0) -> dict[str, str]:
    image = settings.PAAS_BASE_IMAGES["python"]
    return {
        "Dockerfile": DOCKERFILE.format(image=image),
        "server.py": SERVER.format(life=life, version=version),
    }


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def good_app(platform, owner, tmp_path, hook, settings):
    repo = make_repo(tmp_path / "steady", _files(1))
    app = App.objects.create(name="steady", owner=owner, repository=str(repo))
    app.repo = repo
    app.target, _ = loopback_target(settings, app, hook.url, ["deployment.auto_rolled_back"])
    first = wait_final(services.queue_deployment(app, "production"))
    assert first.status == "succeeded", log_text(first)
    return app


def _deploy_version(app, version: int, life: float = 0) -> Deployment:
    commit(app.repo, _files(version, life), f"version {version}")
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", log_text(deployment)
    return deployment


def _live(app) -> Deployment:
    return Deployment.objects.get(pk=app.environment("production").live_deployment_id)


def _body(app) -> str:
    return through_proxy(app.environment("production").hostname).text


def test_a_release_that_crash_loops_after_going_live_is_rolled_back_and_notified(
    good_app, hook, owner
):
    bad = _deploy_version(good_app, 2, life=1.5)
    runtime = wiring.runtime()
    wait_for(
        lambda: check_recent_releases(runtime) == 1,
        timeout=90,
        every=1,
        message="the crash loop to be seen",
    )
    rollback = wait_final(Deployment.objects.filter(app=good_app, trigger="rollback").get())
    assert rollback.status == "succeeded", log_text(rollback)
    assert _live(good_app).pk == rollback.pk
    assert rollback.image_id == Deployment.objects.get(app=good_app, number=1).image_id
    wait_for(lambda: _body(good_app) == "version 1", timeout=30, message="version 1 answering")

    bad.refresh_from_db()
    reason = bad.step_data["auto_rolled_back"]["reason"]
    assert "restarted" in reason and bad.step_data["auto_rolled_back"]["to"] == 1
    assert rollback.step_data["auto_rollback_of"]["from"] == bad.number
    assert "Rolled back automatically" in log_text(bad)
    assert "Automatic rollback of #2" in log_text(rollback)

    wait_for(lambda: hook.requests, timeout=30, message="the notification")
    delivery = NotificationDelivery.objects.get(target=good_app.target)
    payload = json.loads(delivery.body)
    assert delivery.event == "deployment.auto_rolled_back"
    assert payload["error"]["code"] == "auto_rolled_back" and "#2" in payload["error"]["message"]

    # The app page says so plainly; and the rollback itself is never rolled back.
    client = _client(owner)
    page = client.get(reverse("app-detail", args=["steady"])).content.decode()
    assert "Rolled back automatically from #2" in page
    assert check_recent_releases(runtime) == 0


def test_a_healthy_release_and_an_app_that_turned_it_off_are_left_alone(good_app, api):
    _deploy_version(good_app, 2)
    runtime = wiring.runtime()
    for _ in range(4):
        assert check_recent_releases(runtime) == 0
    assert not Deployment.objects.filter(app=good_app, trigger="rollback").exists()

    assert api.patch("/apps/steady", {"auto_rollback": False}).status_code == 200
    _deploy_version(good_app, 3, life=1.5)
    wait_for(
        lambda: _restarts(good_app) >= settings.PAAS_AUTO_ROLLBACK_RESTARTS,
        timeout=90,
        message="the crash loop",
    )
    assert check_recent_releases(runtime) == 0
    assert not Deployment.objects.filter(app=good_app, trigger="rollback").exists()


def _restarts(app) -> int:
    runtime = wiring.runtime()
    return sum(runtime.restart_count(c) for c in _live(app).web_containers)


def _client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_mostly_5xx_after_going_live_is_a_verdict_and_a_few_errors_are_not(make_app):
    app = make_app("erring")
    live = make_live_deployment(app, "sha256:" + "a" * 64)
    env = app.environment("production")

    def sampled(requests: int, errors: int) -> None:
        EnvironmentMetric.objects.create(
            environment=env,
            deployment=live.number,
            at=timezone.now(),
            step=30,
            requests=requests,
            errors_5xx=errors,
        )

    sampled(10, 9)  # too few requests to judge
    assert error_rate(live) is None
    sampled(30, 2)  # 11 of 40: under half
    assert error_rate(live) is None
    sampled(40, 29)  # 40 of 80: not more than half
    assert error_rate(live) is None
    sampled(20, 20)  # 60 of 100
    verdict = error_rate(live)
    assert verdict.reason == "60 of its 100 requests answered 5xx since it went live"
    # Rows from before it went live, or of another deployment, do not count.
    EnvironmentMetric.objects.filter(environment=env).update(deployment=live.number + 1)
    assert error_rate(live) is None
