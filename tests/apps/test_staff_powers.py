"""What staff may do to another owner's app through the dashboard and the admin: see it,
read its status, deployments and deploy logs, stop, start, restart, cancel and delete it;
nothing that changes its source, commands, env, routing, domains, volumes or scale, deploys
it, runs its commands, or reads what it holds (runtime log, run output, secrets). Those
answer 404, as for a stranger, and change nothing. Superusers may (apps/access.py).

ROUTES classifies every app-scoped dashboard route (a test checks it), so a new route
cannot be added without saying who may use it.
"""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from apps.access import ADMIN, CHANGE, MANAGE, OWN, READ
from apps.models import Domain, Volume
from deployments import services
from deployments.models import Run, ScheduledJob

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
APP = {"name": "secret"}
DEPLOYMENT = {"name": "secret", "number": 1}
ENV = {"name": "secret", "environment": "production"}
VAR = {"name": "secret", "environment": "production", "key": "TOKEN"}
ADDON = {"name": "secret", "pk": 1}
TARGET = {"name": "secret", "target_id": 1}
SECRET_VALUE = "owner-secret-value"
RUN_OUTPUT = "owner's run output"
GOOD_POST = {
    "environment": "production",
    "confirm": "secret",
    "key": "X",
    "value": "1",
    "repository": "https://example.com/evil.git",
    "name": "x",
    "replicas": "3",
    "visibility": "internal",
    "maintenance": "on",
    "hostname": "evil.example.com",
    "mount_path": "/evil",
    "command": "env",
    "schedule": "* * * * *",
    "url": "https://hooks.example.com/x",
    "kind": "postgres",
}

# (url name, kwargs, method, who may per apps/access.py).
ROUTES = [
    ("app-detail", APP, "get", READ),
    ("app-status", APP, "get", READ),
    ("app-environments", APP, "get", READ),
    ("app-history", APP, "get", READ),
    ("app-current", APP, "get", READ),
    ("app-audit", APP, "get", READ),
    ("app-runtime-log", ENV, "get", CHANGE),  # the app's output may print its secrets
    ("deployment-detail", DEPLOYMENT, "get", READ),
    ("deployment-panel", DEPLOYMENT, "get", READ),
    ("deployment-log", DEPLOYMENT, "get", READ),
    ("app-deploy", APP, "post", CHANGE),
    ("app-archive", APP, "post", CHANGE),
    ("app-restart", APP, "post", MANAGE),
    ("app-stop", APP, "post", MANAGE),
    ("app-start", APP, "post", MANAGE),
    ("app-delete", APP, "post", ADMIN),
    ("app-environment-create", APP, "post", CHANGE),
    ("app-environment-delete", APP, "post", CHANGE),
    ("app-promote", APP, "post", CHANGE),
    ("app-pipeline", APP, "post", CHANGE),
    ("app-pipeline-panel", APP, "get", READ),
    ("app-promotions", APP, "get", READ),
    ("promotion-approve", {"name": "secret", "request_id": 1}, "post", CHANGE),
    ("promotion-reject", {"name": "secret", "request_id": 1}, "post", CHANGE),
    ("deployment-redeploy", DEPLOYMENT, "post", CHANGE),
    ("deployment-rollback", DEPLOYMENT, "post", CHANGE),
    ("deployment-cancel", DEPLOYMENT, "post", MANAGE),
    ("app-settings", APP, "get", READ),
    ("app-settings", APP, "post", CHANGE),
    ("app-env-set", ENV, "post", CHANGE),
    # An unprotected value: the team's developers and up (tests/apps/test_protected_env_vars.py
    # has the protected ones, and protecting: a developer is told 403, never 404).
    ("app-env-reveal", VAR, "get", CHANGE),
    ("app-env-delete", VAR, "post", CHANGE),
    ("app-env-protect", VAR, "post", CHANGE),
    ("app-previews-settings", APP, "post", CHANGE),
    ("app-domains", APP, "get", READ),
    ("app-domains", APP, "post", CHANGE),
    ("app-domain-delete", {"name": "secret", "hostname": "www.secret.example"}, "post", CHANGE),
    ("app-domain-verify", {"name": "secret", "hostname": "www.secret.example"}, "post", CHANGE),
    ("app-volumes", APP, "get", READ),
    ("app-volumes", APP, "post", CHANGE),
    ("app-volume-delete", {"name": "secret", "volume_id": 1}, "post", CHANGE),
    ("app-routing", ENV, "get", READ),
    ("app-routing", ENV, "post", CHANGE),
    ("app-scale", APP, "post", CHANGE),
    ("app-formation", APP, "post", CHANGE),
    ("app-runs", APP, "get", CHANGE),  # the card shows the latest run's output
    ("run-start", APP, "post", CHANGE),
    ("run-output", {"name": "secret", "run_id": 1}, "get", CHANGE),
    ("run-cancel", {"name": "secret", "run_id": 1}, "post", CHANGE),
    ("job-add", APP, "post", CHANGE),
    ("job-toggle", {"name": "secret", "job_id": 1}, "post", CHANGE),
    ("job-delete", {"name": "secret", "job_id": 1}, "post", CHANGE),
    ("app-resources", APP, "get", READ),
    ("app-drains", APP, "get", OWN),
    ("app-drains", APP, "post", OWN),
    ("app-drain-delete", {"name": "secret", "drain_id": 1}, "post", OWN),
    ("app-metrics", APP, "get", READ),
    ("app-notifications", APP, "get", OWN),
    ("app-notifications", APP, "post", OWN),
    ("app-notification-delete", TARGET, "post", OWN),
    ("app-notification-reveal", TARGET, "post", OWN),
    ("addons", APP, "get", OWN),
    ("addon-attach", APP, "post", OWN),
    ("addon-detail", ADDON, "get", OWN),
    ("addon-status", ADDON, "get", OWN),
    ("addon-reveal", ADDON, "get", OWN),
    ("addon-restart", ADDON, "post", OWN),
    ("addon-detach", ADDON, "post", OWN),
    ("addon-backup", ADDON, "post", OWN),
    ("addon-restore", {"name": "secret", "pk": 1, "backup_id": 1}, "post", OWN),
    ("addon-database", ADDON, "get", OWN),
    ("addon-table", {"name": "secret", "pk": 1, "table": "users"}, "get", OWN),
    ("addon-query", ADDON, "post", OWN),
]


