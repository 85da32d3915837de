"""app_list_rows and app_list_count: the apps list reads its rows in one hand-written
statement. They must list exactly the apps visible_to lists (staff, each role, an outsider,
a token narrowed to a team, the header's chosen team), in its order and pages, and read
what each row shows as the models have it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.models import (
    App,
    Environment,
    Membership,
    Role,
    Team,
    app_list_count,
    app_list_rows,
)
from apps.models.app_list import _aware
from deployments.models import Deployment

pytestmark = pytest.mark.django_db


def _names(user, team_id=None, offset=0, limit=100) -> list[str]:
    return [row["name"] for row in app_list_rows(user, team_id, offset, limit)]


def _visible(user, team=None) -> list[str]:
    apps = App.objects.visible_to(user)
    if team is not None:
        apps = apps.filter(team=team)
    return list(apps.order_by("name").values_list("name", flat=True))


@pytest.fixture
def apps(make_app, owner, django_user_model):
    """Two of the owner's personal apps, two of a team's, one of a stranger's."""
    team = Team.objects.create(name="acme")
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    make_app("zulu")
    make_app("alpha")
    make_app("mike", team=team)
    make_app("bravo", team=team)
    stranger = django_user_model.objects.create_user("stranger", "s@example.com", "pw-x-1234")
    make_app("xray", user=stranger, team=stranger.personal_team)
    return team


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.VIEWER])
def test_every_role_lists_what_visible_to_lists(apps, django_user_model, role):
    user = django_user_model.objects.create_user(f"m-{role}", f"{role}@example.com", "pw-x-12")
    Membership.objects.create(team=apps, user=user, role=role)
    assert _names(user) == _visible(user) == ["bravo", "mike"]
    assert app_list_count(user) == 2


def test_the_owner_staff_and_an_outsider_list_what_visible_to_lists(apps, owner, staff, outsider):
    assert _names(owner) == _visible(owner) == ["alpha", "bravo", "mike", "zulu"]
    assert _names(staff) == _visible(staff) == ["alpha", "bravo", "mike", "xray", "zulu"]
    assert _names(outsider) == _visible(outsider) == []
    assert (app_list_count(owner), app_list_count(staff), app_list_count(outsider)) == (4, 5, 0)


def test_a_token_lists_only_its_team_and_staff_every_app(apps, owner, staff):
    owner.token_team_id = apps.pk
    assert _names(owner) == _visible(owner) == ["bravo", "mike"]
    assert app_list_count(owner) == 2
    staff.token_team_id = apps.pk  # staff: every app, as visible_to has it
    assert _names(staff) == _visible(staff)


def test_the_chosen_team_narrows_the_list_and_its_count(apps, owner):
    personal = owner.personal_team
    assert _names(owner, personal.pk) == _visible(owner, personal) == ["alpha", "zulu"]
    assert app_list_count(owner, apps.pk) == 2
    assert _names(owner, Team.objects.create(name="empty").pk) == []  # not a member


def test_pages_are_slices_of_the_order(apps, owner):
    assert _names(owner, offset=0, limit=3) == ["alpha", "bravo", "mike"]
    assert _names(owner, offset=3, limit=3) == ["zulu"]
    assert _names(owner, offset=9, limit=3) == []


def test_each_row_holds_what_the_models_hold(make_app, owner):
    app = make_app("shop", status="running")
    production = app.environment("production")
    Deployment.objects.create(app=app, environment=production, number=1, status="failed")
    live = Deployment.objects.create(app=app, environment=production, number=2, status="succeeded")
    Environment.objects.filter(pk=production.pk).update(live_deployment=live)
    Environment.objects.filter(pk=production.pk).update(host_label="shop-custom")
    never = make_app("quiet", staging=False)
    Environment.objects.filter(app=never).delete()  # no production either
    [quiet, shop] = app_list_rows(owner, None, 0, 10)

    assert shop["status"] == "running" and shop["status_label"] == app.get_status_display()
    assert shop["repository"] == app.repository
    assert (shop["production_host"], shop["production_live_id"]) == ("shop-custom", live.pk)
    assert (shop["latest_number"], shop["latest_status"]) == (2, "succeeded")
    assert shop["latest_created_at"] == live.created_at
    assert shop["latest_created_at"].tzinfo is not None
    assert timezone.now() - shop["latest_created_at"] < timedelta(minutes=1)

    assert quiet["name"] == "quiet" and quiet["production_host"] is None
    assert quiet["latest_number"] is None and quiet["latest_created_at"] is None


def test_sqlites_time_is_read_as_utc():
    # SQLite (no DATABASE_URL) hands back, to a raw query, a naive time or its text: UTC.
    moment = datetime(2026, 12, 4, 1, 2, 3, 456789, UTC)
    assert _aware("2026-12-04 01:02:03.456789") == moment
    assert _aware(moment.replace(tzinfo=None)) == moment
    assert _aware(None) is None
