"""Shared fixtures: an owner, a teammate-less outsider and a staff operator, with API clients.

Tests run against the real PostgreSQL and Redis that scripts/services starts; a missing
service is an error, never a skip.
"""

import contextlib
import json
import os
import re
import time
from pathlib import Path

import docker
import docker.errors
import psycopg.errors
import pytest
from celery.signals import before_task_publish
from django.conf import settings
from django.core.cache import cache
from django.core.handlers.base import BaseHandler
from django.core.management.base import CommandError
from django.core.management.commands import flush
from django.db.models.signals import post_save
from django.test import Client
from hypothesis import settings as hypothesis_settings

from apps.models import AddOn, ApiToken, App, AuditEntry, Environment, EnvironmentName, EnvVar
from apps.models.providers import ProviderCredential
from deployments import wiring
from deployments.models import LogLine, RunLogLine
from paas.celery import app as celery_app
from tests.fakeforge import API_PREFIX, FakeForge
from tests.support import (
    Collector,
    Dashboard,
    Worker,
    containers,
    migrate_to_latest,
    remove_containers,
    wait_for,
)

# In CI the property tests draw the same examples on every run: a failing property then fails
# every run of that commit, not one run in ten (locally they stay random, to explore).
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_configure(config):
    config.addinivalue_line("markers", "restarts_services: stops and starts dockerd or Redis")


def pytest_collection_modifyitems(config, items):
    """Tests that restart dockerd or Redis run last, so nothing else sees the gap."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_services") is not None)


# Env values under names like these, this long and without spaces, are the secrets the
# sweep below looks for (a test may print a GREETING or a MARK on purpose).
SECRET_KEY_RE = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH|_URL$")
SECRET_MIN_LENGTH = 12
RUN_NOTE_PREFIX = "==> "  # the lines of a run's log that Slipway writes (workers/runs.py)


def _looks_secret(value: str) -> bool:
    return len(value) >= SECRET_MIN_LENGTH and not any(c.isspace() for c in value)


def _secrets_of(instance) -> list[str]:
    """The secrets a saved row holds: a secret-looking env value, an add-on's password,
    an app's webhook secret."""
    if isinstance(instance, EnvVar):
        value = instance.value or ""
        return [value] if SECRET_KEY_RE.search(instance.key) and _looks_secret(value) else []
    if isinstance(instance, AddOn):
        return [instance.password] if _looks_secret(instance.password or "") else []
    if isinstance(instance, App):
        secret = instance.webhook_secret or ""
        return [secret] if _looks_secret(secret) else []
    return []


# The session's Celery worker and log collector logs (the worker fixture adds them): the
# sweep reads what they wrote during each test, where a task's arguments or result would show.
BACKGROUND_LOGS: list[Path] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """After every test, before its database and containers go: no secret it stored (env
    values, add-on passwords, webhook secrets) appears in a deployment log, a run log, an
    app container's runtime log, the audit log, an error page Django rendered, a Celery
    message this process sent or the worker's and collector's logs. A one-off run's own
    output is the app's business: only the lines Slipway writes are checked."""
    stored: list[str] = []
    error_pages: list[bytes] = []
    messages: list[str] = []
    log_starts = {path: path.stat().st_size for path in BACKGROUND_LOGS if path.exists()}

    def remember(sender, instance, **kwargs):
        stored.extend(_secrets_of(instance))

    for model in (EnvVar, AddOn, App):
        post_save.connect(remember, sender=model, weak=False, dispatch_uid=f"sweep-{model}")
    with _keeping_error_pages(error_pages), _keeping_messages(messages):
        outcome = yield
    for model in (EnvVar, AddOn, App):
        post_save.disconnect(sender=model, dispatch_uid=f"sweep-{model}")
    if stored and outcome.excinfo is None:
        leaks = _leaked(stored, error_pages, messages, _written_since(log_starts))
        if leaks:
            outcome.force_exception(AssertionError(f"a secret reached {leaks}"))


@contextlib.contextmanager
def _keeping_messages(messages: list[str]):
    """Every Celery message sent from this process, as the broker gets it: body and headers
    (the worker sends only what the same deployments.jobs functions send)."""

    def keep(sender=None, body=None, headers=None, **kwargs):
        messages.append(json.dumps([body, headers], default=str))

    uid = f"sweep-messages-{id(messages)}"  # one per list: the sweep's and a test's own
    before_task_publish.connect(keep, weak=False, dispatch_uid=uid)
    try:
        yield
    finally:
        before_task_publish.disconnect(dispatch_uid=uid)


