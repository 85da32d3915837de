"""The team pages in a real browser: make a team, invite someone by e-mail, see the
invitation waiting and the members with their roles; the header's team switcher narrows the
app list to one team (its select sends the form on change) and the create form follows."""

from django.core import mail
from playwright.sync_api import expect

from apps.models import Invitation, Membership, Role, Team
from tests.browser.test_flows import SHOTS, sign_in


def test_make_a_team_and_invite_someone(page, owner, django_user_model):
    dev = django_user_model.objects.create_user("devon", "devon@example.com", "pw-devon-123")
    sign_in(page, "alice", "pw-alice-123")
    page.goto("/teams/")
    page.locator("#id_team_name").fill("acme")
    page.locator("#create-team").click()
    expect(page.get_by_test_id("members")).to_contain_text("alice")
    team = Team.objects.get(name="acme")
    Membership.objects.create(team=team, user=dev, role=Role.DEVELOPER)

    page.reload()
    page.locator("#id_invite_email").fill("eve@example.com")
    page.locator("#id_invite_role").select_option("viewer")
    page.locator("#send-invitation").click()
    expect(page.get_by_test_id("invitations")).to_contain_text("eve@example.com")
    expect(page.get_by_test_id("member-devon")).to_be_visible()
    page.screenshot(path=str(SHOTS / "team-page.png"), full_page=True)  # for the README
    assert Invitation.objects.get().role == Role.VIEWER
    assert [m.to for m in mail.outbox] == [["eve@example.com"]]
    assert page.js_errors == []


def test_the_header_switches_the_app_list_to_one_team(page, owner, make_app):
    acme = Team.objects.create(name="acme")
    Membership.objects.create(team=acme, user=owner, role=Role.OWNER)
    make_app("shop", team=acme, staging=False)
    make_app("blog", staging=False)  # alice's personal team's
    sign_in(page, "alice", "pw-alice-123")
    expect(page.get_by_role("link", name="blog", exact=True)).to_be_visible()

    page.get_by_label("Show the apps of").select_option(label="acme")

    expect(page.get_by_test_id("chosen-team")).to_have_text("in acme")
    expect(page.get_by_role("link", name="shop", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="blog", exact=True)).to_have_count(0)
    expect(page.get_by_label("Show the apps of")).to_have_value(str(acme.pk))
    page.goto("/new/")
    expect(page.locator("#id_team")).to_have_value(str(acme.pk))
    assert page.js_errors == []