def _app_route_names() -> set[str]:
    """Every named dashboard route that takes an app's name."""
    names = set()

    def walk(patterns, prefix=""):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                if not route.startswith(("api/", "admin/", "accounts/", "hooks/")):
                    walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and p.name and "<str:name>" in route:
                names.add(p.name)

    walk(get_resolver().url_patterns)
    return names


LIVE_NAMES = _app_route_names()
# Only routes that exist (a route of a feature not merged yet is skipped, not failed).
PRESENT = [row for row in ROUTES if row[0] in LIVE_NAMES]
FORBIDDEN = [row[:3] for row in PRESENT if row[3] in (CHANGE, OWN)]
READABLE = [row[:3] for row in PRESENT if row[3] == READ]
MANAGEABLE = [row[:3] for row in PRESENT if row[3] in (MANAGE, ADMIN)]


@pytest.fixture
def operator(django_user_model):
    """Staff, not a superuser: an operator of the platform."""
    return django_user_model.objects.create_user(
        "ops", "ops-only@example.com", "pw-ops-only-123", is_staff=True
    )


@pytest.fixture
def secret_app(make_app):
    app = make_app("secret")
    production = app.environment("production")
    services.set_env_vars(production, {"TOKEN": SECRET_VALUE})
    app.new_deployment(
        production, status="building", started_at=timezone.now(), commit_message="the commit"
    ).log("the build output")
    Domain.objects.create(environment=production, hostname="www.secret.example")
    Volume.objects.create(environment=production, name="data", mount_path="/data")
    Run.objects.create(pk=1, app=app, environment=production, command="env").log(RUN_OUTPUT)
    ScheduledJob.objects.create(
        pk=1, environment=production, name="nightly", schedule="0 3 * * *", command="id"
    )
    return app


def _snapshot(app):
    """Everything a forbidden action could change."""
    app.refresh_from_db()
    return {
        "app": (
            app.repository,
            app.branch,
            app.build_command,
            app.start_command,
            app.release_command,
            app.cleanup_requested_at,
        ),
        "deployments": list(app.deployments.values_list("number", "status")),
        "env": {
            e.name: (e.env_dict(), e.stopped, e.replicas, e.formation, e.visibility, e.maintenance)
            for e in app.environments.all()
        },
        "domains": sorted(Domain.objects.values_list("hostname", flat=True)),
        "volumes": sorted(Volume.objects.values_list("name", "mount_path")),
        "runs": list(Run.objects.values_list("pk", "status", "cancel_requested")),
        "jobs": list(ScheduledJob.objects.values_list("pk", "enabled")),
        "targets": app.notification_targets.count(),
    }


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _send(client, name, kwargs, method):
    url = reverse(name, kwargs=kwargs)
    return getattr(client, method)(url, GOOD_POST if method == "post" else {}, headers=HX)


def test_every_app_route_says_who_may_use_it():
    assert LIVE_NAMES <= {name for name, *_ in ROUTES}


@pytest.mark.parametrize("name, kwargs, method", FORBIDDEN)
def test_staff_may_not_change_deploy_run_or_read_secrets(
    secret_app, operator, name, kwargs, method
):
    before = _snapshot(secret_app)
    response = _send(_client(operator), name, kwargs, method)
    assert response.status_code == 404, (name, method, response.status_code)
    body = response.content.decode()
    assert SECRET_VALUE not in body and RUN_OUTPUT not in body
    assert _snapshot(secret_app) == before


