"""Two-factor sign-in (allauth.mfa): set-up, the code after a password or a Git provider,
recovery codes, the operator's requirement, encryption at rest, bounded guessing, audit.

Real sign-ins through allauth's views, real Redis for the rate limits and the used-code
marks, real PostgreSQL; the TOTP code is computed here from the secret the page shows.
"""

import re
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.db import connection
from django.test import Client

from apps.models import AuditEntry
from apps.two_factor import requires_mfa
from paas import crypto
from tests.apps.test_providers import gitlab_signin, oauth_round_trip  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PERIOD = 30
SIGN_IN_STEP = "/accounts/2fa/authenticate/"


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """What an authenticator app shows now (or that many 30 s steps later; the server
    accepts one step either side)."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // PERIOD + steps_ahead))


def wrong_codes(secret: str, count: int) -> list[str]:
    """Codes the server refuses now: none of those of the steps it accepts."""
    accepted = {totp_code(secret, step) for step in (-1, 0, 1)}
    return [code for code in (f"{n:06d}" for n in range(count + 3)) if code not in accepted][:count]


def with_totp(user, secret: str = SECRET) -> list[str]:
    """Give a user an authenticator app (as the set-up page does); their recovery codes."""
    TOTP.activate(user, secret)
    return RecoveryCodes.activate(user).generate_codes()


def password_step(client: Client, login="alice", password="pw-alice-123"):
    return client.post("/accounts/login/", {"login": login, "password": password})


def reauthenticate(client: Client, password="pw-alice-123"):
    """allauth asks for the password again before 2FA is changed (a fresh sign-in does not
    count: someone at an unlocked session could otherwise turn it off)."""
    answer = client.post("/accounts/reauthenticate/", {"password": password})
    assert answer.status_code == 302, answer.content.decode()[:300]


def code_step(client: Client, code: str):
    return client.post(SIGN_IN_STEP, {"code": code})


def signed_in_user(client: Client):
    return client.get("/settings/tokens/").wsgi_request.user


def raw_authenticator_data(user) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT data::text FROM mfa_authenticator WHERE user_id = %s", [user.pk])
        return " ".join(row[0] for row in cursor.fetchall())


def audit_actions() -> list[tuple[str, str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("action", "target", "actor_name"))


# --- Set-up -------------------------------------------------------------------------------


def test_the_set_up_page_shows_a_secret_and_a_right_code_activates_it(
    client, owner, django_capture_on_commit_callbacks
):
    password_step(client)
    reauthenticate(client)
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    html = page.content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', html).group(1)
    assert 'src="data:image/svg+xml;base64,' in html  # the QR code, made on the server

    with django_capture_on_commit_callbacks(execute=True):  # allauth signals on commit
        done = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})

    assert done.status_code == 302 and done["Location"] == "/accounts/2fa/recovery-codes/"
    totp = Authenticator.objects.get(user=owner, type=Authenticator.Type.TOTP)
    assert crypto.decrypt(totp.data["secret"]) == secret
    assert Authenticator.objects.filter(user=owner, type="recovery_codes").exists()
    assert ("account.mfa_added", "totp", "alice") in audit_actions()
    codes = client.get("/accounts/2fa/recovery-codes/")
    assert len(re.findall(r"<li><code>\d{8}</code></li>", codes.content.decode())) == 10


def test_a_wrong_code_does_not_activate_the_app(client, owner):
    password_step(client)
    reauthenticate(client)
    client.get("/accounts/2fa/totp/activate/")
    secret = client.session["mfa.totp.secret"]  # the one the page shows
    refused = client.post("/accounts/2fa/totp/activate/", {"code": wrong_codes(secret, 1)[0]})
    assert refused.status_code == 200 and "Incorrect code" in refused.content.decode()
    assert not Authenticator.objects.filter(user=owner).exists()
    assert audit_actions() == []


def test_a_user_whose_email_is_unverified_may_still_set_it_up(client, owner):
    # E-mail verification is off, so every signed-up address stays unverified.
    owner.emailaddress_set.create(email=owner.email, verified=False, primary=True)
    password_step(client)
    reauthenticate(client)
    client.get("/accounts/2fa/totp/activate/")
    secret = client.session["mfa.totp.secret"]
    client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert Authenticator.objects.filter(user=owner, type="totp").exists()


# --- Sign-in ------------------------------------------------------------------------------


def test_a_password_sign_in_then_asks_for_the_code(owner):
    with_totp(owner)
    client = Client()
    first = password_step(client)
    assert first.status_code == 302 and first["Location"] == SIGN_IN_STEP
    assert not signed_in_user(client).is_authenticated
    assert "Two-factor sign-in" in client.get(SIGN_IN_STEP).content.decode()

    second = code_step(client, totp_code(SECRET))

    assert second.status_code == 302 and signed_in_user(client) == owner
    assert ("account.mfa_sign_in", "totp", "alice") in audit_actions()


def test_a_wrong_code_is_refused_and_signs_nobody_in(owner):
    with_totp(owner)
    client = Client()
    password_step(client)
    refused = code_step(client, wrong_codes(SECRET, 1)[0])
    assert refused.status_code == 200 and "Incorrect code" in refused.content.decode()
    assert not signed_in_user(client).is_authenticated
    assert audit_actions() == []


def test_a_code_already_used_is_refused(owner):
    with_totp(owner)
    code = totp_code(SECRET)
    first = Client()
    password_step(first)
    code_step(first, code)
    second = Client()
    password_step(second)
    assert code_step(second, code).status_code == 200
    assert not signed_in_user(second).is_authenticated


def test_a_recovery_code_signs_in_once_and_only_once(owner):
    code = with_totp(owner)[3]
    client = Client()
    password_step(client)
    assert code_step(client, code).status_code == 302 and signed_in_user(client) == owner
    assert ("account.mfa_sign_in", "recovery_codes", "alice") in audit_actions()

    client.post("/accounts/logout/")
    password_step(client)
    again = code_step(client, code)
    assert again.status_code == 200 and "Incorrect code" in again.content.decode()
    assert not signed_in_user(client).is_authenticated
    codes = Authenticator.objects.get(user=owner, type="recovery_codes").wrap()
    assert code not in codes.get_unused_codes() and len(codes.get_unused_codes()) == 9


def test_the_code_page_loads_the_webauthn_scripts_from_slipways_own_static_files(owner):
    with_totp(owner)
    client = Client()
    password_step(client)
    html = client.get(SIGN_IN_STEP).content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert any("/mfa/js/webauthn" in src for src in scripts)
    for src in scripts:  # no CDN: every one is ours, served by whitenoise
        assert src.startswith("/static/")
        answer = client.get(src)
        assert answer.status_code == 200, src
        answer.close()


def test_a_git_provider_sign_in_asks_for_the_code_too(gitlab_signin, owner):  # noqa: F811
    client = Client()
    password_step(client)
    oauth_round_trip(client, gitlab_signin, "connect")
    client.post("/accounts/logout/")
    with_totp(owner)

    back = oauth_round_trip(client, gitlab_signin, "login")

    assert back.status_code == 302 and back["Location"] == SIGN_IN_STEP
    assert not signed_in_user(client).is_authenticated
    assert code_step(client, totp_code(SECRET)).status_code == 302
    assert signed_in_user(client) == owner


# --- Bounded guessing ---------------------------------------------------------------------


def test_code_guesses_are_bounded_per_account_and_then_even_the_right_code_waits(owner, settings):
    with_totp(owner)
    client = Client()
    password_step(client)
    right = totp_code(SECRET)
    for guess in wrong_codes(SECRET, settings.PAAS_LOGIN_ATTEMPTS):
        assert "Incorrect code" in code_step(client, guess).content.decode()

    refused = code_step(client, right)

    assert refused.status_code == 200 and "Too many failed" in refused.content.decode()
    assert not signed_in_user(client).is_authenticated
    # Another client (a fresh session, the same account) is refused as well: the count is
    # the account's, in Redis, not the session's.
    other = Client()
    password_step(other)
    assert "Too many failed" in code_step(other, right).content.decode()


# --- Secrets at rest ----------------------------------------------------------------------


def test_the_totp_secret_and_the_recovery_codes_are_encrypted_at_rest(owner):
    codes = with_totp(owner)
    raw = raw_authenticator_data(owner)
    seed = crypto.decrypt(Authenticator.objects.get(type="recovery_codes").data["seed"])
    assert SECRET not in raw and seed not in raw
    assert not any(code in raw for code in codes)
    assert raw.count('"gAAAAA') == 2  # Fernet tokens, one for each


# --- The operator's requirement -----------------------------------------------------------


def test_requires_mfa_follows_the_two_switches(owner, staff, settings):
    assert not requires_mfa(owner) and not requires_mfa(staff)
    settings.PAAS_REQUIRE_MFA_FOR_STAFF = True
    assert requires_mfa(staff) and not requires_mfa(owner)
    settings.PAAS_REQUIRE_MFA = True
    assert requires_mfa(owner)


def test_a_user_who_must_and_has_none_is_sent_to_set_it_up_before_any_app(
    client, owner, make_app, settings
):
    settings.PAAS_REQUIRE_MFA = True
    make_app("shop")
    password_step(client)
    reauthenticate(client)

    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/accounts/2fa/"
    assert client.get("/apps/shop/").status_code == 302
    polled = client.get("/partials/apps/", headers={"HX-Request": "true"})
    assert polled["HX-Redirect"] == "/accounts/2fa/" and b"shop" not in polled.content
    security = client.get("/accounts/2fa/")
    assert security.status_code == 200 and "must use two-factor" in security.content.decode()
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200


def test_once_set_up_the_dashboard_opens(client, owner, make_app, settings):
    settings.PAAS_REQUIRE_MFA = True
    make_app("shop")
    with_totp(owner)
    client.force_login(owner)
    home = client.get("/")
    assert home.status_code == 200 and b"shop" in home.content


def test_staff_who_must_cannot_reach_the_admin_without_it_but_others_are_free(
    client, owner, staff, settings
):
    settings.PAAS_REQUIRE_MFA_FOR_STAFF = True
    client.force_login(staff)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/")["Location"] == "/accounts/2fa/"
    other = Client()
    other.force_login(owner)
    assert other.get("/").status_code == 200


def test_the_api_refuses_their_bearer_token_until_they_set_it_up(api, owner, make_app, settings):
    settings.PAAS_REQUIRE_MFA = True
    make_app("shop")
    refused = api.get("/apps")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "mfa_required"
    with_totp(owner)
    answer = api.get("/apps")
    assert answer.status_code == 200 and [a["name"] for a in answer.json()["apps"]] == ["shop"]


# --- Turning it off -----------------------------------------------------------------------


def test_deactivating_the_app_removes_it_and_its_recovery_codes_and_is_audited(owner):
    with_totp(owner)
    client = Client()
    password_step(client)
    code_step(client, totp_code(SECRET))
    reauthenticate(client)

    done = client.post("/accounts/2fa/totp/deactivate/")

    assert done.status_code == 302 and not Authenticator.objects.filter(user=owner).exists()
    removed = [entry for entry in audit_actions() if entry[0] == "account.mfa_removed"]
    assert removed == [
        ("account.mfa_removed", "totp", "alice"),
        ("account.mfa_removed", "recovery_codes", "alice"),
    ]


def test_new_recovery_codes_replace_the_old_ones_and_are_audited(
    owner, django_capture_on_commit_callbacks
):
    old = with_totp(owner)
    client = Client()
    password_step(client)
    code_step(client, totp_code(SECRET))
    reauthenticate(client)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/accounts/2fa/recovery-codes/generate/")

    assert done.status_code == 302
    new = Authenticator.objects.get(user=owner, type="recovery_codes").wrap().get_unused_codes()
    assert len(new) == 10 and not set(new) & set(old)
    assert ("account.mfa_reset", "recovery_codes", "alice") in audit_actions()
