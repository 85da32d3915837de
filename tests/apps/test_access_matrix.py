"""The access matrix: every dashboard route (pages, htmx partials, actions) and every API
operation, tried as each role on the app's team, a member of another team, staff and
nobody signed in; what each one gets is in one table below, DASHBOARD and API.

What it proves:

- The routes come from the URL conf and the operations from the OpenAPI document, and the
  table must name exactly those (a test fails on a route it lacks and on one it names that
  is gone), so a new way in cannot go unclassified. The prefixes left out are in SKIPPED,
  each with the reason.
- Every route is tried with GET, and every action and every page that takes a form with
  an empty POST too; every API operation with its method and an empty body; all on real
  objects (an app of the team, its environment, deployment, run, job, add-on, backup,
  domain, volume, notification target, log drain, promotion request, invitation).
- Every answer that is not "let in" (sign in, 400, 403, 404, 405, 503) wrote nothing to
  the database and queued no background job.
- No answer to anyone shows what the app holds beyond what apps/access.py lets them read
  (READERS): deploy logs, env values, run output, the webhook secret, credentials.

The rules themselves are apps/access.py's (the app's team) and deployments/services/
teams.py's (the team); tests/apps/test_team_access.py and tests/apps/test_staff_powers.py
try the same rules with valid bodies.
"""

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from apps.models import (
    AddOn,
    ApiToken,
    App,
    Backup,
    BackupStatus,
    Domain,
    Environment,
    EnvironmentName,
    Membership,
    NotificationTarget,
    Role,
    Volume,
)
from deployments import services
from deployments.models import LogDrain, PromotionRequest, Run, ScheduledJob
from deployments.services import ServiceError, teams
from tests.api.test_token_scopes import DOCUMENT, OPERATIONS, _call, _writes
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

# --- the outcomes ------------------------------------------------------------------------------

OK = "ok"  # let in: 2xx, 409, a redirect not to sign in; on the dashboard also a form's 400
LOGIN = "login"  # asked who they are: sent to sign in (dashboard), 401 (API)
FORBIDDEN = "403"  # a member refused by role: 403, or back to the page with it as the message
HIDDEN = "404"  # as if it did not exist
NOT_ALLOWED = "405"  # not this method (a GET of an action)
INVALID = "400"  # the API: the empty body refused before the object is looked up
UNAVAILABLE = "503"  # the page the router shows instead of a stopped app

# --- the actors --------------------------------------------------------------------------------

ACTORS = ("owner", "admin", "developer", "viewer", "outsider", "staff", "anonymous")
TEAM_ROLES = {
    "owner": Role.OWNER,
    "admin": Role.ADMIN,
    "developer": Role.DEVELOPER,
    "viewer": Role.VIEWER,
}
# outsider: the owner of another team, which has an app of its own (their token is for it).
# staff: an operator, is_staff and no superuser (a superuser may CHANGE too, and their
# powers are tests/apps/test_staff_powers.py's).

# --- the rows: one answer per actor, in ACTORS' order ------------------------------------------