@pytest.mark.parametrize("name, kwargs, method", READABLE)
def test_staff_read_status_deployments_and_deploy_logs(secret_app, operator, name, kwargs, method):
    response = _send(_client(operator), name, kwargs, method)
    assert response.status_code in (200, 204, 286), (name, response.status_code)
    assert SECRET_VALUE not in response.content.decode()


@pytest.mark.parametrize("name, kwargs, method", MANAGEABLE)
def test_staff_may_manage_the_platform(secret_app, operator, name, kwargs, method):
    """Allowed: the service decides (a restart with nothing live is a 409), never a 404."""
    response = _send(_client(operator), name, kwargs, method)
    assert response.status_code != 404, name


def test_staff_stop_start_and_delete_another_owners_app(secret_app, operator):
    client = _client(operator)
    production = secret_app.environment("production")
    _send(client, "deployment-cancel", DEPLOYMENT, "post")
    assert secret_app.deployments.get(number=1).status == "cancelled"
    production.live_deployment = secret_app.new_deployment(production, status="succeeded")
    production.save()
    _send(client, "app-stop", APP, "post")
    production.refresh_from_db()
    assert production.stopped
    _send(client, "app-start", APP, "post")
    production.refresh_from_db()
    assert not production.stopped
    _send(client, "app-delete", APP, "post")
    secret_app.refresh_from_db()
    assert secret_app.cleanup_requested_at is not None


def test_staff_see_the_app_in_the_list_and_its_page_without_what_they_may_not_use(
    secret_app, operator
):
    client = _client(operator)
    assert "/apps/secret/" in client.get("/").content.decode()
    page = client.get(reverse("app-detail", kwargs=APP)).content.decode()
    assert "the build output" in page  # deploy logs are the platform's to read
    for url_name, kwargs in [
        ("app-runs", APP),
        ("app-archive", APP),
        ("app-runtime-log", ENV),
        ("addons", APP),
    ]:
        assert reverse(url_name, kwargs=kwargs) not in page, url_name


def test_a_superuser_may_change_and_deploy(secret_app):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = _client(root)
    response = client.post(reverse("app-env-set", kwargs=ENV), {"key": "X", "value": "1"})
    assert response.status_code == 302
    assert secret_app.environment("production").env_dict()["X"] == "1"
    settings_post = {
        "repository": "https://example.com/other.git",
        "build_method": "auto",
        "health_check_path": "/",
    }
    client.post(reverse("app-settings", kwargs=APP), settings_post)
    secret_app.refresh_from_db()
    assert secret_app.repository == "https://example.com/other.git"
    assert _send(client, "app-deploy", APP, "post").status_code == 200
    assert secret_app.deployments.count() == 2
    assert _send(client, "app-runs", APP, "get").status_code == 200


# --- the admin --------------------------------------------------------------------------------


@pytest.fixture
def admin_operator(operator):
    """An operator who holds every model permission of the admin, yet is no superuser."""
    operator.user_permissions.set(Permission.objects.all())
    return operator


def _actions(client, path) -> set[str]:
    response = client.get(path)
    assert response.status_code == 200, path
    return {name for name, _ in response.context["action_form"].fields["action"].choices}


ADMIN_PAGES = ["/admin/apps/app/", "/admin/deployments/deployment/", "/admin/deployments/run/"]
DEPLOYING_ACTIONS = {"deploy_production", "redeploy", "cancel_run"}


def test_in_the_admin_only_superusers_deploy_or_kill_runs(secret_app, admin_operator, staff):
    operator_actions = set().union(*(_actions(_client(admin_operator), p) for p in ADMIN_PAGES))
    assert not operator_actions & DEPLOYING_ACTIONS
    assert {"request_cleanup", "cancel"} <= operator_actions  # managing stays
    superuser_actions = set().union(*(_actions(_client(staff), p) for p in ADMIN_PAGES))
    assert DEPLOYING_ACTIONS <= superuser_actions


def test_a_posted_deploy_action_does_nothing_for_an_operator(secret_app, admin_operator):
    before = _snapshot(secret_app)
    _client(admin_operator).post(
        "/admin/apps/app/",
        {"action": "deploy_production", "_selected_action": [secret_app.pk]},
    )
    assert _snapshot(secret_app) == before


def test_in_the_admin_an_operator_sees_no_run_output_and_cannot_edit_source_or_jobs(
    secret_app, admin_operator
):
    client = _client(admin_operator)
    run_page = client.get("/admin/deployments/run/1/change/").content.decode()
    assert RUN_OUTPUT not in run_page
    app_page = client.get(f"/admin/apps/app/{secret_app.pk}/change/").content.decode()
    assert 'name="repository"' not in app_page and 'name="start_command"' not in app_page
    client.post("/admin/deployments/scheduledjob/1/change/", {"enabled": ""})
    assert ScheduledJob.objects.get(pk=1).enabled
