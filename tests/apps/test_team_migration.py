"""The teams migration on a database holding today's apps: every user gets a personal team
they own, and every app moves into its owner's."""

import pytest

from tests.support import migrate

BEFORE = [("apps", "0018_token_scopes")]
AFTER = [("apps", "0019_teams")]


@pytest.mark.django_db(transaction=True)
def test_every_app_moves_into_its_owners_personal_team(back_to_latest):
    old = migrate(BEFORE)
    User = old.get_model("auth", "User")
    App = old.get_model("apps", "App")
    alice = User.objects.create(username="alice-old")
    bob = User.objects.create(username="bob-old")
    User.objects.create(username="carol-no-apps")
    for name, owner in (("shop", alice), ("blog", alice), ("wiki", bob)):
        App.objects.create(name=name, owner=owner, repository=f"https://e.com/{name}.git")

    new = migrate(AFTER)
    Team = new.get_model("apps", "Team")
    apps_of = {
        team.personal_of.username: sorted(team.apps.values_list("name", flat=True))
        for team in Team.objects.select_related("personal_of")
    }
    assert apps_of == {"alice-old": ["blog", "shop"], "bob-old": ["wiki"], "carol-no-apps": []}
    Membership = new.get_model("apps", "Membership")
    owners = set(Membership.objects.values_list("team__name", "user__username", "role"))
    assert owners == {(name, name, "owner") for name in apps_of}


@pytest.mark.django_db(transaction=True)
def test_the_entries_already_written_belong_to_their_apps_team(owner, back_to_latest):
    old = migrate([("apps", "0020_invitations")])
    App = old.get_model("apps", "App")
    team = old.get_model("apps", "Team").objects.get(personal_of_id=owner.pk)
    app = App.objects.create(
        name="shop", owner_id=owner.pk, team=team, repository="https://e.com/s.git"
    )
    AuditEntry = old.get_model("apps", "AuditEntry")
    AuditEntry.objects.create(action="app.create", source="api", app=app, app_name="shop")
    AuditEntry.objects.create(action="login", source="dashboard")

    new = migrate([("apps", "0021_audit_team")])
    teams = dict(new.get_model("apps", "AuditEntry").objects.values_list("action", "team_id"))
    assert teams == {"app.create": team.pk, "login": None}


@pytest.mark.django_db(transaction=True)
def test_every_token_goes_into_its_users_personal_team(back_to_latest):
    """Tokens made before teams reached their user's own apps: now in that personal team.
    A user with no personal team yet (rows loaded raw) gets one."""
    old = migrate([("apps", "0021_audit_team")])
    User = old.get_model("auth", "User")
    Team = old.get_model("apps", "Team")
    ApiToken = old.get_model("apps", "ApiToken")
    alice = User.objects.create(username="alice-old")
    alice_team = Team.objects.create(name="alice-old", personal_of=alice)
    raw_loaded = User.objects.create(username="dora-raw")  # no receiver ran for her
    for n, user in enumerate((alice, alice, raw_loaded)):
        ApiToken.objects.create(user=user, name=f"t{n}", token_hash=f"{n:064d}", hint=f"slw_{n}")

    new = migrate([("apps", "0024_token_team_required")])
    tokens = new.get_model("apps", "ApiToken").objects.select_related("team__personal_of")
    placed = sorted((t.name, t.team.personal_of.username) for t in tokens)
    assert placed == [("t0", "alice-old"), ("t1", "alice-old"), ("t2", "dora-raw")]
    assert tokens.get(name="t0").team_id == alice_team.pk
    Membership = new.get_model("apps", "Membership")
    assert Membership.objects.filter(user_id=raw_loaded.pk, role="owner").count() == 1