def _written_since(starts: dict[Path, int]) -> str:
    texts = []
    for path, start in starts.items():
        with open(path, "rb") as log:
            log.seek(start)
            texts.append(log.read().decode("utf-8", "replace"))
    return "\n".join(texts)


@contextlib.contextmanager
def _keeping_error_pages(pages: list[bytes]):
    """Every error page Django renders in this process (test client, live server): a 5xx,
    a 403 or 404 page, and the API's JSON errors. A form re-rendered with its field errors
    (400, 409 HTML) is the owner's own page, which may show the owner their webhook secret."""
    original = BaseHandler.get_response

    def get_response(self, request):
        response = original(self, request)
        if _is_error_page(response):
            pages.append(bytes(response.content))
        return response

    BaseHandler.get_response = get_response
    try:
        yield
    finally:
        BaseHandler.get_response = original


def _is_error_page(response) -> bool:
    status = response.status_code
    if status < 400 or response.streaming:
        return False
    json = "json" in response.get("Content-Type", "")
    return status >= 500 or status in (403, 404) or json


def _leaked(
    secrets: list[str], error_pages: list[bytes] = (), messages: list[str] = (), logs: str = ""
) -> list[str]:
    found = []
    runtime_logs = _runtime_logs() if secrets else ""
    for secret in secrets:
        if LogLine.objects.filter(text__contains=secret).exists():
            found.append("a deployment log")
        notes = RunLogLine.objects.filter(text__startswith=RUN_NOTE_PREFIX)
        if notes.filter(text__contains=secret).exists():
            found.append("a run log")
        entries = AuditEntry.objects.values_list("target", "details")
        if any(secret in json.dumps([target, details]) for target, details in entries):
            found.append("the audit log")
        if secret in runtime_logs:
            found.append("a runtime log")
        if any(secret.encode() in page for page in error_pages):
            found.append("an error page")
        if any(secret in message for message in messages):
            found.append("a Celery message")
        if secret in logs:
            found.append("the worker's or collector's log")
    return found


def _runtime_logs() -> str:
    """What the dashboard's runtime log would show: the output of every app process
    container of this instance still there."""
    client = docker.from_env()
    filters = {"label": [f"slipway.instance={settings.PAAS_INSTANCE}", "slipway.process"]}
    texts = []
    for summary in client.api.containers(all=True, filters=filters):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            texts.append(client.api.logs(summary["Id"], tail=2000).decode("utf-8", "replace"))
    return "\n".join(texts)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Fixture users' passwords need not resist brute force; PBKDF2 would cost ~0.3 s a user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """The cache is the real Redis, shared by runs: each test starts with none of the
    sign-in counts or provider answers an earlier one left (only this installation's keys)."""
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=f"{cache.key_prefix}:*", count=1000):
        client.delete(key)


@pytest.fixture
def back_to_latest():
    """For a migration's test: whatever it does, the database ends on the latest migrations
    for the next test."""
    yield
    migrate_to_latest()


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw-alice-123")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("mallory", "mallory@example.com", "pw-mallory-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "operator", "ops@example.com", "pw-ops-123", is_staff=True, is_superuser=True
    )


class ApiClient:
    """A Django test client that speaks JSON with a bearer token: the user's, for `team`
    (by default their personal team, where their own apps are)."""

    def __init__(self, user=None, raw_token=None, team=None):
        self.client = Client()
        if raw_token is None and user is not None:
            _, raw_token = ApiToken.issue(user, team=team)
        self.headers = {"Authorization": f"Bearer {raw_token}"} if raw_token else {}

    def _send(self, method, path, body=None, **extra):
        data = json.dumps(body) if body is not None else ""
        return getattr(self.client, method)(
            "/api/v1" + path,
            data=data,
            content_type="application/json",
            headers=self.headers,
            **extra,
        )

    def get(self, path, **extra):
        return self.client.get("/api/v1" + path, headers=self.headers, **extra)

    def post(self, path, body=None):
        return self._send("post", path, body)

    def patch(self, path, body=None):
        return self._send("patch", path, body)

    def put_json(self, path, body=None):
        return self._send("put", path, body)

    def delete(self, path):
        return self._send("delete", path)


@pytest.fixture
def api(owner):
    return ApiClient(owner)


@pytest.fixture
def outsider_api(outsider):
    return ApiClient(outsider)


@pytest.fixture
def make_app(owner):
    """Create an app straight through the model (no deployment, no worker), with staging
    beside production as most tests want (staging=False: production alone, as a new app)."""

    def make(name="demo", user=None, staging=True, **fields):
        fields.setdefault("repository", "https://example.com/acme/demo.git")
        app = App.objects.create(name=name, owner=user or owner, **fields)
        if staging:
            Environment.create_for(app, EnvironmentName.STAGING)
        return app

    return make


