"""Teams: making one, members and roles (the last owner stays), invitations by e-mail
(signed, expiring, single-use, answered by their addressee, revocable), apps made into a
team, and a removed member's token losing the team's apps on its very next call."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from apps.models import App, AuditEntry, Invitation, Membership, Role, Team
from deployments.services import teams
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

LINK = re.compile(r"/teams/invitations/([^/\s]+)/")


@pytest.fixture
def acme(owner):
    return teams.create_team(owner, "acme")


@pytest.fixture
def api(owner, acme):
    """The owner's token for acme, the team these tests act on (a token reaches one team)."""
    return ApiClient(owner, team=acme)


@pytest.fixture
def person(django_user_model):
    def make(name, team=None, role=None):
        user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw-123-abc")
        if team is not None:
            Membership.objects.create(team=team, user=user, role=role)
        return user

    return make


def _member(team, user):
    return team.memberships.get(user=user)


def _link_token() -> str:
    return LINK.search(mail.outbox[-1].body).group(1)


# --- teams and roles ---------------------------------------------------------------------------


def test_the_maker_of_a_team_owns_it_and_the_api_lists_it(api, owner):
    made = api.post("/teams", {"name": "shipyard"})
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["name"], body["role"], body["personal"]) == ("shipyard", "owner", False)
    assert [m["username"] for m in body["members"]] == [owner.username]
    assert set(teams.teams_of(owner).values_list("name", flat=True)) == {
        owner.username,
        "acme",
        "shipyard",
    }
    # A token lists the one team it is for (tests/apps/test_team_tokens.py).
    shipyard = ApiClient(owner, team=Team.objects.get(name="shipyard"))
    listed = {team["name"]: team["role"] for team in shipyard.get("/teams").json()["teams"]}
    assert listed == {"shipyard": "owner"}


@pytest.mark.parametrize("name", ["", " ", "x" * 64])
def test_a_team_name_out_of_bounds_is_refused(api, name):
    before = Team.objects.count()
    answer = api.post("/teams", {"name": name})
    assert answer.status_code == 400 and "name" in answer.json()["error"]["fields"]
    assert Team.objects.count() == before


def test_a_team_you_are_not_in_is_not_found(acme, person):
    stranger = ApiClient(person("stranger"))
    assert stranger.get(f"/teams/{acme.pk}").status_code == 404
    assert stranger.post(f"/teams/{acme.pk}/invitations", {"email": "x@e.com"}).status_code == 404


def test_an_admin_changes_roles_but_not_an_owners(acme, owner, person):
    admin = person("ada", acme, Role.ADMIN)
    dev = person("dev", acme, Role.DEVELOPER)
    as_admin = ApiClient(admin, team=acme)
    answer = as_admin.patch(f"/teams/{acme.pk}/members/dev", {"role": "viewer"})
    assert answer.status_code == 200 and _member(acme, dev).role == Role.VIEWER
    refused = as_admin.patch(f"/teams/{acme.pk}/members/{owner.username}", {"role": "viewer"})
    assert refused.status_code == 403 and _member(acme, owner).role == Role.OWNER
    promoted = as_admin.patch(f"/teams/{acme.pk}/members/dev", {"role": "owner"})
    assert promoted.status_code == 403 and _member(acme, dev).role == Role.VIEWER


def test_a_developer_manages_no_one(acme, person):
    dev = person("dev", acme, Role.DEVELOPER)
    person("val", acme, Role.VIEWER)
    as_dev = ApiClient(dev, team=acme)
    assert as_dev.patch(f"/teams/{acme.pk}/members/val", {"role": "admin"}).status_code == 403
    assert as_dev.delete(f"/teams/{acme.pk}/members/val").status_code == 403
    invited = as_dev.post(f"/teams/{acme.pk}/invitations", {"email": "x@example.com"})
    assert invited.status_code == 403 and not Invitation.objects.exists() and not mail.outbox


def test_the_last_owner_can_neither_leave_nor_be_demoted(acme, owner, api):
    path = f"/teams/{acme.pk}/members/{owner.username}"
    demoted = api.patch(path, {"role": "admin"})
    assert demoted.status_code == 409 and demoted.json()["error"]["code"] == "last_owner"
    assert api.delete(path).status_code == 409
    assert _member(acme, owner).role == Role.OWNER


def test_with_a_second_owner_the_first_may_leave(acme, owner, api, person):
    person("olga", acme, Role.OWNER)
    assert api.delete(f"/teams/{acme.pk}/members/{owner.username}").status_code == 204
    assert not acme.memberships.filter(user=owner).exists()


