"""The API's side of staff powers (tests/apps/test_staff_powers.py has the dashboard's): a
staff user who is not a superuser reads another owner's app, its deployments and deploy
logs, and stops, starts, restarts, cancels and deletes it; every other operation answers
404 and changes nothing. ROUTES classifies every operation of the OpenAPI document."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apps.access import ADMIN, CHANGE, MANAGE, OWN, READ
from apps.models import Domain, Volume
from deployments import services
from deployments.models import Run, ScheduledJob
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

SECRET_VALUE = "owner-secret-value"
RUN_OUTPUT = "owner's run output"
A = "/apps/secret"

# (method, path, body, who may per apps/access.py). Bodies are valid, so a 404 is the
# refusal and not a schema error.
ROUTES = [
    ("get", A, None, READ),
    ("patch", A, {"repository": "https://example.com/evil.git"}, CHANGE),
    ("delete", A, None, ADMIN),
    ("get", A + "/deployments", None, READ),
    ("post", A + "/deployments", {"environment": "production"}, CHANGE),
    ("get", A + "/deployments/1", None, READ),
    ("post", A + "/deployments/1/cancel", None, MANAGE),
    ("get", A + "/deployments/1/logs", None, READ),
    ("get", A + "/logs", None, CHANGE),
    ("post", A + "/archives", None, CHANGE),
    ("get", A + "/audit", None, READ),
    ("get", A + "/stats", None, READ),
    ("post", A + "/restart", {"environment": "production"}, MANAGE),
    ("post", A + "/stop", {"environment": "production"}, MANAGE),
    ("post", A + "/start", {"environment": "production"}, MANAGE),
    ("post", A + "/promote", None, CHANGE),
    ("post", A + "/deployments/1/rollback", None, CHANGE),
    ("post", A + "/deployments/1/redeploy", None, CHANGE),
    ("get", A + "/webhook", None, READ),
    ("get", A + "/environments", None, READ),
    ("post", A + "/environments", {"name": "dev"}, CHANGE),
    ("delete", A + "/environments/production", None, CHANGE),
    ("get", A + "/environments/production", None, READ),
    ("patch", A + "/environments/production", {"maintenance": True}, CHANGE),
    # TOKEN is not protected: the team's developers and up (tests/apps/test_protected_env_vars.py
    # has the protected ones, and protecting: a developer is told 403, never 404).
    ("get", A + "/environments/production/env", None, READ),
    ("get", A + "/environments/production/env/TOKEN", None, CHANGE),
    ("put", A + "/environments/production/env/TOKEN", {"value": "evil"}, CHANGE),
    ("patch", A + "/environments/production/env/TOKEN", {"protected": True}, CHANGE),
    ("delete", A + "/environments/production/env/TOKEN", None, CHANGE),
    ("post", A + "/scale", {"environment": "production", "replicas": 3}, CHANGE),
    ("get", A + "/formation", None, READ),
    ("put", A + "/formation", {"environment": "production", "processes": {"web": 2}}, CHANGE),
    ("get", A + "/previews", None, READ),
    ("put", A + "/previews", {"enabled": True, "allow_forks": True}, CHANGE),
    ("get", A + "/addons", None, OWN),
    ("post", A + "/addons", {"kind": "postgres", "environment": "production"}, OWN),
    ("get", A + "/addons/1", None, OWN),
    ("delete", A + "/addons/1", None, OWN),
    ("post", A + "/addons/1/restart", None, OWN),
    ("get", A + "/addons/1/backups", None, OWN),
    ("post", A + "/addons/1/backups", None, OWN),
    ("post", A + "/addons/1/backups/1/restore", None, OWN),
    ("get", A + "/domains", None, READ),
    ("post", A + "/domains", {"hostname": "evil.example.com"}, CHANGE),
    ("delete", A + "/domains/www.secret.example", None, CHANGE),
    ("post", A + "/domains/www.secret.example/verify", None, CHANGE),
    ("get", A + "/volumes", None, READ),
    ("post", A + "/volumes", {"name": "evil", "mount_path": "/evil"}, CHANGE),
    ("delete", A + "/volumes/1", None, CHANGE),
    ("get", A + "/notifications", None, OWN),
    ("post", A + "/notifications", {"url": "https://hooks.example.com/x"}, OWN),
    ("get", A + "/notifications/1", None, OWN),
    ("delete", A + "/notifications/1", None, OWN),
    ("get", A + "/notifications/1/deliveries", None, OWN),
    ("get", A + "/drains", None, OWN),
    ("post", A + "/drains", {"url": "https://logs.example.com/x"}, OWN),
    ("delete", A + "/drains/1", None, OWN),
    ("get", A + "/metrics", None, READ),
    ("get", A + "/pipeline", None, READ),
    ("put", A + "/pipeline", {"stages": ["production"]}, CHANGE),
    ("get", A + "/promotion-policy", None, READ),
    ("put", A + "/promotion-policy", {"require_approval": True}, CHANGE),
    ("get", A + "/promotions", None, READ),
    ("post", A + "/promotions/1/approve", None, CHANGE),
    ("post", A + "/promotions/1/reject", None, CHANGE),
    ("post", A + "/runs", {"environment": "production", "command": "env"}, CHANGE),
    ("get", A + "/runs", None, CHANGE),
    ("get", A + "/runs/1", None, CHANGE),
    ("get", A + "/runs/1/logs", None, CHANGE),
    ("post", A + "/runs/1/cancel", None, CHANGE),
    ("get", A + "/jobs", None, CHANGE),
    (
        "post",
        A + "/jobs",
        {"environment": "production", "name": "x", "schedule": "* * * * *", "command": "id"},
        CHANGE,
    ),
    ("get", A + "/jobs/1", None, CHANGE),
    ("patch", A + "/jobs/1", {"enabled": False}, CHANGE),
    ("delete", A + "/jobs/1", None, CHANGE),
    ("get", A + "/jobs/1/runs", None, CHANGE),
]
FORBIDDEN = [r[:3] for r in ROUTES if r[3] in (CHANGE, OWN)]
READABLE = [r[:3] for r in ROUTES if r[3] == READ]
MANAGEABLE = [r[:3] for r in ROUTES if r[3] in (MANAGE, ADMIN)]


def _shape(path: str) -> str:
    """/apps/secret/jobs/1 and /apps/{name}/jobs/{job_id} are both /apps/{}/jobs/{}."""
    literal = ("secret", "production", "www.secret.example", "TOKEN")
    return "/".join(
        "{}" if part.startswith("{") or part.isdigit() or part in literal else part
        for part in path.split("/")
    )


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(
        "ops", "ops-only@example.com", "pw-ops-only-123", is_staff=True
    )


@pytest.fixture
def secret_app(make_app):
    return make_secret_app(make_app)


def make_secret_app(make_app):
    """An app holding one of everything the operations reach (the team tests use it too)."""
    app = make_app("secret")
    production = app.environment("production")
    services.set_env_vars(production, {"TOKEN": SECRET_VALUE})
    app.new_deployment(production, status="building", started_at=timezone.now()).log("built")
    Domain.objects.create(environment=production, hostname="www.secret.example")
    Volume.objects.create(pk=1, environment=production, name="data", mount_path="/data")
    Run.objects.create(pk=1, app=app, environment=production, command="env").log(RUN_OUTPUT)
    ScheduledJob.objects.create(
        pk=1, environment=production, name="nightly", schedule="0 3 * * *", command="id"
    )
    return app


def _snapshot(app):
    app.refresh_from_db()
    return {
        "app": (app.repository, app.cleanup_requested_at),
        "deployments": list(app.deployments.values_list("number", "status")),
        "env": {
            e.name: (e.env_dict(), e.stopped, e.replicas, e.formation, e.maintenance)
            for e in app.environments.all()
        },
        "domains": sorted(Domain.objects.values_list("hostname", flat=True)),
        "volumes": sorted(Volume.objects.values_list("name", flat=True)),
        "runs": list(Run.objects.values_list("pk", "status", "cancel_requested")),
        "jobs": list(ScheduledJob.objects.values_list("pk", "enabled")),
        "targets": app.notification_targets.count(),
        "addons": app.environments.filter(addons__isnull=False).count(),
    }


def _send(api, method, path, body):
    if method == "get":
        return api.get(path)
    if method == "put":
        return api.put_json(path, body)
    return getattr(api, method)(path, body) if method != "delete" else api.delete(path)


def test_every_operation_on_an_app_says_who_may_use_it():
    document = json.loads(Client().get("/api/v1/openapi.json").content)
    operations = {
        (method, _shape(path))
        for path, ops in document["paths"].items()
        if path.startswith("/apps/{name}")
        for method in ops
    }
    assert operations <= {(method, _shape(path)) for method, path, _, _ in ROUTES}


@pytest.mark.parametrize("method, path, body", FORBIDDEN)
def test_staff_may_not_change_deploy_run_or_read_secrets(secret_app, operator, method, path, body):
    before = _snapshot(secret_app)
    response = _send(ApiClient(operator), method, path, body)
    assert response.status_code == 404, (method, path, response.status_code, response.content)
    assert response.json()["error"]["code"] == "not_found"
    assert SECRET_VALUE.encode() not in response.content and b"run output" not in response.content
    assert _snapshot(secret_app) == before


@pytest.mark.parametrize("method, path, body", READABLE)
def test_staff_read_the_app_its_deployments_and_deploy_logs(
    secret_app, operator, method, path, body
):
    response = _send(ApiClient(operator), method, path, body)
    assert response.status_code == 200, (path, response.content)
    assert SECRET_VALUE.encode() not in response.content


@pytest.mark.parametrize("method, path, body", MANAGEABLE)
def test_staff_manage_the_platform(secret_app, operator, method, path, body):
    """Allowed: the service decides (a restart with nothing live is a 409), never a 404."""
    assert _send(ApiClient(operator), method, path, body).status_code != 404, path


def test_staff_see_another_owners_app_in_the_list_but_no_webhook_secret(secret_app, operator):
    api = ApiClient(operator)
    assert [a["name"] for a in api.get("/apps").json()["apps"]] == ["secret"]
    assert api.get(A + "/webhook").json()["secret"] is None


def test_a_superuser_may_change_and_deploy(secret_app):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    api = ApiClient(root)
    assert api.patch(A, {"repository": "https://example.com/other.git"}).status_code == 200
    assert api.post(A + "/deployments", {"environment": "production"}).status_code == 202
    assert api.get(A + "/runs/1/logs").status_code == 200
