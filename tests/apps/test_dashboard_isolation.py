"""Nobody reaches another user's app through the dashboard: every page, partial and action
answers 404 to an outsider and changes nothing; anonymous users are sent to sign in.

ROUTES must name every dashboard URL (a test below checks that), so a new route cannot be
added without saying how it is isolated.
"""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.models import ApiToken, Domain, Invitation, Membership, Volume
from apps.web import urls as dashboard_urls
from deployments import services
from deployments.models import Run, ScheduledJob
from deployments.services import teams

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
APP = {"name": "secret"}
DEPLOYMENT = {"name": "secret", "number": 1}
ENV = {"name": "secret", "environment": "production"}
VAR = {"name": "secret", "environment": "production", "key": "TOKEN"}
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
}

# (url name, kwargs, method) for everything scoped to an app: its pages and partials,
APP_PAGES = [
    ("app-detail", APP, "get"),
    ("app-status", APP, "get"),
    ("app-environments", APP, "get"),
    ("app-history", APP, "get"),
    ("app-current", APP, "get"),
    ("app-runtime-log", ENV, "get"),
    ("app-audit", APP, "get"),
    ("deployment-detail", DEPLOYMENT, "get"),
    ("deployment-panel", DEPLOYMENT, "get"),
    ("deployment-log", DEPLOYMENT, "get"),
]
# its actions,
APP_ACTIONS = [
    ("app-deploy", APP, "post"),
    ("app-archive", APP, "post"),
    ("app-restart", APP, "post"),
    ("app-stop", APP, "post"),
    ("app-start", APP, "post"),
    ("app-delete", APP, "post"),
    ("app-environment-create", APP, "post"),
    ("app-environment-delete", APP, "post"),
]
PROMOTING = [
    ("app-promote", APP, "post"),
    ("app-pipeline", APP, "post"),
    ("app-pipeline-panel", APP, "get"),
    ("app-promotions", APP, "get"),
    ("promotion-approve", {"name": "secret", "request_id": 1}, "post"),
    ("promotion-reject", {"name": "secret", "request_id": 1}, "post"),
]
DEPLOYMENT_ACTIONS = [
    ("deployment-redeploy", DEPLOYMENT, "post"),
    ("deployment-rollback", DEPLOYMENT, "post"),
    ("deployment-cancel", DEPLOYMENT, "post"),
]
# and its settings.
APP_SETTINGS = [
    ("app-settings", APP, "get"),
    ("app-settings", APP, "post"),
    ("app-env-set", ENV, "post"),
    ("app-env-reveal", VAR, "get"),
    ("app-env-delete", VAR, "post"),
    ("app-env-protect", VAR, "post"),
    ("app-previews-settings", APP, "post"),
]
DOMAINS_AND_VOLUMES = [
    ("app-domains", APP, "get"),
    ("app-domains", APP, "post"),
    ("app-domain-delete", {"name": "secret", "hostname": "www.secret.example"}, "post"),
    ("app-domain-verify", {"name": "secret", "hostname": "www.secret.example"}, "post"),
    ("app-volumes", APP, "get"),
    ("app-volumes", APP, "post"),
    ("app-volume-delete", {"name": "secret", "volume_id": 1}, "post"),
]
ROUTING_AND_SCALING = [
    ("app-routing", ENV, "get"),
    ("app-routing", ENV, "post"),
    ("app-scale", APP, "post"),
    ("app-formation", APP, "post"),
]
RUNS_AND_JOBS = [
    ("app-runs", APP, "get"),
    ("run-start", APP, "post"),
    ("run-output", {"name": "secret", "run_id": 1}, "get"),
    ("run-cancel", {"name": "secret", "run_id": 1}, "post"),
    ("job-add", APP, "post"),
    ("job-toggle", {"name": "secret", "job_id": 1}, "post"),
    ("job-delete", {"name": "secret", "job_id": 1}, "post"),
]
APP_ROUTES = (
    APP_PAGES
    + APP_ACTIONS
    + PROMOTING
    + DEPLOYMENT_ACTIONS
    + APP_SETTINGS
    + DOMAINS_AND_VOLUMES
    + ROUTING_AND_SCALING
    + RUNS_AND_JOBS
)
# The user's own things: an outsider reaching for someone else's gets 404 too.
OWN_ROUTES = [("token-revoke", None, "post")]
# The owner's personal team (TEAM, MEMBER, INVITATION stand for its kwargs, see _url).
TEAM, MEMBER, INVITATION = "team", "member", "invitation"
TEAM_ROUTES = [
    ("team-detail", TEAM, "get"),
    ("team-member-role", MEMBER, "post"),
    ("team-member-remove", MEMBER, "post"),
    ("team-invite", TEAM, "post"),
    ("team-invitation-revoke", INVITATION, "post"),
    ("team-require-mfa", TEAM, "post"),
    ("team-delete", TEAM, "post"),
]
# The header's switcher: another's team answers 404 (tests/apps/test_team_switcher.py).
SWITCH_ROUTES = [("team-switch", {}, "post")]
# An invitation's link: signed in, it answers for itself (tests/apps/test_teams.py).
LINK_ROUTES = [("team-invitation", {"token": "not-a-real-token"}, "get")]
# Pages every signed-in user has (their own list, the create page): they never show another's app.
PERSONAL_ROUTES = [
    ("home", {}, "get"),
    ("home-apps", {}, "get"),
    ("app-create", {}, "get"),
    ("app-create", {}, "post"),
    ("app-name-check", {}, "get"),
    ("app-create-detect", {}, "get"),
    ("app-create-repositories", {}, "get"),
    ("app-create-pick", {}, "get"),
    ("app-create-env-row", {}, "get"),
    ("settings-tokens", {}, "get"),
    ("settings-tokens", {}, "post"),
    ("teams", {}, "get"),
]
ALL_ROUTES = APP_ROUTES + OWN_ROUTES + TEAM_ROUTES + LINK_ROUTES + PERSONAL_ROUTES + SWITCH_ROUTES
# Pages for anyone, signed in or not: the one the router shows instead of a stopped or
# maintenance app (tests/apps/test_routing_dashboard.py).
PUBLIC_ROUTES = [("router-page", {"route_id": "slipwaytest-secret-production"}, "get")]


