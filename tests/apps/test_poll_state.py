"""app_poll_state: the status strip's poll reads the app, its newest deployment and its
environments in one hand-written statement. It must let see exactly whom visible_to lets see
(staff, each role of the app's team, an outsider, a token narrowed to a team) and answer what
the page's own fingerprint was made of, so that an unchanged app is a 204 and a changed one
is not."""

import pytest
from django.utils import timezone

from apps.models import App, Environment, Membership, Role, Team, app_poll_state
from apps.web.pages import _environments, _fingerprint, _status_context
from deployments.models import Deployment

pytestmark = pytest.mark.django_db


def _deploy(app, number, status, environment="production"):
    env = app.environments.get(name=environment)
    return Deployment.objects.create(
        app=app,
        environment=env,
        number=number,
        status=status,
        trigger="manual",
        finished_at=timezone.now(),
    )


def _page_fingerprint(app: App) -> str:
    return _status_context(App.objects.get(pk=app.pk))["fingerprint"]


def _poll_fingerprint(user, app: App) -> str:
    _, status, latest, envs = app_poll_state(user, app.name)
    return _fingerprint(status, latest, envs)


@pytest.fixture
def team_app(make_app, owner):
    team = Team.objects.create(name="acme")
    app = make_app("shop", team=team)
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    return app


@pytest.fixture
def member(django_user_model, team_app):
    def make(role):
        user = django_user_model.objects.create_user(
            f"m-{role}", f"{role}@example.com", "pw-x-1234"
        )
        Membership.objects.create(team=team_app.team, user=user, role=role)
        return user

    return make


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER])
def test_every_role_of_the_team_gets_the_state_as_visible_to_has_it(team_app, member, role):
    user = member(role)
    state = app_poll_state(user, "shop")
    assert App.objects.visible_to(user).filter(name="shop").exists()
    assert state[:2] == (team_app.pk, team_app.status)


def test_an_outsider_and_an_unknown_name_get_nothing(team_app, outsider):
    assert not App.objects.visible_to(outsider).filter(name="shop").exists()
    assert app_poll_state(outsider, "shop") is None
    assert app_poll_state(outsider, "no-such-app") is None


def test_staff_see_every_app_and_a_token_only_its_own_team(team_app, staff, member, owner):
    assert app_poll_state(staff, "shop")[0] == team_app.pk
    user = member(Role.DEVELOPER)
    user.token_team_id = user.personal_team.pk  # a token for their personal team
    assert not App.objects.visible_to(user).filter(name="shop").exists()
    assert app_poll_state(user, "shop") is None
    user.token_team_id = team_app.team_id
    assert app_poll_state(user, "shop")[0] == team_app.pk
    staff.token_team_id = owner.personal_team.pk  # staff: every app, as visible_to has it
    assert app_poll_state(staff, "shop")[0] == team_app.pk


def test_its_fingerprint_is_the_pages_and_follows_each_change(team_app, owner):
    before = _poll_fingerprint(owner, team_app)
    assert before == _page_fingerprint(team_app)
    assert app_poll_state(owner, "shop")[2] == (0, "")

    d = _deploy(team_app, 1, "succeeded")
    assert app_poll_state(owner, "shop")[2] == (1, "succeeded")
    after_deploy = _poll_fingerprint(owner, team_app)
    assert after_deploy != before and after_deploy == _page_fingerprint(team_app)

    Environment.objects.filter(app=team_app, name="production").update(live_deployment=d)
    live = _poll_fingerprint(owner, team_app)
    assert live != after_deploy and live == _page_fingerprint(team_app)

    Environment.objects.filter(app=team_app, name="staging").update(stopped=True)
    stopped = _poll_fingerprint(owner, team_app)
    assert stopped != live and stopped == _page_fingerprint(team_app)

    App.objects.filter(pk=team_app.pk).update(status="failed")
    assert _poll_fingerprint(owner, team_app) not in (stopped, live)
    assert _poll_fingerprint(owner, team_app) == _page_fingerprint(team_app)


def test_environments_come_in_the_pages_order(team_app, owner):
    Environment.create_for(team_app, "review")
    names = [e.name for e in _environments(team_app)]
    assert [name for name, *_ in app_poll_state(owner, "shop")[3]] == names