@pytest.mark.parametrize("role", ["root", "", "Owner"])
def test_an_unknown_role_is_refused(acme, api, person, role):
    person("dev", acme, Role.DEVELOPER)
    answer = api.patch(f"/teams/{acme.pk}/members/dev", {"role": role})
    assert answer.status_code == 400 and "role" in answer.json()["error"]["fields"]


# --- apps in a team ----------------------------------------------------------------------------


def test_an_app_made_into_a_team_is_its_members(acme, api, person):
    viewer = person("val", acme, Role.VIEWER)
    made = api.post(
        "/apps", {"name": "shop", "repository": "https://e.com/a/b.git", "team": acme.pk}
    )
    assert made.status_code == 201, made.content
    assert App.objects.get(name="shop").team == acme
    assert ApiClient(viewer, team=acme).get("/apps/shop").status_code == 200


def test_no_app_goes_into_a_team_where_you_may_not_deploy(acme, person):
    viewer = ApiClient(person("val", acme, Role.VIEWER), team=acme)
    body = {"name": "shop", "repository": "https://e.com/a/b.git", "team": acme.pk}
    assert viewer.post("/apps", body).status_code == 403
    stranger = ApiClient(person("stranger"))
    assert stranger.post("/apps", body).status_code == 400
    assert not App.objects.filter(name="shop").exists()


def test_a_removed_member_loses_the_apps_on_the_next_call(acme, api, person, make_app):
    make_app("shop", team=acme)
    dev = person("dev", acme, Role.DEVELOPER)
    token = ApiClient(dev, team=acme)
    assert token.get("/apps/shop").status_code == 200
    assert api.delete(f"/teams/{acme.pk}/members/dev").status_code == 204
    # Their token for the team went with the membership (tests/apps/test_team_tokens.py).
    assert token.get("/apps/shop").status_code == 401
    assert token.post("/apps/shop/deployments", {"environment": "production"}).status_code == 401


@pytest.mark.parametrize(
    "role, sees", [(Role.ADMIN, True), (Role.DEVELOPER, False), (Role.VIEWER, False)]
)
def test_the_webhook_secret_is_for_the_teams_admins_and_owners(acme, person, make_app, role, sees):
    app = make_app("shop", team=acme)
    member = ApiClient(person("m", acme, role), team=acme)
    secret = member.get("/apps/shop/webhook").json()["secret"]
    assert secret == (app.webhook_secret if sees else None)


# --- invitations -------------------------------------------------------------------------------


def test_an_invitation_is_mailed_accepted_once_and_makes_a_member(acme, api, person):
    invited = api.post(
        f"/teams/{acme.pk}/invitations", {"email": "Eve@Example.com", "role": "viewer"}
    )
    assert invited.status_code == 201, invited.content
    assert "token" not in invited.json() and _link_token() not in invited.content.decode()
    (message,) = mail.outbox
    assert message.to == ["Eve@Example.com"] and "acme" in message.subject
    eve = person("eve")
    client = Client()
    client.force_login(eve)
    page = client.get(f"/teams/invitations/{_link_token()}/")
    assert page.status_code == 200 and b"acme" in page.content
    client.post(f"/teams/invitations/{_link_token()}/", {"answer": "accept"})
    assert _member(acme, eve).role == Role.VIEWER
    again = client.post(f"/teams/invitations/{_link_token()}/", {"answer": "accept"})
    assert again.status_code == 410 and b"accepted already" in again.content


def test_an_invitation_is_answered_by_its_addressee_only(acme, api, person):
    api.post(f"/teams/{acme.pk}/invitations", {"email": "eve@example.com"})
    client = Client()
    client.force_login(person("mallory"))
    answer = client.post(f"/teams/invitations/{_link_token()}/", {"answer": "accept"})
    assert answer.status_code == 403 and b"eve@example.com" in answer.content
    assert Invitation.objects.get().status == "pending"
    assert not acme.memberships.filter(user__username="mallory").exists()


def test_a_declined_invitation_makes_no_member(acme, api, person):
    api.post(f"/teams/{acme.pk}/invitations", {"email": "eve@example.com"})
    client = Client()
    client.force_login(person("eve"))
    client.post(f"/teams/invitations/{_link_token()}/", {"answer": "decline"})
    assert Invitation.objects.get().status == "declined"
    assert not acme.memberships.filter(user__username="eve").exists()


def test_an_expired_link_is_refused(acme, api, person, settings):
    api.post(f"/teams/{acme.pk}/invitations", {"email": "eve@example.com"})
    client = Client()
    client.force_login(person("eve"))
    settings.PAAS_INVITATION_DAYS = 0  # the signature is older than that at once
    answer = client.post(f"/teams/invitations/{_link_token()}/", {"answer": "accept"})
    assert answer.status_code == 410 and b"expired" in answer.content
    assert not acme.memberships.filter(user__username="eve").exists()


