"""Outbound notifications: signed, retried with one log row per event, refused for internal
addresses, and e-mailed to the owner — against real HTTP receivers on loopback."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from apps.models import App
from apps.models.notifications import NotificationDelivery, NotificationTarget
from deployments import services, wiring
from deployments.services import notifications
from deployments.services.notifications import TargetRefused
from deployments.workers import deliveries, warden
from deployments.workers.pipeline import lifecycle
from deployments.workers.pipeline.errors import StepFailed
from paas.celery import app as celery_app
from tests.support import log_text, make_repo, sample_files, wait_final, wait_for

PUBLIC_URL = "https://93.184.215.14/hooks/slipway"  # a literal: no DNS needed to check it


class Receiver:
    """A webhook receiver on 127.0.0.1 answering the given statuses in turn (then 200)."""

    def __init__(self, statuses=(), headers=None):
        self.statuses, self.headers, self.requests = list(statuses), headers or {}, []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        return Handler

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    started = []

    def start(*statuses, headers=None):
        started.append(Receiver(statuses, headers))
        return started[-1]

    yield start
    for one in started:
        one.close()


def _verifies(secret: str, headers: dict, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Slipway-Signature"], expected)


def loopback_target(settings, app, url, events=None):
    """Loopback receivers need the operator's permission, stamped on the target when it is
    added: the worker, whose own setting stays off, then delivers to it."""
    settings.PAAS_NOTIFY_ALLOW_PRIVATE = True
    target, secret = notifications.add_target(app, url, events)
    settings.PAAS_NOTIFY_ALLOW_PRIVATE = False
    assert target.allow_private
    return target, secret


# --- delivery through the real worker ---------------------------------------------------------


def test_it_retries_a_failing_receiver_and_logs_one_delivered_event(
    platform, make_app, settings, receiver
):
    hook = receiver(500, 500)
    app = make_app("hooked")
    target, secret = loopback_target(settings, app, hook.url + "/in?team=ops", ["app.crashed"])

    notifications.notify(
        app, "app.crashed", environment=app.environment("production"), error=("app_crashed", "boom")
    )

    delivered = wait_for(
        lambda: NotificationDelivery.objects.filter(target=target, status="delivered").first(),
        timeout=30,
        message="the third attempt to be delivered",
    )
    assert NotificationDelivery.objects.filter(target=target).count() == 1
    assert delivered.attempts == 3 and delivered.last_response_code == 200
    assert len(hook.requests) == 3
    ids = {headers["X-Slipway-Delivery"] for headers, _ in hook.requests}
    assert ids == {str(delivered.delivery_id)}  # the same id on every retry
    for headers, body in hook.requests:
        assert headers["X-Slipway-Event"] == "app.crashed"
        assert _verifies(secret, headers, body)
    data = json.loads(hook.requests[-1][1])
    assert data["app"] == "hooked" and data["environment"] == "production"
    assert data["error"] == {"code": "app_crashed", "message": "boom"}
    assert data["url"].startswith("http://hooked.localhost") and data["timestamp"]


def test_a_real_deployment_sends_started_then_succeeded(
    platform, owner, settings, receiver, tmp_path
):
    hook = receiver()
    repo = make_repo(tmp_path / "site", sample_files("static"))
    app = App.objects.create(name="notified", owner=owner, repository=str(repo))
    target, secret = loopback_target(settings, app, hook.url)

    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", log_text(deployment)

    wait_for(lambda: len(hook.requests) == 2, timeout=30, message="two notifications")
    assert hook.events() == ["deployment.started", "deployment.succeeded"]
    started, succeeded = (json.loads(body) for _, body in hook.requests)
    assert started["status"] == "building" and succeeded["status"] == "succeeded"
    assert succeeded["deployment"] == 1 and succeeded["environment"] == "production"
    assert succeeded["error"] is None and succeeded["url"] == app.environment("production").url
    assert all(_verifies(secret, headers, body) for headers, body in hook.requests)
    wait_for(
        lambda: set(target.deliveries.values_list("status", flat=True)) == {"delivered"},
        timeout=10,
        message="both deliveries logged as delivered",
    )


def test_the_warden_resends_a_delivery_whose_message_was_lost(
    platform, make_app, settings, receiver
):
    from datetime import timedelta

    from django.utils import timezone

    hook = receiver()
    target, _ = loopback_target(settings, make_app("lost"), hook.url)
    # A delivery row whose queued message vanished (a Redis restart) two minutes ago.
    lost = NotificationDelivery.objects.create(
        target=target,
        event="deployment.started",
        body='{"event": "deployment.started"}',
        next_attempt_at=timezone.now() - timedelta(minutes=2),
    )

    assert warden.reconcile(wiring.runtime(), wiring.router())["notifications"] == 1
    assert (
        warden.reconcile(wiring.runtime(), wiring.router())["notifications"] == 0
    )  # not twice while it is under way

    wait_for(
        lambda: NotificationDelivery.objects.get(pk=lost.pk).status == "delivered",
        timeout=20,
        message="the resent delivery",
    )
    assert len(hook.requests) == 1 and NotificationDelivery.objects.get(pk=lost.pk).attempts == 1


# --- one attempt at a time (in this process) ---------------------------------------------------


@pytest.mark.django_db
def test_it_gives_up_after_the_configured_attempts(make_app, settings, receiver):
    settings.PAAS_NOTIFY_ATTEMPTS = 3
    hook = receiver(503, 503, 503, 503)
    target, _ = loopback_target(settings, make_app("down"), hook.url)
    [delivery] = notifications.notify(target.app, "deployment.failed")

    delays = [deliveries.attempt_delivery(delivery.pk, n) for n in (1, 2, 3)]

    assert delays == [
        settings.PAAS_NOTIFY_BACKOFF_BASE,
        2 * settings.PAAS_NOTIFY_BACKOFF_BASE,
        None,
    ]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("failed", 3, 503)
    assert delivery.error_code == "http_error" and "503" in delivery.last_error
    assert deliveries.attempt_delivery(delivery.pk, 4) is None
    assert len(hook.requests) == 3


@pytest.mark.django_db
def test_a_duplicate_message_for_the_same_attempt_sends_nothing(make_app, settings, receiver):
    hook = receiver(500)
    target, _ = loopback_target(settings, make_app("dup"), hook.url)
    [delivery] = notifications.notify(target.app, "deployment.started")

    assert deliveries.attempt_delivery(delivery.pk, 1) is not None
    assert deliveries.attempt_delivery(delivery.pk, 1) is None  # redelivered copy
    assert len(hook.requests) == 1


@pytest.mark.django_db
def test_redirects_are_not_followed(make_app, settings, receiver):
    elsewhere = receiver()
    hook = receiver(302, headers={"Location": elsewhere.url + "/steal"})
    target, _ = loopback_target(settings, make_app("redir"), hook.url)
    [delivery] = notifications.notify(target.app, "deployment.started")

    deliveries.attempt_delivery(delivery.pk, 1)

    delivery.refresh_from_db()
    assert (
        delivery.last_response_code == 302 and "redirects are not followed" in delivery.last_error
    )
    assert elsewhere.requests == []


@pytest.mark.django_db
def test_delivery_checks_the_address_again_and_refuses_a_private_one(make_app, receiver):
    hook = receiver()
    target, _ = notifications.add_target(make_app("rebind"), PUBLIC_URL)
    # What DNS rebinding does: the name checked as public now leads to this machine.
    NotificationTarget.objects.filter(pk=target.pk).update(url=hook.url + "/hooks/slipway")
    [delivery] = notifications.notify(target.app, "deployment.started")

    deliveries.attempt_delivery(delivery.pk, 1)

    delivery.refresh_from_db()
    assert delivery.error_code == "private_address_refused" and "loopback" in delivery.last_error
    assert hook.requests == []


def test_the_request_goes_to_the_checked_address_not_a_new_lookup(receiver):
    hook = receiver()
    port = hook.server.server_port
    # Resolving this name would fail: reaching the receiver proves no second lookup happened.
    status = deliveries.post(
        f"http://pinned.invalid:{port}/in", ["127.0.0.1"], {}, b"{}", timeout=5
    )
    assert status == 200
    assert hook.requests[0][0]["Host"] == f"pinned.invalid:{port}"


# --- refusing internal targets -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, code",
    [
        ("http://127.0.0.1/hook", "private_address_refused"),
        ("http://10.0.0.1/hook", "private_address_refused"),
        ("http://169.254.169.254/latest/meta-data/", "private_address_refused"),
        ("http://[::1]:8080/hook", "private_address_refused"),
        ("http://[fd00::1]/hook", "private_address_refused"),
        ("http://[::ffff:127.0.0.1]/hook", "private_address_refused"),
        ("http://0.0.0.0/hook", "private_address_refused"),
        ("http://224.0.0.1/hook", "private_address_refused"),
        ("http://localhost:8000/hook", "private_address_refused"),
        ("file:///etc/passwd", "url_scheme_refused"),
        ("ftp://example.com/hook", "url_scheme_refused"),
        ("https://user:secret@example.com/hook", "url_credentials_refused"),
        ("http://", "invalid_url"),
        ("http://example.com:99999/hook", "invalid_url"),
        ("http://exa mple.com/hook", "invalid_url"),
    ],
)
def test_internal_and_odd_targets_are_refused_by_default(make_app, url, code):
    app = make_app("guarded")
    with pytest.raises(TargetRefused) as refused:
        notifications.add_target(app, url)
    assert refused.value.code == code
    assert refused.value.message
    assert not NotificationTarget.objects.exists()


@pytest.mark.django_db
def test_the_reason_names_the_kind_of_address(make_app):
    with pytest.raises(TargetRefused) as refused:
        notifications.add_target(make_app("why"), "http://localhost/hook")
    assert "localhost resolves to" in refused.value.message
    assert "loopback" in refused.value.message


@pytest.mark.django_db
def test_a_public_target_is_stored_with_its_secret_encrypted(make_app):
    target, secret = notifications.add_target(
        make_app("public"), PUBLIC_URL, ["deployment.failed", "app.crashed"]
    )
    assert target.events == ["deployment.failed", "app.crashed"] and not target.allow_private
    assert NotificationTarget.objects.get(pk=target.pk).secret == secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM apps_notificationtarget WHERE id = %s", [target.pk])
        stored = cursor.fetchone()[0]
    assert secret not in stored


@pytest.mark.django_db
def test_a_target_may_take_only_failed_scheduled_jobs(make_app):
    target, _ = notifications.add_target(make_app("cronwatch"), PUBLIC_URL, ["job.failed"])
    assert target.events == ["job.failed"]
    assert target.wants("job.failed") and not target.wants("deployment.failed")


@pytest.mark.django_db
def test_unknown_events_are_refused(make_app):
    with pytest.raises(services.ServiceError) as refused:
        notifications.add_target(make_app("events"), PUBLIC_URL, ["deployment.exploded"])
    assert refused.value.code == "invalid_events"


# --- e-mail ---------------------------------------------------------------------------------------


@pytest.fixture
def local_mail(settings):
    """Tasks run in this process, so e-mail lands in this process's outbox."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Jobs go by task name; the eager path needs the tasks registered here, as a worker has.
    celery_app.loader.import_default_modules()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield mail.outbox
    celery_app.conf.task_always_eager = previous