# fmt: off
#                 owner      admin      developer  viewer     outsider  staff    anonymous
READ =          (OK,        OK,        OK,        OK,        HIDDEN,   OK,      LOGIN)
MANAGE =        (OK,        OK,        OK,        HIDDEN,    HIDDEN,   OK,      LOGIN)
CHANGE =        (OK,        OK,        OK,        HIDDEN,    HIDDEN,   HIDDEN,  LOGIN)
ADMIN =         (OK,        OK,        HIDDEN,    HIDDEN,    HIDDEN,   OK,      LOGIN)
OWN =           (OK,        OK,        HIDDEN,    HIDDEN,    HIDDEN,   HIDDEN,  LOGIN)
# Admins and owners decide; a developer reaches it and is told why not (promotions,
# protecting an env var: tests/apps/test_protected_env_vars.py).
ADMINS_DECIDE = (OK,        OK,        FORBIDDEN, HIDDEN,    HIDDEN,   HIDDEN,  LOGIN)
# The team: its members reach it (staff too are no member); the service asks the role.
MEMBERS =       (OK,        OK,        OK,        OK,        HIDDEN,   HIDDEN,  LOGIN)
TEAM_ADMINS =   (OK,        OK,        FORBIDDEN, FORBIDDEN, HIDDEN,   HIDDEN,  LOGIN)
TEAM_OWNERS =   (OK,        FORBIDDEN, FORBIDDEN, FORBIDDEN, HIDDEN,   HIDDEN,  LOGIN)
# The team's owner alone: the team's audit log; the owner's own API token.
OWNER_ALONE =   (OK,        HIDDEN,    HIDDEN,    HIDDEN,    HIDDEN,   HIDDEN,  LOGIN)
# Everyone's own pages: their list, the create form, their tokens and teams.
SIGNED_IN =     (OK,        OK,        OK,        OK,        OK,       OK,      LOGIN)
# An action asked for with GET (login_required is outermost: anonymous is sent to sign in).
POST_ONLY =     (NOT_ALLOWED,) * 6 + (LOGIN,)
# The API checks the body's schema first: the same 400 as for an object that does not
# exist, so it tells an outsider nothing (tests/api/test_advisories.py).
BODY_FIRST =    (INVALID,) * 6 + (LOGIN,)
ARCHIVE =       (INVALID,   INVALID,   INVALID,   HIDDEN,    HIDDEN,   HIDDEN,  LOGIN)
# For nobody's session: the operators' Prometheus (staff, or its own bearer token), the
# router's page for anyone who opens the app, a provider's push (the signature decides).
OPERATORS =     (HIDDEN,    HIDDEN,    HIDDEN,    HIDDEN,    HIDDEN,   OK,      HIDDEN)
ROUTER =        (UNAVAILABLE,) * 7
PROVIDER_GET =  (NOT_ALLOWED,) * 7
PROVIDER =      (FORBIDDEN,) * 7
# fmt: on


def page(row):
    """A page or partial: GET."""
    return {"GET": row}


def action(row):
    """An action: POST alone."""
    return {"GET": POST_ONLY, "POST": row}


def form(get_row, post_row):
    """A page that also takes its form's POST."""
    return {"GET": get_row, "POST": post_row}


# --- the table ---------------------------------------------------------------------------------