def test_an_invitation_past_its_row_expiry_is_refused(acme, api, person):
    api.post(f"/teams/{acme.pk}/invitations", {"email": "eve@example.com"})
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client = Client()
    client.force_login(person("eve"))
    answer = client.post(f"/teams/invitations/{_link_token()}/", {"answer": "accept"})
    assert answer.status_code == 410 and Invitation.objects.get().status == "pending"


@pytest.mark.parametrize("token", ["nonsense", "MQ:1abc:xyz", "../../admin"])
def test_a_forged_link_is_not_an_invitation(person, token):
    client = Client()
    client.force_login(person("eve"))
    answer = client.get(f"/teams/invitations/{token}/")
    assert answer.status_code in (400, 404) and b"acme" not in answer.content


def test_a_revoked_invitation_no_longer_works(acme, api, person):
    invitation = api.post(f"/teams/{acme.pk}/invitations", {"email": "eve@example.com"}).json()
    assert api.delete(f"/teams/{acme.pk}/invitations/{invitation['id']}").status_code == 204
    client = Client()
    client.force_login(person("eve"))
    answer = client.post(f"/teams/invitations/{_link_token()}/", {"answer": "accept"})
    assert answer.status_code == 410
    assert not acme.memberships.filter(user__username="eve").exists()


@pytest.mark.parametrize(
    ("email", "code"),
    [("not-an-address", "invalid"), ("alice@example.com", "already_member")],
)
def test_inviting_a_bad_address_or_a_member_is_refused(acme, api, owner, email, code):
    owner.email = "alice@example.com"
    owner.save()
    answer = api.post(f"/teams/{acme.pk}/invitations", {"email": email})
    assert answer.json()["error"]["code"] == code and not Invitation.objects.exists()
    assert not mail.outbox


def test_inviting_twice_says_one_is_waiting(acme, api):
    api.post(f"/teams/{acme.pk}/invitations", {"email": "eve@example.com"})
    again = api.post(f"/teams/{acme.pk}/invitations", {"email": "EVE@example.com"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_invited"
    assert Invitation.objects.count() == 1 and len(mail.outbox) == 1


# --- the dashboard -----------------------------------------------------------------------------


def test_the_team_pages_list_members_and_invite(acme, owner, person):
    person("dev", acme, Role.DEVELOPER)
    client = Client()
    client.force_login(owner)
    assert b"acme" in client.get("/teams/").content
    page = client.get(f"/teams/{acme.pk}/").content.decode()
    assert 'data-testid="member-dev"' in page and 'data-testid="invite-form"' in page
    client.post(f"/teams/{acme.pk}/invite/", {"email": "eve@example.com", "role": "viewer"})
    assert Invitation.objects.get().role == Role.VIEWER
    client.post(f"/teams/{acme.pk}/members/dev/role/", {"role": "admin"})
    assert acme.memberships.get(user__username="dev").role == Role.ADMIN
    refused = client.post(f"/teams/{acme.pk}/members/{owner.username}/role/", {"role": "viewer"})
    assert refused.status_code == 302 and _member(acme, owner).role == Role.OWNER


# --- the audit log -----------------------------------------------------------------------------


def test_every_entry_names_the_team_and_the_actors_role(acme, person, make_app):
    make_app("shop", team=acme)
    dev = ApiClient(person("dev", acme, Role.DEVELOPER), team=acme)
    assert dev.post("/apps/shop/environments", {"name": "qa"}).status_code == 201
    entry = AuditEntry.objects.get(action="environment.create")
    assert (entry.team, entry.actor_role, entry.actor_name) == (acme, "developer", "dev")


def test_team_owners_read_the_teams_log_and_no_one_else(acme, api, person, make_app):
    make_app("shop", team=acme)
    admin = person("ada", acme, Role.ADMIN)
    ApiClient(admin, team=acme).post("/apps/shop/environments", {"name": "qa"})
    api.post(f"/teams/{acme.pk}/invitations", {"email": "eve@example.com"})
    log = api.get(f"/teams/{acme.pk}/audit")
    assert log.status_code == 200, log.content
    actions = [(e["action"], e["actor_role"], e["app"]) for e in log.json()["entries"]]
    assert ("team.invite", "owner", "") in actions
    assert ("environment.create", "admin", "shop") in actions
    assert ApiClient(admin, team=acme).get(f"/teams/{acme.pk}/audit").status_code == 404
    assert ApiClient(person("stranger")).get(f"/teams/{acme.pk}/audit").status_code == 404
