"""Two-factor sign-in in a real browser: set up an authenticator app from the secret the page
shows (the code computed here, as a phone would), sign out, sign in with the password and a
code; a passkey on Chromium's virtual authenticator; the operator's requirement and a
team's.

allauth's WebAuthn scripts come from its own static files (no CDN): a page that loads them
and runs without a script error shows they are served."""

import re

from allauth.mfa.models import Authenticator
from playwright.sync_api import expect

from apps.models import Membership, Role, Team
from tests.browser.test_flows import shot, sign_in
from tests.test_two_factor import totp_code, wrong_codes

PASSWORD = "pw-alice-123"


def reauthenticate(page) -> None:
    """allauth asks for the password again before 2FA changes."""
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
    page.fill('input[name="password"]', PASSWORD)
    page.locator('main button[type="submit"]').click()


def password_step(page) -> None:
    page.goto("/accounts/login/")
    page.fill('input[name="login"]', "alice")
    page.fill('input[name="password"]', PASSWORD)
    page.locator('form[action="/accounts/login/"] button[type="submit"]').click()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def set_up_totp(page) -> str:
    """From the user's menu to an active authenticator app; the secret."""
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", name="Security", exact=True)).to_be_visible()
    page.locator("#mfa-activate-totp").click()
    reauthenticate(page)
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.locator("img.totp-qr")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().strip()
    shot(page, "two-factor-set-up")
    page.get_by_label("Code from the app").fill(totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
    return secret


def test_set_up_an_app_then_sign_in_with_a_password_and_a_code(page, owner, make_app):
    make_app("shop")
    sign_in(page, "alice", PASSWORD)
    secret = set_up_totp(page)
    codes = page.get_by_test_id("recovery-codes").locator("code")
    expect(codes).to_have_count(10)
    page.get_by_role("link", name="Done").click()
    sign_out(page)

    password_step(page)
    expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/"))
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    shot(page, "two-factor-code-prompt")
    page.get_by_label("Code").fill(wrong_codes(secret, 1)[0])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("Incorrect code.")).to_be_visible()
    page.get_by_label("Code").fill(totp_code(secret, 1))  # the next step's: not yet used
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("link", name="shop", exact=True)).to_be_visible()
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_test_id("mfa-totp")).to_contain_text("On")
    expect(page.get_by_test_id("mfa-recovery-codes")).to_contain_text("10 of 10 codes left")
    shot(page, "two-factor-security")
    # The code page loaded allauth's WebAuthn scripts from /static/ without an error.
    assert page.js_errors == []


def test_a_passkey_on_the_dashboards_origin_signs_in_without_a_password(page, owner):
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    sign_in(page, "alice", PASSWORD)
    page.get_by_role("link", name="Security").click()
    page.locator("#mfa-add-key").click()
    reauthenticate(page)
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Passwordless").check()
    page.locator("#mfa_webauthn_add").click()
    expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
    key = Authenticator.objects.get(user=owner, type=Authenticator.Type.WEBAUTHN)
    assert key.wrap().is_passwordless
    for listing in ("/accounts/2fa/", "/accounts/2fa/webauthn/"):  # Security page, key list
        page.goto(listing)
        row = page.get_by_role("row", name=re.compile("laptop"))
        expect(row).to_contain_text("Passkey")
        expect(row.get_by_role("link", name="Remove")).to_be_visible()
    sign_out(page)

    page.get_by_role("button", name="Sign in with a passkey").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".nav-user")).to_have_text("alice")

    # Removed again from the Security page (after the password once more).
    page.get_by_role("link", name="Security").click()
    page.get_by_role("row", name=re.compile("laptop")).get_by_role("link", name="Remove").click()
    reauthenticate(page)
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("No keys yet")).to_be_visible()
    assert not Authenticator.objects.filter(user=owner, type=Authenticator.Type.WEBAUTHN).exists()
    assert page.js_errors == []


def test_a_user_who_must_use_it_lands_on_the_security_page(page, owner, make_app, settings):
    settings.PAAS_REQUIRE_MFA = True
    make_app("shop")
    password_step(page)

    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
    expect(page.get_by_text("must use two-factor sign-in")).to_be_visible()
    page.goto("/apps/shop/")
    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
    set_up_totp(page)
    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("link", name="shop", exact=True)).to_be_visible()


def test_a_member_of_a_team_that_requires_it_sets_it_up_then_sees_its_apps(
    page, owner, make_app, django_user_model
):
    boss = django_user_model.objects.create_user("bob", "bob@example.com", "pw-bob-123")
    acme = Team.objects.create(name="acme", require_mfa=True)
    Membership.objects.create(team=acme, user=boss, role=Role.OWNER)
    Membership.objects.create(team=acme, user=owner, role=Role.DEVELOPER)
    make_app("shop", team=acme)
    password_step(page)

    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
    expect(page.get_by_text("the team acme requires it")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/2fa/$"))
    set_up_totp(page)
    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("link", name="shop", exact=True)).to_be_visible()
    assert page.js_errors == []