# Every named route of the URL conf outside SKIPPED, by name.
DASHBOARD = {
    # the apps list and creating an app
    "home": page(SIGNED_IN),
    "home-apps": page(SIGNED_IN),
    "app-create": form(SIGNED_IN, SIGNED_IN),
    "app-name-check": page(SIGNED_IN),
    "app-create-detect": page(SIGNED_IN),
    "app-create-repositories": page(SIGNED_IN),
    "app-create-pick": page(SIGNED_IN),
    "app-create-env-row": page(SIGNED_IN),
    # the app's page and its partials
    "app-detail": page(READ),
    "app-status": page(READ),
    "app-environments": page(READ),
    "app-history": page(READ),
    "app-current": page(READ),
    "app-runtime-log": page(CHANGE),  # the app's output may print its secrets
    "app-audit": page(READ),
    "app-metrics": page(READ),
    "app-resources": page(READ),
    "deployment-detail": page(READ),
    "deployment-panel": page(READ),
    "deployment-log": page(READ),
    # running it
    "app-restart": action(MANAGE),
    "app-stop": action(MANAGE),
    "app-start": action(MANAGE),
    "deployment-cancel": action(MANAGE),
    "app-delete": action(ADMIN),
    # changing what runs
    "app-deploy": action(CHANGE),
    "app-archive": action(CHANGE),
    "app-environment-create": action(CHANGE),
    "app-environment-delete": action(CHANGE),
    "deployment-redeploy": action(CHANGE),
    "deployment-rollback": action(CHANGE),
    "app-promote": action(CHANGE),
    "app-pipeline": action(CHANGE),
    "app-pipeline-panel": page(READ),
    "app-promotions": page(READ),
    "promotion-approve": action(ADMINS_DECIDE),
    "promotion-reject": action(ADMINS_DECIDE),
    # settings
    "app-settings": form(READ, CHANGE),
    "app-env-set": action(CHANGE),
    "app-env-reveal": page(CHANGE),  # TOKEN is not protected: developers see its value
    "app-env-delete": action(CHANGE),
    "app-env-protect": action(ADMINS_DECIDE),
    "app-previews-settings": action(CHANGE),
    "app-domains": form(READ, CHANGE),
    "app-domain-delete": action(CHANGE),
    "app-domain-verify": action(CHANGE),
    "app-volumes": form(READ, CHANGE),
    "app-volume-delete": action(CHANGE),
    "app-routing": form(READ, CHANGE),
    "app-scale": action(CHANGE),
    "app-formation": action(CHANGE),
    # one-off runs and jobs: the card shows the latest run's output
    "app-runs": page(CHANGE),
    "run-start": action(CHANGE),
    "run-output": page(CHANGE),
    "run-cancel": action(CHANGE),
    "job-add": action(CHANGE),
    "job-toggle": action(CHANGE),
    "job-delete": action(CHANGE),
    # what holds credentials: add-ons, notification targets, log drains
    "addons": page(OWN),
    "addon-attach": action(OWN),
    "addon-detail": page(OWN),
    "addon-status": page(OWN),
    "addon-reveal": page(OWN),
    "addon-restart": action(OWN),
    "addon-detach": action(OWN),
    "addon-backup": action(OWN),
    "addon-restore": action(OWN),
    "addon-database": page(OWN),
    "addon-table": page(OWN),
    "addon-query": form(OWN, OWN),
    "app-notifications": form(OWN, OWN),
    "app-notification-delete": action(OWN),
    "app-notification-reveal": action(OWN),
    "app-drains": form(OWN, OWN),
    "app-drain-delete": action(OWN),
    # the user's own API tokens
    "settings-tokens": form(SIGNED_IN, SIGNED_IN),
    "token-revoke": action(OWNER_ALONE),  # the owner's token: nobody else's to revoke
    # teams
    "teams": form(SIGNED_IN, SIGNED_IN),
    "team-switch": action(SIGNED_IN),  # no team posted: All teams
    "team-detail": page(MEMBERS),
    # The empty form is refused before the role is asked (the team's name typed out, a role
    # chosen): the API's delete_team and the tests of test_teams.py show the role's answer.
    "team-delete": action(MEMBERS),
    "team-member-role": action(MEMBERS),
    "team-member-remove": action(TEAM_ADMINS),
    "team-invite": action(TEAM_ADMINS),
    "team-invitation-revoke": action(TEAM_ADMINS),
    "team-require-mfa": action(TEAM_OWNERS),
    "team-invitation": form(SIGNED_IN, SIGNED_IN),  # the link answers for itself
    # for no session
    "prometheus": page(OPERATORS),
    "router-page": page(ROUTER),
    "webhook": {"GET": PROVIDER_GET, "POST": PROVIDER},
}