@pytest.mark.django_db
def test_a_failed_deployment_emails_the_owner(
    make_app, local_mail, django_capture_on_commit_callbacks
):
    app = make_app("broken")
    deployment = app.new_deployment(app.environment("production"))
    deployment.mark_building()

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.fail(deployment, StepFailed("build_failed", "The build failed (exit 2).", True))

    [message] = local_mail
    assert message.to == ["alice@example.com"]
    assert message.subject == "[Slipway] broken: deployment #1 failed (production)"
    assert "build_failed: The build failed (exit 2)." in message.body


@pytest.mark.django_db
def test_a_succeeded_deployment_sends_no_email(
    make_app, local_mail, django_capture_on_commit_callbacks
):
    app = make_app("fine")
    with django_capture_on_commit_callbacks(execute=True):
        notifications.notify(app, "deployment.succeeded", environment=app.environment("production"))
    assert local_mail == []


# --- API and dashboard ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_adds_lists_shows_and_removes_targets(make_app, api, outsider_api):
    make_app("apihooks")
    base = "/apps/apihooks/notifications"

    created = api.post(base, {"url": PUBLIC_URL, "events": ["deployment.failed"]})
    assert created.status_code == 201
    body = created.json()
    assert body["secret"] and body["events"] == ["deployment.failed"]
    listed = api.get(base).json()["targets"]
    assert [t["id"] for t in listed] == [body["id"]] and "secret" not in listed[0]
    assert api.get(f"{base}/{body['id']}").json()["secret"] == body["secret"]
    assert api.get(f"{base}/{body['id']}/deliveries").json() == {"deliveries": []}

    for path in (base, f"{base}/{body['id']}", f"{base}/{body['id']}/deliveries"):
        assert outsider_api.get(path).status_code == 404
    assert outsider_api.delete(f"{base}/{body['id']}").status_code == 404
    assert api.delete(f"{base}/{body['id']}").status_code == 204
    assert api.get(base).json() == {"targets": []}


