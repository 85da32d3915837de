"""The suite-wide sweep (tests/conftest.py): after every test, no secret it stored may
appear in a deployment log, Slipway's lines of a run log, an app container's runtime log,
the audit log or an error page. Here it is shown to find one in each, so a green suite
means the sweep looked."""

import docker
import pytest
from django.conf import settings

from apps.models import AddOn, AuditEntry
from deployments import jobs, services
from deployments.models import Run
from tests.conftest import _keeping_error_pages, _keeping_messages, _leaked, _secrets_of

pytestmark = pytest.mark.django_db

SECRET = "sweep-finds-this-0123456789"


def test_the_sweep_finds_a_secret_in_a_deployment_log_and_in_the_audit_log(make_app):
    app = make_app("sweep")
    services.set_env_vars(app.environment("production"), {"TOKEN": SECRET})
    deployment = app.new_deployment(app.environment("production"))
    assert _leaked([SECRET]) == []
    deployment.log(f"token is {SECRET}")
    AuditEntry.record("test.leak", app, target=SECRET)
    assert _leaked([SECRET]) == ["a deployment log", "the audit log"]
    deployment.log_lines.all().delete()
    AuditEntry.objects.filter(action="test.leak").delete()  # or this test would fail the sweep


def test_the_sweep_finds_a_secret_in_slipways_lines_of_a_run_log_but_not_the_apps_own(make_app):
    app = make_app("sweeprun")
    run = Run.objects.create(app=app, environment=app.environment("production"), command="env")
    run.log(f"TOKEN={SECRET}")  # the app printed its own env: its business
    assert _leaked([SECRET]) == []
    run.log(f"==> Running with {SECRET}")
    assert _leaked([SECRET]) == ["a run log"]
    run.log_lines.all().delete()


def test_the_sweep_finds_a_secret_on_an_error_page():
    assert _leaked([SECRET], [b"<h1>Server error</h1>"]) == []
    assert _leaked([SECRET], [f"<pre>{SECRET}</pre>".encode()]) == ["an error page"]


def test_the_sweep_keeps_the_error_pages_django_renders(client):
    pages: list[bytes] = []
    with _keeping_error_pages(pages):
        client.get("/no-such-page-for-the-sweep/")
    assert len(pages) == 1


def test_the_sweep_reads_the_runtime_log_of_app_containers():
    client = docker.from_env()
    container = client.containers.run(
        "slipway/debian:bookworm",
        ["echo", f"starting with {SECRET}"],
        labels={"slipway.instance": settings.PAAS_INSTANCE, "slipway.process": "web"},
        detach=True,
    )
    try:
        container.wait(timeout=30)
        assert _leaked([SECRET]) == ["a runtime log"]
    finally:
        container.remove(force=True)


def test_add_on_passwords_and_webhook_secrets_are_swept_too(make_app):
    app = make_app("sweepkinds")
    app.webhook_secret = SECRET
    assert _secrets_of(app) == [SECRET]
    assert _secrets_of(AddOn(password=SECRET)) == [SECRET]
    assert _secrets_of(AddOn(password="short")) == []


def test_the_sweep_finds_a_secret_in_a_celery_message_and_in_the_workers_log(
    django_capture_on_commit_callbacks,
):
    messages: list[str] = []
    # Sent to the real broker on commit; a worker that takes it finds no such volume.
    with _keeping_messages(messages), django_capture_on_commit_callbacks(execute=True):
        jobs.remove_volume(f"volume-{SECRET}")  # never a secret in a name, but if one were
    assert len(messages) == 1
    assert _leaked([SECRET], messages=messages) == ["a Celery message"]
    assert _leaked([SECRET], messages=["[[7], {}]"]) == []
    assert _leaked([SECRET], logs=f"Task received: {SECRET}") == ["the worker's or collector's log"]
