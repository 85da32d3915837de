"""Teams: who may do what to a team's app, by role — every dashboard route and every API
operation (the tables of tests/apps/test_staff_powers.py and tests/api/test_staff_powers_api.py
classify them all) × owner, admin, developer, viewer, a user of another team, and nobody
signed in. A refusal is a 404 (or the sign-in page / 401 for nobody) that changes nothing;
what a role may do is never a 404. The rule itself is apps/access.py's RULES."""

import pytest
from django.urls import reverse

from apps.access import RULES
from apps.models import (
    AddOn,
    App,
    Backup,
    BackupStatus,
    Membership,
    NotificationTarget,
    Role,
    Team,
    rank,
)
from deployments.models import LogDrain, PromotionRequest
from deployments.services.promotion import can_decide
from tests.api import test_staff_powers_api as api_table
from tests.apps import test_staff_powers as dashboard_table
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

ROLES = [Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER]
OUTSIDER = "outsider"  # a user of another team (their own personal one)


def allowed(role: str, level: str) -> bool:
    return rank(role) >= rank(RULES[level][0])


@pytest.fixture
def secret_app(make_app, outsider):
    """The app both tables expect (env var, deployment, domain, volume 1, run 1, job 1),
    and object 1 of every other kind a route names, so an allowed call gets past the 404."""
    app = api_table.make_secret_app(make_app)
    production = app.environment("production")
    addon = AddOn.new(production, "postgres")
    addon.pk = 1
    addon.save()
    Backup.objects.create(pk=1, addon=addon, status=BackupStatus.SUCCEEDED)
    NotificationTarget.objects.create(pk=1, app=app, url="https://hooks.example/", secret="s")
    LogDrain.objects.create(pk=1, app=app, kind="https", url="https://logs.example/", secret="s")
    PromotionRequest.objects.create(
        pk=1,
        app=app,
        requested_by=outsider,  # someone else asked, so a member may decide on it
        source_environment=app.environment("staging"),
        target_environment=production,
    )
    return app


@pytest.fixture
def someone(django_user_model, secret_app):
    """someone(role): a user with that role on the app's team (or of another team)."""

    def make(role: str):
        user = django_user_model.objects.create_user(f"u-{role}", "", "pw-member-123")
        if role in ROLES:
            Membership.objects.create(team=secret_app.team, user=user, role=role)
        return user

    return make


DASHBOARD = [(*row, role) for row in dashboard_table.PRESENT for role in [*ROLES, OUTSIDER]]


@pytest.mark.parametrize("name, kwargs, method, level, role", DASHBOARD)
def test_each_dashboard_route_answers_each_role_by_the_rule(
    secret_app, someone, name, kwargs, method, level, role
):
    before = dashboard_table._snapshot(secret_app)
    client = dashboard_table._client(someone(role))
    response = dashboard_table._send(client, name, kwargs, method)
    if role != OUTSIDER and allowed(role, level):
        assert response.status_code != 404, (name, method, role)
        return
    assert response.status_code == 404, (name, method, role, response.status_code)
    assert dashboard_table.SECRET_VALUE not in response.content.decode()
    assert dashboard_table._snapshot(secret_app) == before


@pytest.mark.parametrize("name, kwargs, method", [row[:3] for row in dashboard_table.PRESENT])
def test_nobody_signed_in_is_sent_to_sign_in(secret_app, client, name, kwargs, method):
    before = dashboard_table._snapshot(secret_app)
    response = dashboard_table._send(client, name, kwargs, method)
    # htmx asks for a whole-page redirect (HX-Redirect) where a browser would get a 302.
    sent_to = response.get("HX-Redirect") or response.get("Location") or ""
    assert sent_to.startswith("/accounts/login/"), (name, response.status_code)
    assert dashboard_table._snapshot(secret_app) == before


API = [(*row, role) for row in api_table.ROUTES for role in [*ROLES, OUTSIDER]]


@pytest.mark.parametrize("method, path, body, level, role", API)
def test_each_api_operation_answers_each_role_by_the_rule(
    secret_app, someone, method, path, body, level, role
):
    before = api_table._snapshot(secret_app)
    team = secret_app.team if role in ROLES else None  # the outsider's token: their own team
    response = api_table._send(ApiClient(someone(role), team=team), method, path, body)
    if role != OUTSIDER and allowed(role, level):
        assert response.status_code != 404, (method, path, role, response.content)
        return
    assert response.status_code == 404, (method, path, role, response.status_code)
    assert api_table.SECRET_VALUE.encode() not in response.content
    assert api_table._snapshot(secret_app) == before


@pytest.mark.parametrize("method, path, body", [row[:3] for row in api_table.ROUTES])
def test_no_token_is_401_and_changes_nothing(secret_app, method, path, body):
    before = api_table._snapshot(secret_app)
    response = api_table._send(ApiClient(), method, path, body)
    assert response.status_code == 401, (method, path, response.status_code)
    assert api_table._snapshot(secret_app) == before


# --- the team itself ---------------------------------------------------------------------------


def test_a_new_user_has_a_personal_team_they_own(django_user_model):
    user = django_user_model.objects.create_user("newcomer", "", "pw")
    team = Team.objects.get(personal_of=user)
    assert team.name == "newcomer" and team.role_of(user) == Role.OWNER


def test_a_new_app_lands_in_its_owners_personal_team(make_app, owner):
    app = make_app("mine")
    assert app.team == owner.personal_team


def test_a_member_sees_the_teams_apps_and_nobody_elses(make_app, owner, someone, secret_app):
    viewer = someone(Role.VIEWER)
    other = make_app("elsewhere", user=viewer)  # in the viewer's own personal team
    assert set(App.objects.visible_to(viewer)) == {secret_app, other}
    assert set(App.objects.visible_to(owner)) == {secret_app}


def test_only_an_admin_or_owner_decides_a_promotion(secret_app, someone):
    request = PromotionRequest.objects.get(pk=1)
    roles = (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER)
    decides = {role: can_decide(request, someone(role)) for role in roles}
    assert decides == {
        Role.OWNER: True,
        Role.ADMIN: True,
        Role.DEVELOPER: False,
        Role.VIEWER: False,
    }
    Membership.objects.create(team=secret_app.team, user=request.requested_by, role=Role.OWNER)
    assert not can_decide(request, request.requested_by)  # never the one who asked


def test_the_dashboard_offers_add_ons_to_admins_only(secret_app, someone):
    page = {}
    for role in (Role.ADMIN, Role.DEVELOPER):
        client = dashboard_table._client(someone(role))
        page[role] = client.get(reverse("app-detail", kwargs={"name": "secret"})).content.decode()
    addons = reverse("addons", kwargs={"name": "secret"})
    assert addons in page[Role.ADMIN] and addons not in page[Role.DEVELOPER]
