"""The header's team switcher: a POST (CSRF-protected) keeps one of the user's teams in the
session, or All teams; the app list then shows only that team's apps and the create form's
Team field starts on it. A team the user is not in is 404 with the session unchanged; back
only to a local page; a member removed from the chosen team is on All teams again."""

import re

import pytest
from django.test import Client

from apps.models import Membership, Role, Team
from apps.web.switcher import SESSION_KEY
from deployments.services import teams
from tests.apps.test_team_mfa import signed_in
from tests.apps.test_teams import person  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(owner):
    return teams.create_team(owner, "acme")


@pytest.fixture
def two_teams_of_apps(acme, owner, make_app):
    make_app("shop", team=acme, staging=False)
    make_app("blog", team=Team.personal_for(owner), staging=False)


def switch(client, team="", next_url="/"):
    return client.post("/teams/switch/", {"team": str(team), "next": next_url})


def listed(client, path="/") -> set[str]:
    html = client.get(path).content.decode()
    return {name for name in ("shop", "blog") if f'id="app-link-{name}"' in html}


def team_field(client) -> str:
    """The create form's Team select (the header's switcher has options of its own)."""
    html = client.get("/new/").content.decode()
    return re.search(r'<select id="id_team".*?</select>', html, re.S).group(0)


def test_the_header_lists_the_users_teams_and_all_teams(acme, owner):
    html = signed_in(owner).get("/").content.decode()
    assert 'data-testid="team-switcher"' in html
    assert '<label for="team-switcher"' in html and "<noscript>" in html
    assert '<option value="" selected>All teams</option>' in html
    assert f'<option value="{acme.pk}">acme</option>' in html
    assert f"{owner.username} (personal)" in html


@pytest.mark.usefixtures("two_teams_of_apps")
def test_choosing_a_team_lists_only_its_apps_until_all_teams_is_chosen(acme, owner):
    client = signed_in(owner)
    assert listed(client) == {"shop", "blog"}

    chosen = switch(client, acme.pk, "/teams/")
    assert chosen.status_code == 302 and chosen["Location"] == "/teams/"
    assert client.session[SESSION_KEY] == acme.pk
    assert listed(client) == {"shop"}
    assert listed(client, "/partials/apps/") == {"shop"}  # the list's poll too
    page = client.get("/").content.decode()
    assert f'<option value="{acme.pk}" selected>acme</option>' in page
    assert 'data-testid="chosen-team">in acme<' in page

    switch(client, "")
    assert SESSION_KEY not in client.session
    assert listed(client) == {"shop", "blog"}


def test_a_team_with_no_apps_says_so(acme, owner):
    client = signed_in(owner)
    switch(client, acme.pk)
    assert "No apps in acme yet" in client.get("/").content.decode()


@pytest.mark.parametrize("team", ["stranger", "nope", "-1"])
def test_a_team_the_user_is_not_in_is_not_found_and_the_session_stays(
    acme,
    owner,
    person,  # noqa: F811
    team,
):
    theirs = teams.create_team(person("stranger"), "theirs")
    client = signed_in(owner)
    switch(client, acme.pk)
    refused = switch(client, theirs.pk if team == "stranger" else team)
    assert refused.status_code == 404
    assert client.session[SESSION_KEY] == acme.pk


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", ""]
)
def test_it_goes_back_only_to_a_local_page(acme, owner, next_url):
    answer = switch(signed_in(owner), acme.pk, next_url)
    assert answer.status_code == 302 and answer["Location"] == "/"


def test_it_takes_a_post_with_the_csrf_token_only(acme, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get("/teams/switch/").status_code == 405
    assert switch(client, acme.pk).status_code == 403
    assert SESSION_KEY not in client.session


def test_it_needs_a_sign_in(acme):
    answer = switch(Client(), acme.pk)
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")


@pytest.mark.usefixtures("two_teams_of_apps")
def test_a_member_removed_from_the_chosen_team_is_on_all_teams_again(
    acme,
    owner,
    person,  # noqa: F811
):
    dev = person("dev", acme, Role.DEVELOPER)
    client = signed_in(dev)
    switch(client, acme.pk)
    assert listed(client) == {"shop"}
    Membership.objects.filter(team=acme, user=dev).delete()

    home = client.get("/")
    assert home.status_code == 200 and listed(client) == set()  # blog is alice's alone
    assert SESSION_KEY not in client.session
    assert '<option value="" selected>All teams</option>' in home.content.decode()


def test_the_create_form_starts_on_the_chosen_team(acme, owner):
    client = signed_in(owner)
    personal = Team.personal_for(owner)
    assert f'<option value="{personal.pk}" selected>' in team_field(client)
    switch(client, acme.pk)
    form = team_field(client)
    assert f'<option value="{acme.pk}" selected>' in form
    assert f'<option value="{personal.pk}" selected>' not in form


def test_a_viewers_chosen_team_is_not_where_their_new_app_goes(acme, person):  # noqa: F811
    viewer = person("val", acme, Role.VIEWER)
    client = signed_in(viewer)
    switch(client, acme.pk)
    form = team_field(client)
    assert f'<option value="{Team.personal_for(viewer).pk}" selected>' in form
    assert f'<option value="{acme.pk}" selected>' not in form
