"""A team's owner requires two-factor sign-in of every member: the switch (owners only, and
only one who uses it), and the rule it joins (apps.two_factor.requires_mfa): a member
without a second factor is sent from the dashboard to set it up, their API tokens are
refused with 403 mfa_required, and both open once they have one. Members of teams that do
not require it are untouched. Real PostgreSQL, allauth's own authenticators."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.models import ApiToken, AuditEntry, Membership, Role, Team
from apps.two_factor import requires_mfa
from deployments.services import teams
from tests.apps.test_teams import person  # noqa: F401
from tests.conftest import ApiClient
from tests.test_two_factor import with_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(owner):
    return teams.create_team(owner, "acme")


def token_for(user, team) -> ApiClient:
    """A read-write token of `user` for `team` (a token reaches one team)."""
    _, raw = ApiToken.issue(user, team=team)
    return ApiClient(raw_token=raw)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def require(team) -> None:
    Team.objects.filter(pk=team.pk).update(require_mfa=True)
    team.forget_mfa_rule()  # as set_require_mfa does after its update


def _shown(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- the switch --------------------------------------------------------------------------------


def test_an_owner_who_uses_it_requires_it_through_the_api_and_it_is_audited(acme, owner):
    with_totp(owner)
    answer = token_for(owner, acme).patch(f"/teams/{acme.pk}", {"require_mfa": True})
    assert answer.status_code == 200, answer.content
    assert answer.json()["require_mfa"] is True
    acme.refresh_from_db()
    assert acme.require_mfa
    entry = AuditEntry.objects.get(action="team.require_mfa")
    assert (entry.team, entry.actor_role, entry.details) == (acme, "owner", {"required": True})

    off = token_for(owner, acme).patch(f"/teams/{acme.pk}", {"require_mfa": False})
    assert off.status_code == 200 and off.json()["require_mfa"] is False
    acme.refresh_from_db()
    assert not acme.require_mfa


def test_an_owner_without_it_is_told_to_set_it_up_first_and_nothing_changes(acme, owner):
    answer = token_for(owner, acme).patch(f"/teams/{acme.pk}", {"require_mfa": True})
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "mfa_not_set_up" and "yourself first" in error["message"]
    acme.refresh_from_db()
    assert not acme.require_mfa
    assert not AuditEntry.objects.filter(action="team.require_mfa").exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVELOPER, Role.VIEWER])
def test_no_one_but_an_owner_switches_it_in_the_api(acme, person, role):  # noqa: F811
    member = person("member", acme, role)
    with_totp(member)
    answer = token_for(member, acme).patch(f"/teams/{acme.pk}", {"require_mfa": True})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    acme.refresh_from_db()
    assert not acme.require_mfa


def test_a_team_you_are_not_in_is_not_found(acme, person):  # noqa: F811
    stranger = person("stranger")
    answer = token_for(stranger, Team.personal_for(stranger)).patch(
        f"/teams/{acme.pk}", {"require_mfa": True}
    )
    assert answer.status_code == 404
    acme.refresh_from_db()
    assert not acme.require_mfa


def test_the_switch_takes_a_boolean_and_nothing_else(acme, owner):
    with_totp(owner)
    client = token_for(owner, acme)
    assert client.patch(f"/teams/{acme.pk}", {"require_mfa": "maybe"}).status_code == 400
    assert client.patch(f"/teams/{acme.pk}", {"name": "renamed"}).status_code == 400
    acme.refresh_from_db()
    assert (acme.name, acme.require_mfa) == ("acme", False)


def test_the_team_page_switches_it_for_its_owner(acme, owner):
    with_totp(owner)
    client = signed_in(owner)
    page = client.get(f"/teams/{acme.pk}/").content.decode()
    assert 'id="id_require_mfa"' in page
    done = client.post(f"/teams/{acme.pk}/require-mfa/", {"require_mfa": "on"})
    assert done.status_code == 302 and done["Location"] == f"/teams/{acme.pk}/"
    acme.refresh_from_db()
    assert acme.require_mfa
    assert "Every member of acme must now use two-factor sign-in." in _shown(done)
    client.post(f"/teams/{acme.pk}/require-mfa/", {})  # the box unticked
    acme.refresh_from_db()
    assert not acme.require_mfa


def test_the_team_page_refuses_an_owner_without_it_with_the_reason(acme, owner):
    refused = signed_in(owner).post(f"/teams/{acme.pk}/require-mfa/", {"require_mfa": "on"})
    assert refused.status_code == 302
    assert any("yourself first" in text for text in _shown(refused))
    acme.refresh_from_db()
    assert not acme.require_mfa


def test_an_admin_sees_no_switch_and_cannot_post_it(acme, person):  # noqa: F811
    admin = person("ada", acme, Role.ADMIN)
    with_totp(admin)
    client = signed_in(admin)
    assert 'id="id_require_mfa"' not in client.get(f"/teams/{acme.pk}/").content.decode()
    refused = client.post(f"/teams/{acme.pk}/require-mfa/", {"require_mfa": "on"})
    assert any("Only a team owner" in text for text in _shown(refused))
    acme.refresh_from_db()
    assert not acme.require_mfa


# --- the rule ----------------------------------------------------------------------------------


def test_requires_mfa_counts_the_teams_that_require_it(acme, person):  # noqa: F811
    dev = person("dev", acme, Role.DEVELOPER)
    assert not requires_mfa(dev)
    require(acme)
    assert requires_mfa(dev)


def test_a_member_without_it_is_sent_to_set_it_up_with_the_team_named(
    acme,
    person,  # noqa: F811
    make_app,
):
    make_app("shop", team=acme)
    require(acme)
    dev = person("dev", acme, Role.DEVELOPER)
    client = signed_in(dev)

    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/accounts/2fa/"
    assert client.get("/apps/shop/").status_code == 302
    security = client.get("/accounts/2fa/").content.decode()
    assert "must use two-factor sign-in: the team acme requires it" in security


def test_their_api_token_is_refused_until_they_set_it_up(acme, person, make_app):  # noqa: F811
    make_app("shop", team=acme)
    require(acme)
    dev = person("dev", acme, Role.DEVELOPER)
    token = token_for(dev, acme)
    refused = token.get("/apps/shop")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "mfa_required" and "the team acme requires it" in error["message"]
    # Every request of theirs, not only those on acme's apps: the dashboard is closed too.
    assert token_for(dev, Team.personal_for(dev)).get("/apps").status_code == 403

    with_totp(dev)
    assert token.get("/apps/shop").status_code == 200


def test_once_set_up_the_member_sees_the_teams_apps(acme, person, make_app):  # noqa: F811
    make_app("shop", team=acme)
    require(acme)
    dev = person("dev", acme, Role.DEVELOPER)
    with_totp(dev)
    home = signed_in(dev).get("/")
    assert home.status_code == 200 and b"shop" in home.content


def test_a_member_of_teams_that_do_not_require_it_is_untouched(
    acme,
    person,  # noqa: F811
    make_app,
):
    require(acme)
    beta = teams.create_team(person("bea"), "beta")
    make_app("blog", team=beta)
    dev = person("dev", beta, Role.DEVELOPER)
    home = signed_in(dev).get("/")
    assert home.status_code == 200 and b"blog" in home.content
    assert token_for(dev, beta).get("/apps/blog").status_code == 200


def test_turning_it_off_frees_the_members_again(acme, owner, person, make_app):  # noqa: F811
    make_app("shop", team=acme)
    with_totp(owner)
    teams.set_require_mfa(acme, owner, True)
    dev = person("dev", acme, Role.DEVELOPER)
    assert signed_in(dev).get("/").status_code == 302
    teams.set_require_mfa(acme, owner, False)
    assert signed_in(dev).get("/").status_code == 200


# --- the rule's cached answer (apps.models.teams.MFA_RULE_SECONDS) -------------------------------


def test_joining_a_team_that_requires_it_applies_at_once_though_the_answer_was_cached(
    acme,
    person,  # noqa: F811
):
    require(acme)
    dev = person("dev")
    client = signed_in(dev)
    assert client.get("/").status_code == 200  # "no team of theirs requires it", cached
    Membership.objects.create(team=acme, user=dev, role=Role.VIEWER)
    assert client.get("/").status_code == 302


def test_switching_it_on_applies_at_once_to_members_whose_answer_was_cached(
    acme,
    owner,
    person,  # noqa: F811
):
    dev = person("dev", acme, Role.DEVELOPER)
    client = signed_in(dev)
    assert client.get("/").status_code == 200
    with_totp(owner)
    teams.set_require_mfa(acme, owner, True)
    assert client.get("/").status_code == 302
    # The admin saves the model: the same.
    teams.set_require_mfa(acme, owner, False)
    assert client.get("/").status_code == 200
    acme.require_mfa = True
    acme.save()
    assert client.get("/").status_code == 302


def test_with_the_cache_away_the_database_answers_and_the_rule_holds(
    acme,
    person,  # noqa: F811
    settings,
):
    require(acme)
    dev = person("dev", acme, Role.DEVELOPER)
    client = signed_in(dev)
    # Nothing listens on port 1: every cache call fails at once.
    settings.CACHES = {
        "default": {"BACKEND": "paas.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    assert requires_mfa(dev)
    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/accounts/2fa/"