# Every operation of the OpenAPI document, by its operationId.
API = {
    # apps
    "list_apps": SIGNED_IN,
    "create_app": BODY_FIRST,
    "get_app": READ,
    "change_app": CHANGE,
    "delete_app": ADMIN,
    "webhook": READ,  # the secret in it is for admins and owners (READERS)
    "audit_log": READ,
    "app_stats": READ,
    "app_metrics": READ,
    "runtime_log": CHANGE,
    # deployments and running it
    "list_deployments": READ,
    "get_deployment": READ,
    "deployment_log": READ,
    "deploy": CHANGE,
    "deploy_archive": ARCHIVE,  # no file uploaded: 400, once past the app's lookup
    "redeploy": CHANGE,
    "rollback": CHANGE,
    "promote": CHANGE,
    "cancel_deployment": MANAGE,
    "restart": MANAGE,
    "stop": MANAGE,
    "start": MANAGE,
    "scale": BODY_FIRST,
    "get_formation": READ,
    "change_formation": BODY_FIRST,
    # environments and env vars
    "list_environments": READ,
    "create_environment": BODY_FIRST,
    "get_environment": READ,
    "change_environment": CHANGE,
    "delete_environment": CHANGE,
    "list_env_vars": READ,
    "reveal_env_var": CHANGE,
    "set_env_var": BODY_FIRST,
    "protect_env_var": BODY_FIRST,
    "delete_env_var": CHANGE,
    # domains and volumes
    "list_domains": READ,
    "add_domain": BODY_FIRST,
    "verify_domain": CHANGE,
    "remove_domain": CHANGE,
    "list_volumes": READ,
    "add_volume": BODY_FIRST,
    "remove_volume": CHANGE,
    # pipelines, promotions, previews
    "get_pipeline": READ,
    "set_pipeline": BODY_FIRST,
    "get_policy": READ,
    "set_policy": CHANGE,
    "list_requests": READ,
    "approve": ADMINS_DECIDE,
    "reject": ADMINS_DECIDE,
    "list_previews": READ,
    "change_previews": CHANGE,
    # runs and jobs
    "start_run": BODY_FIRST,
    "list_runs": CHANGE,
    "get_run": CHANGE,
    "run_log": CHANGE,
    "cancel_run": CHANGE,
    "list_jobs": CHANGE,
    "create_job": BODY_FIRST,
    "get_job": CHANGE,
    "change_job": BODY_FIRST,
    "delete_job": CHANGE,
    "job_runs": CHANGE,
    # add-ons, notification targets, log drains
    "list_addons": OWN,
    "attach_addon": BODY_FIRST,
    "get_addon": OWN,
    "detach_addon": OWN,
    "restart_addon": OWN,
    "list_backups": OWN,
    "take_backup": OWN,
    "restore_backup": OWN,
    "list_targets": OWN,
    "add_target": BODY_FIRST,
    "get_target": OWN,
    "remove_target": OWN,
    "list_deliveries": OWN,
    "list_drains": OWN,
    "add_drain": BODY_FIRST,
    "remove_drain": OWN,
    # teams
    "list_teams": SIGNED_IN,
    "create_team": BODY_FIRST,
    "get_team": MEMBERS,
    "change_team": BODY_FIRST,
    "delete_team": TEAM_OWNERS,  # the owner is let in, and told the team still has apps
    "change_role": BODY_FIRST,
    "remove_member": TEAM_ADMINS,
    "invite": BODY_FIRST,
    "revoke_invitation": TEAM_ADMINS,
    "team_audit_log": OWNER_ALONE,
}

# Who may read what the app holds (apps/access.py); no one else's answer contains it.
READERS = {
    "build output": ("owner", "admin", "developer", "viewer", "staff"),
    "env value": ("owner", "admin", "developer"),
    "run output": ("owner", "admin", "developer"),
    "webhook secret": ("owner", "admin"),
    "add-on password": ("owner", "admin"),
    "target secret": ("owner", "admin"),
    "drain secret": ("owner", "admin"),
}

# Left out of the URL conf's walk, each for its reason. (Static files are WhiteNoise's,
# served before the URL conf: there is no route to leave out.)
SKIPPED = {
    "admin/": "the Django admin: its own staff sign-in and permissions (tests/test_admin.py, "
    "tests/apps/test_staff_powers.py)",
    "accounts/": "allauth's sign-in, sign-up, password and 2FA pages: for anyone, by design "
    "(tests/test_two_factor.py)",
    "api/v1/": "the API: API above has every operation of its OpenAPI document, and the "
    "document itself (openapi.json) is public (tests/api/test_token_scopes.py reads it so)",
}

# --- the routes and operations, as the code has them ------------------------------------------