@pytest.fixture
def secret_app(make_app):
    app = make_app("secret")
    services.set_env_vars(app.environment("production"), {"TOKEN": "owner-secret-value"})
    app.new_deployment(
        app.environment("production"),
        status="building",
        started_at=timezone.now(),
        commit_message="the owner's commit",
    ).log("owner's build output")
    Domain.objects.create(environment=app.environment("production"), hostname="www.secret.example")
    Volume.objects.create(
        environment=app.environment("production"), name="data", mount_path="/data"
    )
    # Ids 1, as RUNS_AND_JOBS names them (explicit: nothing else here makes runs or jobs).
    production = app.environment("production")
    Run.objects.create(pk=1, app=app, environment=production, command="echo owner's run")
    ScheduledJob.objects.create(
        pk=1, environment=production, name="nightly", schedule="0 3 * * *", command="id"
    )
    return app


@pytest.fixture
def owner_token(owner):
    return ApiToken.issue(owner, "owner-ci")[0]


def _url(name, kwargs, token=None):
    if kwargs in (TEAM, MEMBER, INVITATION):
        kwargs = _team_kwargs(kwargs, token.user)
    return reverse(name, kwargs=kwargs if kwargs is not None else {"pk": token.pk})


def _team_kwargs(kind: str, owner) -> dict:
    team = owner.personal_team
    if kind == MEMBER:
        return {"team_id": team.pk, "username": owner.username}
    if kind == INVITATION:
        invitation = teams.invite(team, owner, "friend@example.com", "viewer")
        return {"team_id": team.pk, "invitation_id": invitation.pk}
    return {"team_id": team.pk}


