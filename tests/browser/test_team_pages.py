"""The team pages in a real browser: make a team, invite someone by e-mail, see the
invitation waiting and the members with their roles."""

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