def _patterns(patterns, prefix=""):
    """(route, pattern) for every pattern under `patterns`, the route from the root."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def _skipped(route: str) -> bool:
    return route.startswith(tuple(SKIPPED))


def dashboard_routes() -> dict[str, str]:
    """Every route of the URL conf outside SKIPPED, by name (an unnamed one by its route)."""
    return {
        pattern.name or route: route
        for route, pattern in _patterns(get_resolver().url_patterns)
        if not _skipped(route)
    }


ROUTES = dashboard_routes()
API_OPERATIONS = {
    operation["operationId"]: (method.upper(), path)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
}


def test_the_table_names_every_dashboard_route_and_no_other():
    walked = [route for route, _ in _patterns(get_resolver().url_patterns) if not _skipped(route)]
    assert len(ROUTES) == len(walked), "two routes under one name: one would go untried"
    assert set(DASHBOARD) - set(ROUTES) == set(), "routes the URL conf no longer has"
    assert set(ROUTES) - set(DASHBOARD) == set(), "routes the table does not say who may use"


def test_the_table_names_every_api_operation_and_no_other():
    assert sorted(API_OPERATIONS.values()) == OPERATIONS  # one operationId each
    assert set(API) - set(API_OPERATIONS) == set(), "operations the document no longer has"
    assert set(API_OPERATIONS) - set(API) == set(), "operations the table does not classify"


def test_each_skipped_prefix_still_leaves_out_routes():
    """A skip that matches no route any more is stale: it goes."""
    routes = [route for route, _ in _patterns(get_resolver().url_patterns)]
    for prefix in SKIPPED:
        assert any(route.startswith(prefix) for route in routes), prefix


def test_every_action_is_posted_and_every_row_names_each_actor():
    for name, rows in DASHBOARD.items():
        assert rows["GET"] != POST_ONLY or "POST" in rows, name
        assert all(len(row) == len(ACTORS) for row in rows.values()), name
    assert all(len(row) == len(ACTORS) for row in API.values())


# --- the world they are tried on ---------------------------------------------------------------


@dataclass
class World:
    """The app `secret` of the team acme, one of everything its routes name, and each
    actor's session and API token."""

    params: dict  # a real object behind every path parameter, by the parameter's name
    secrets: dict  # what the app holds (READERS' keys) → the value
    sessions: dict  # actor → session key
    tokens: dict  # actor → raw API token
    clients: dict = field(default_factory=dict)

    def dashboard_client(self, actor: str) -> Client:
        """The actor's browser, with no cookie but the session (no message left over)."""
        client = self._client()
        if actor in self.sessions:
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[actor]
        return client

    def api_client(self, actor: str) -> ApiClient:
        api = ApiClient(raw_token=self.tokens.get(actor))
        api.client = self._client()
        return api

    def _client(self) -> Client:
        """One test client for every request, its cookies cleared: each new one would build
        the whole middleware stack again (a fifth of a second)."""
        client = self.clients.setdefault("shared", Client())
        client.cookies.clear()
        return client

    def url(self, name: str) -> str:
        params = {**self.params, "pk": self.params[PK_OF.get(name, "addon_id")]}
        return reverse(name, kwargs={key: params[key] for key in PARAM.findall(ROUTES[name])})


PARAM = re.compile(r"<(?:\w+:)?(\w+)>")  # a route's parameter, <int:run_id> or <name>
# `pk` is the add-on's in the add-on routes, the owner's token's in token-revoke.
PK_OF = {"token-revoke": "owner_token_id"}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Made once for the module in a transaction rolled back at its end; each request below
    runs in a savepoint of its own, rolled back, so every actor meets the same world."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield _make_world()
        transaction.set_rollback(True)


def _user(username: str, **flags):
    return get_user_model().objects.create(
        username=username, email=f"{username}@example.com", **flags
    )