@pytest.fixture
def local_image_id(settings):
    """A real image in the local engine (the offline static base), for a recorded live
    deployment whose image the use cases check still exists."""
    return docker.from_env().images.get(settings.PAAS_BASE_IMAGES["static"]).id


@pytest.fixture(scope="session")
def worker(django_db_setup, tmp_path_factory):
    """One real Celery worker on the test database for the whole session, and the log
    collector beside it (the platform's two background processes, as scripts/run starts)."""
    celery_app.control.purge()
    logs = tmp_path_factory.mktemp("worker")
    process = Worker(logs / "worker.log").start()
    collector = Collector(logs / "collector.log").start()
    process.collector = collector
    BACKGROUND_LOGS.extend([process.log_path, collector.log_path])
    yield process
    collector.stop()
    process.stop()


FLUSH_ATTEMPTS = 3


@pytest.fixture(scope="session", autouse=True)
def _flush_again_after_a_deadlock():
    """After each transactional test Django empties every table with one TRUNCATE, which
    takes the tables' locks one after another. The worker (with beat) and the collector
    keep running between tests; one of their transactions can hold a lock the TRUNCATE
    waits for while waiting for one it took, and PostgreSQL ends one side as a deadlock.
    When it ends the TRUNCATE, the next test starts on the last one's rows (seen once in
    CI: `Database test_slipway couldn't be flushed`, then a duplicate user). The flush is
    all rolled back then, and the worker's transaction has gone: flush again."""
    original = flush.Command.handle

    def handle(self, *args, **options):
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                return original(self, *args, **options)
            except CommandError as exc:
                if attempt == FLUSH_ATTEMPTS or not _is_deadlock(exc):
                    raise
                time.sleep(0.2 * attempt)

    flush.Command.handle = handle
    yield
    flush.Command.handle = original


def _is_deadlock(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, psycopg.errors.DeadlockDetected):
            return True
        exc = exc.__cause__
    return False


@pytest.fixture(scope="session")
def dashboard(django_db_setup, tmp_path_factory):
    """The dashboard's gunicorn on the test database for the whole session: the router's
    pages (a stopped app, maintenance) and the platform's own host lead to it."""
    process = Dashboard(tmp_path_factory.mktemp("dashboard") / "gunicorn.log").start()
    yield process
    process.stop()


@pytest.fixture
def platform(worker, dashboard, transactional_db, settings):
    """A real worker, dashboard, Docker and router; afterwards nothing of this instance
    remains. A worker or collector an earlier test left dead is started again first, as
    scripts/run would: one test's outage must not fail the next."""
    worker.ensure_running()
    worker.collector.ensure_running()
    yield worker
    _remove_instance_leftovers(settings.PAAS_INSTANCE)


def _removed_all(label: str) -> bool:
    remove_containers(label=label)
    return not containers(label=label)


def _remove_instance_leftovers(instance: str) -> None:
    client = docker.from_env()
    label = f"slipway.instance={instance}"
    # The worker may be retiring the same containers right now: gone already is fine.
    # A removal already in progress (the worker's) finishes a moment later, and until then
    # the network still has the container's endpoint and refuses to go: remove and look
    # again until none is left.
    wait_for(lambda: _removed_all(label), timeout=60, message="the containers to go")
    for network in client.networks.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    proxy = wiring.router()
    for route_id in proxy.route_ids():
        if route_id.startswith(f"{instance}-"):
            proxy.remove(route_id)


@pytest.fixture
def forge():
    """A factory: forge("github") starts a fake GitHub on its own port."""
    started = []

    def start(kind):
        started.append(FakeForge(kind))
        return started[-1]

    yield start
    for fake in started:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture
def connect(owner, settings):
    """Give a user a credential pointing at a fake forge, and tell settings where it lives."""

    def make(fake, user=None, **fields):
        api_url = fake.url + API_PREFIX[fake.kind]
        settings.PAAS_GIT_PROVIDERS = {
            **settings.PAAS_GIT_PROVIDERS,
            fake.kind: {"name": fake.kind, "web_url": fake.url, "api_url": api_url},
        }
        fields.setdefault("access_token", fake.token)
        return ProviderCredential.objects.create(
            user=user or owner,
            provider=fake.kind,
            web_url=fake.url,
            api_url=api_url,
            account_id=str(fake.user["id"]),
            login=fake.user["login"],
            **fields,
        )

    return make