@pytest.mark.django_db
def test_the_api_refuses_an_internal_target_with_a_clear_error(make_app, api):
    make_app("apiguard")
    refused = api.post("/apps/apiguard/notifications", {"url": "http://169.254.169.254/"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "private_address_refused"
    assert "link-local" in refused.json()["error"]["message"]
    assert not NotificationTarget.objects.exists()


@pytest.mark.django_db
def test_the_dashboard_partial_adds_reveals_and_is_the_owners_alone(
    make_app, owner, outsider, staff
):
    make_app("panel")
    client = Client(headers={"HX-Request": "true"})
    client.force_login(owner)
    url = "/apps/panel/notifications/"

    assert client.get(url).status_code == 200
    refused = client.post(url, {"url": "http://127.0.0.1:9/"})
    assert refused.status_code == 400 and "loopback" in refused.content.decode()
    added = client.post(url, {"url": PUBLIC_URL, "events": ["app.crashed"]})
    target = NotificationTarget.objects.get()
    assert added.status_code == 200 and target.secret in added.content.decode()
    assert target.secret not in client.get(url).content.decode()
    revealed = client.post(f"{url}{target.pk}/reveal/")
    assert target.secret in revealed.content.decode()

    for user in (outsider, staff):
        other = Client(headers={"HX-Request": "true"})
        other.force_login(user)
        assert other.get(url).status_code == 404
        assert other.post(f"{url}{target.pk}/reveal/").status_code == 404
        assert other.post(f"{url}{target.pk}/delete/").status_code == 404
    assert client.post(f"{url}{target.pk}/delete/").status_code == 200
    assert not NotificationTarget.objects.exists()