def _snapshot(app, token):
    """Everything an action could change."""
    app.refresh_from_db()
    return {
        "app": (
            app.repository,
            app.branch,
            app.build_method,
            app.port,
            app.status,
            app.build_command,
            app.start_command,
            app.release_command,
            app.cleanup_requested_at,
        ),
        "deployments": list(app.deployments.values_list("number", "status")),
        "env": {
            e.name: (
                e.env_dict(),
                e.stopped,
                e.live_deployment_id,
                e.replicas,
                e.formation,
                e.visibility,
                e.maintenance,
            )
            for e in app.environments.all()
        },
        "token": ApiToken.objects.filter(pk=token.pk).exists(),
        "domains": list(Domain.objects.values_list("hostname", flat=True)),
        "volumes": list(Volume.objects.values_list("name", "mount_path")),
        "runs": list(Run.objects.values_list("pk", "status", "cancel_requested")),
        "jobs": list(ScheduledJob.objects.values_list("pk", "enabled")),
        "members": sorted(Membership.objects.values_list("team_id", "user_id", "role")),
        "answered": Invitation.objects.exclude(status="pending").count(),
    }


def test_every_dashboard_url_is_covered():
    names = {p.name for p in dashboard_urls.urlpatterns}
    assert names == {name for name, _, _ in ALL_ROUTES + PUBLIC_ROUTES}


@pytest.mark.parametrize("name, kwargs, method", APP_ROUTES + OWN_ROUTES + TEAM_ROUTES)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_an_outsider_gets_404_and_changes_nothing(
    secret_app, owner_token, outsider, name, kwargs, method, htmx
):
    client = Client()
    client.force_login(outsider)
    before = _snapshot(secret_app, owner_token)
    url = _url(name, kwargs, owner_token)
    response = getattr(client, method)(
        url, GOOD_POST if method == "post" else {}, headers=HX if htmx else {}
    )
    assert response.status_code == 404, (name, method, response.status_code)
    body = response.content.decode()
    assert "owner-secret-value" not in body and "owner's" not in body
    assert _snapshot(secret_app, owner_token) == before


@pytest.mark.parametrize("name, kwargs, method", PERSONAL_ROUTES)
def test_an_outsiders_own_pages_never_show_the_app(
    secret_app, owner_token, outsider, name, kwargs, method
):
    client = Client()
    client.force_login(outsider)
    before = _snapshot(secret_app, owner_token)
    params = {"name": "secret", "provider": "github", "repo": "alice/secret", "q": "secret"}
    response = getattr(client, method)(
        reverse(name), params if method == "get" else {"name": ""}, headers=HX
    )
    assert response.status_code in (200, 400), name
    body = response.content.decode()
    assert (
        "/apps/secret/" not in body and "owner-secret-value" not in body and "owner-ci" not in body
    )
    assert _snapshot(secret_app, owner_token) == before


@pytest.mark.parametrize("name, kwargs, method", ALL_ROUTES)
def test_anonymous_users_are_sent_to_sign_in(secret_app, owner_token, name, kwargs, method):
    before = _snapshot(secret_app, owner_token)
    url = _url(name, kwargs, owner_token)
    response = getattr(Client(), method)(url, GOOD_POST if method == "post" else {})
    assert response.status_code == 302, name
    assert response["Location"].startswith(reverse("account_login") + "?next=")
    assert _snapshot(secret_app, owner_token) == before


def test_the_owner_and_staff_reach_the_pages(secret_app, owner, staff):
    for user in (owner, staff):
        client = Client()
        client.force_login(user)
        for name, kwargs, method in APP_ROUTES:
            if method == "get" and name != "app-env-reveal":  # the owner's alone: tested elsewhere
                assert client.get(reverse(name, kwargs=kwargs), headers=HX).status_code in (
                    200,
                    204,
                ), name
