"""Deleting a team: owners only, never a personal team nor one that still holds apps (a
clear 409, nothing changed); otherwise its memberships, invitations and API tokens go with
it, and the audit log keeps its name. The API and the team page's typed confirmation."""

import pytest
from django.contrib.messages import get_messages

from apps.models import ApiToken, AuditEntry, Invitation, Membership, Role, Team
from deployments.services import teams
from tests.apps.test_team_mfa import signed_in, token_for
from tests.apps.test_teams import person  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(owner, person):  # noqa: F811
    """A team with a developer, a waiting invitation and tokens of both its members."""
    team = teams.create_team(owner, "acme")
    dev = person("dev", team, Role.DEVELOPER)
    teams.invite(team, owner, "eve@example.com", Role.VIEWER)
    ApiToken.issue(dev, team=team)
    return team


def _everything_of(team) -> tuple[int, int, int]:
    return (
        Membership.objects.filter(team_id=team.pk).count(),
        Invitation.objects.filter(team_id=team.pk).count(),
        ApiToken.objects.filter(team_id=team.pk).count(),
    )


def test_an_owner_deletes_an_empty_team_with_its_members_invitations_and_tokens(acme, owner):
    kept_token, _ = ApiToken.issue(owner)  # their personal team's: untouched
    answer = token_for(owner, acme).delete(f"/teams/{acme.pk}")
    assert answer.status_code == 204, answer.content
    assert not Team.objects.filter(pk=acme.pk).exists()
    assert _everything_of(acme) == (0, 0, 0)
    assert ApiToken.objects.filter(pk=kept_token.pk).exists()
    assert Team.objects.filter(personal_of=owner).exists()
    entry = AuditEntry.objects.get(action="team.delete")
    assert (entry.target, entry.actor_role, entry.team) == ("acme", "owner", None)


def test_a_team_that_holds_apps_is_not_deleted(acme, owner, make_app):
    make_app("shop", team=acme, staging=False)
    make_app("blog", team=acme, staging=False)
    client = token_for(owner, acme)
    before = _everything_of(acme)
    answer = client.delete(f"/teams/{acme.pk}")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "team_has_apps"
    assert "move or delete its 2 apps first" in error["message"]
    assert Team.objects.filter(pk=acme.pk).exists() and _everything_of(acme) == before
    assert not AuditEntry.objects.filter(action="team.delete").exists()


def test_a_personal_team_is_not_deleted(owner):
    personal = Team.personal_for(owner)
    answer = token_for(owner, personal).delete(f"/teams/{personal.pk}")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "personal_team"
    assert "personal team" in answer.json()["error"]["message"]
    assert Team.objects.filter(pk=personal.pk).exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVELOPER, Role.VIEWER])
def test_no_one_but_an_owner_deletes_it(acme, person, role):  # noqa: F811
    client = token_for(person("member", acme, role), acme)
    before = _everything_of(acme)
    answer = client.delete(f"/teams/{acme.pk}")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    assert Team.objects.filter(pk=acme.pk).exists() and _everything_of(acme) == before


def test_a_team_you_are_not_in_is_not_found(acme, person):  # noqa: F811
    stranger = person("stranger")
    answer = token_for(stranger, Team.personal_for(stranger)).delete(f"/teams/{acme.pk}")
    assert answer.status_code == 404
    assert Team.objects.filter(pk=acme.pk).exists()


# --- the team page -----------------------------------------------------------------------------


def test_the_page_deletes_it_once_its_name_is_typed(acme, owner):
    client = signed_in(owner)
    assert 'id="delete-team"' in client.get(f"/teams/{acme.pk}/").content.decode()

    mistyped = client.post(f"/teams/{acme.pk}/delete/", {"confirm": "acm"})
    assert mistyped.status_code == 302 and mistyped["Location"] == f"/teams/{acme.pk}/"
    assert any("Type “acme” exactly" in str(m) for m in get_messages(mistyped.wsgi_request))
    assert Team.objects.filter(pk=acme.pk).exists()

    done = client.post(f"/teams/{acme.pk}/delete/", {"confirm": "acme"})
    assert done.status_code == 302 and done["Location"] == "/teams/"
    assert not Team.objects.filter(pk=acme.pk).exists()
    assert "Team acme is deleted." in [str(m) for m in get_messages(done.wsgi_request)]


def test_the_page_says_why_a_team_with_an_app_stays(acme, owner, make_app):
    make_app("shop", team=acme, staging=False)
    refused = signed_in(owner).post(f"/teams/{acme.pk}/delete/", {"confirm": "acme"})
    shown = [str(m) for m in get_messages(refused.wsgi_request)]
    assert any("move or delete its 1 app first" in text for text in shown)
    assert Team.objects.filter(pk=acme.pk).exists()


def test_an_admin_sees_no_delete_button_and_cannot_post_it(acme, person):  # noqa: F811
    client = signed_in(person("ada", acme, Role.ADMIN))
    assert 'id="delete-team"' not in client.get(f"/teams/{acme.pk}/").content.decode()
    client.post(f"/teams/{acme.pk}/delete/", {"confirm": "acme"})
    assert Team.objects.filter(pk=acme.pk).exists()


def test_a_personal_team_page_offers_no_delete(owner):
    personal = Team.personal_for(owner)
    page = signed_in(owner).get(f"/teams/{personal.pk}/").content.decode()
    assert 'id="delete-team"' not in page