def _make_world() -> World:
    users, team, bystander = _team_acme()
    users["outsider"] = _user("mallory")
    rival = teams.create_team(users["outsider"], "rival")
    App.objects.create(
        name="rival-app", owner=users["outsider"], team=rival, repository="https://e.com/r.git"
    )
    users["staff"] = _user("ops", is_staff=True)
    secrets, params = _app_secret(users["owner"], team, users["outsider"])
    invitation = teams.invite(team, users["owner"], "friend@example.com", Role.VIEWER)
    params.update(
        team_id=team.pk,
        username=bystander.username,
        invitation_id=invitation.pk,
        token=teams.link_token(invitation),
        owner_token_id=ApiToken.issue(users["owner"], "owner-ci", team=team)[0].pk,
        route_id=f"{settings.PAAS_INSTANCE}-secret-production",
        provider="github",
    )
    token_team = {**dict.fromkeys(TEAM_ROLES, team), "outsider": rival}
    tokens = {
        actor: ApiToken.issue(user, team=token_team.get(actor))[1] for actor, user in users.items()
    }
    ApiToken.objects.update(last_used_at=timezone.now())  # no last-use write for a while
    sessions = {actor: _session_key(user) for actor, user in users.items()}
    return World(params=params, secrets=secrets, sessions=sessions, tokens=tokens)


def _team_acme():
    """acme's owner, admin, developer and viewer, and a viewer the team routes act on."""
    users = {"owner": _user("alice")}
    team = teams.create_team(users["owner"], "acme")
    for actor, role in TEAM_ROLES.items():
        if actor != "owner":
            users[actor] = _user(f"u-{actor}")
            Membership.objects.create(team=team, user=users[actor], role=role)
    bystander = _user("tess")
    Membership.objects.create(team=team, user=bystander, role=Role.VIEWER)
    return users, team, bystander


def _app_secret(owner, team, someone_else) -> tuple[dict, dict]:
    """The app and one of every object its routes name: (its secrets, the path params)."""
    app = App.objects.create(
        name="secret", owner=owner, team=team, repository="https://example.com/acme/s.git"
    )
    Environment.create_for(app, EnvironmentName.STAGING)
    production = app.environment("production")
    services.set_env_vars(production, {"TOKEN": "owner-secret-value"})
    app.new_deployment(production, status="building", started_at=timezone.now()).log(
        "owner's build output"
    )
    run = Run.objects.create(app=app, environment=production, command="env")
    run.log("owner's run output")
    addon = AddOn.new(production, "postgres")
    addon.save()
    target = NotificationTarget.objects.create(
        app=app, url="https://hooks.example/", secret="owner-target-secret"
    )
    drain = LogDrain.objects.create(
        app=app, kind="https", url="https://logs.example/", secret="owner-drain-secret"
    )
    secrets = {
        "build output": "owner's build output",
        "env value": "owner-secret-value",
        "run output": "owner's run output",
        "webhook secret": app.webhook_secret,
        "add-on password": addon.password,
        "target secret": target.secret,
        "drain secret": drain.secret,
    }
    return secrets, _params_of(app, production, run, addon, target, drain, someone_else)


def _params_of(app, production, run, addon, target, drain, requester) -> dict:
    domain = Domain.objects.create(environment=production, hostname="www.secret.example")
    volume = Volume.objects.create(environment=production, name="data", mount_path="/data")
    job = ScheduledJob.objects.create(
        environment=production, name="nightly", schedule="0 3 * * *", command="id"
    )
    request = PromotionRequest.objects.create(
        app=app,
        requested_by=requester,  # someone else asked, so the team's admins may decide
        source_environment=app.environment("staging"),
        target_environment=production,
    )
    return {
        "name": app.name,
        "environment": production.name,
        "number": 1,
        "key": "TOKEN",
        "hostname": domain.hostname,
        "volume_id": volume.pk,
        "run_id": run.pk,
        "job_id": job.pk,
        "addon_id": addon.pk,
        "backup_id": Backup.objects.create(addon=addon, status=BackupStatus.SUCCEEDED).pk,
        "table": "users",
        "target_id": target.pk,
        "drain_id": drain.pk,
        "request_id": request.pk,
    }


def _session_key(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


# --- one request, and what it did --------------------------------------------------------------


@dataclass
class Answer:
    outcome: str
    changed: list  # the writes it made and the jobs it queued
    body: bytes


# A token records its use (at most once a minute, and the world's were just used): not a change.
LAST_USE = 'UPDATE "apps_apitoken" SET "last_used_at"'


@contextmanager
def _refusals_raised():
    """The messages of the 403 refusals services raise meanwhile: the dashboard shows some
    on the page it redirects back to (apps/web/teams.py), not as a 403."""
    raised, original = [], ServiceError.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.status == 403:
            raised.append(self.message)

    with mock.patch.object(ServiceError, "__init__", init):
        yield raised


def _answer(send, outcome_of) -> Answer:
    """`send()` in a savepoint rolled back afterwards."""
    with transaction.atomic(), _refusals_raised() as refused:
        queued = len(connection.run_on_commit)
        with CaptureQueriesContext(connection) as queries:
            response = send()
        jobs = connection.run_on_commit[queued:]
        transaction.set_rollback(True)
    writes = [sql for sql in _writes(queries.captured_queries) if not sql.startswith(LAST_USE)]
    body = b"" if response.streaming else response.content
    queued_jobs = [f"job {function!r}" for _, function, _ in jobs]
    return Answer(outcome_of(response, refused), writes + queued_jobs, body)


def _status_outcome(status: int) -> str:
    known = {401: LOGIN, 403: FORBIDDEN, 404: HIDDEN, 405: NOT_ALLOWED, 503: UNAVAILABLE}
    return known.get(status) or (OK if status < 500 else str(status))


def dashboard_outcome(response, refused) -> str:
    sent_to = response.get("HX-Redirect") or response.get("Location") or ""
    if sent_to.startswith(reverse("account_login")):
        return LOGIN
    told = {message.message for message in get_messages(response.wsgi_request)}
    if told & set(refused):
        return FORBIDDEN
    return _status_outcome(response.status_code)  # a form's 400 is let in


def api_outcome(response, refused) -> str:
    return INVALID if response.status_code == 400 else _status_outcome(response.status_code)


# --- the matrix --------------------------------------------------------------------------------


def _check(world: World, answers: dict, row: tuple) -> None:
    assert {actor: a.outcome for actor, a in answers.items()} == dict(zip(ACTORS, row, strict=True))
    for actor, answer in answers.items():
        if answer.outcome != OK:
            assert answer.changed == [], (actor, "refused, yet it changed", answer.changed)
        for what, readers in READERS.items():
            if actor not in readers:
                assert world.secrets[what].encode() not in answer.body, (actor, what)


DASHBOARD_CELLS = [(name, method) for name, rows in DASHBOARD.items() for method in rows]


def _dashboard_answer(world: World, actor: str, method: str, name: str) -> Answer:
    client = world.dashboard_client(actor)
    send = client.get if method == "GET" else client.post
    return _answer(partial(send, world.url(name), {}), dashboard_outcome)


@pytest.mark.parametrize("name, method", DASHBOARD_CELLS)
def test_each_dashboard_route_answers_each_actor_as_the_table_says(world, name, method):
    answers = {actor: _dashboard_answer(world, actor, method, name) for actor in ACTORS}
    _check(world, answers, DASHBOARD[name][method])


@pytest.mark.parametrize("operation_id", sorted(API))
def test_each_api_operation_answers_each_actor_as_the_table_says(world, operation_id):
    method, path = API_OPERATIONS[operation_id]
    answers = {}
    for actor in ACTORS:
        client = world.api_client(actor)
        send = partial(_call, client, method, path, world.params)
        answers[actor] = _answer(send, api_outcome)
    _check(world, answers, API[operation_id])


def test_the_checks_would_see_a_change_a_queued_job_and_a_secret(world):
    """The owner's answers, to show the checks above are not vacuous."""
    revoke = _dashboard_answer(world, "owner", "POST", "token-revoke")
    assert revoke.outcome == OK and revoke.changed  # the token is gone
    redeploy = _dashboard_answer(world, "owner", "POST", "deployment-redeploy")
    assert any(change.startswith("job ") for change in redeploy.changed)
    reveal = _dashboard_answer(world, "owner", "GET", "app-env-reveal")
    assert world.secrets["env value"].encode() in reveal.body
    refusal = _dashboard_answer(world, "viewer", "POST", "team-member-remove")
    assert refusal.outcome == FORBIDDEN  # told on the team's page, not as a 403
