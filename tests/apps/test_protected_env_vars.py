"""Protected env vars: the team's admins and owners alone see, set, remove and mark them;
developers do all that to unprotected ones and get a 403 naming the key for a protected
one, with nothing changed; viewers see no value at all (404, as a user of another team).
Through the dashboard and the API alike (apps/access.py's may_touch_env_var, enforced by
the services), audited by key, never by value; copies (a new environment, a preview) keep
the mark."""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.models import ApiToken, AuditEntry, Membership, Preview, Role
from apps.models.tokens import TokenScope
from deployments import services
from deployments.services import environments
from tests.apps.test_team_access import OUTSIDER, ROLES
from tests.conftest import ApiClient
from tests.deployments.test_previews import pr_payload, send_pr

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
PLAIN, VAULT = "PLAIN", "VAULT"
VALUES = {PLAIN: "plain-value-123", VAULT: "vault-secret-value"}
NEW_VALUE = "changed-value-456"
EVERYONE = [*ROLES, OUTSIDER]
KEYS = [PLAIN, VAULT]


@pytest.fixture
def vault(make_app):
    """An app with one unprotected and one protected var in production."""
    app = make_app("vault", previews_enabled=True)
    production = app.environment("production")
    services.set_env_vars(production, {PLAIN: VALUES[PLAIN]})
    services.set_env_vars(
        production, {VAULT: VALUES[VAULT]}, protect=True, may_touch_protected=True
    )
    return app


@pytest.fixture
def user_for(vault, owner, outsider, django_user_model):
    """user_for(role): the app's owner, a new member with that role, or the outsider."""

    def make(role: str):
        if role == Role.OWNER:
            return owner
        if role == OUTSIDER:
            return outsider
        user = django_user_model.objects.create_user(f"m-{role}", "", "pw-member-123")
        Membership.objects.create(team=vault.team, user=user, role=role)
        return user

    return make


def expected(role: str, protected: bool) -> int:
    """What a role gets for a var: 404 if it may see no value at all, 403 if protected."""
    if role not in (Role.OWNER, Role.ADMIN, Role.DEVELOPER):
        return 404
    return 403 if protected and role == Role.DEVELOPER else 200


def state(app) -> dict:
    """Everything a refused request could change: the vars (values and marks), the app's
    settings, and the audit log."""
    app.refresh_from_db()
    env_vars = {v.key: (v.value, v.protected) for v in app.environment("production").env_vars.all()}
    return {"vars": env_vars, "branch": app.branch, "audit": AuditEntry.objects.count()}


def var_of(app, key: str):
    return app.environment("production").env_vars.filter(key=key).first()


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_for(user, app, scope=TokenScope.WRITE) -> ApiClient:
    team = app.team if Membership.objects.filter(team=app.team, user=user).exists() else None
    _, raw = ApiToken.issue(user, scope=scope, team=team)
    return ApiClient(raw_token=raw)


def _url(name: str, key: str | None = None) -> str:
    args = ["vault", "production"] + ([key] if key else [])
    return reverse(name, args=args)


def assert_refused(response, before, app, status: int, key: str) -> None:
    """A refusal: the status, the key named when it is a 403, no value shown, no change."""
    body = response.content.decode()
    assert response.status_code == status, body[:300]
    if status == 403:
        assert key in body
    assert all(value not in body for value in VALUES.values())
    assert state(app) == before


# --- the dashboard -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_revealing_in_the_dashboard(vault, user_for, role, key):
    before = state(vault)
    response = browser(user_for(role)).get(_url("app-env-reveal", key), headers=HX)
    status = expected(role, key == VAULT)
    if status == 200:
        assert response.status_code == 200
        assert VALUES[key] in response.content.decode()
        return
    assert_refused(response, before, vault, status, key)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_setting_in_the_dashboard(vault, user_for, role, key):
    before = state(vault)
    post = {"key": key, "value": NEW_VALUE}
    response = browser(user_for(role)).post(_url("app-env-set"), post, headers=HX)
    status = expected(role, key == VAULT)
    if status == 200:
        assert response.status_code == 200
        assert var_of(vault, key).value == NEW_VALUE
        assert var_of(vault, key).protected == (key == VAULT)  # the mark stays
        return
    assert_refused(response, before, vault, status, key)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_removing_in_the_dashboard(vault, user_for, role, key):
    before = state(vault)
    response = browser(user_for(role)).post(_url("app-env-delete", key), headers=HX)
    status = expected(role, key == VAULT)
    if status == 200:
        assert response.status_code == 200
        assert var_of(vault, key) is None
        return
    assert_refused(response, before, vault, status, key)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_marking_in_the_dashboard_is_for_admins_and_owners(vault, user_for, role, key):
    """Ticking PLAIN protected, or unticking VAULT: a developer is told 403 for either."""
    before = state(vault)
    post = {} if key == VAULT else {"protected": "on"}
    response = browser(user_for(role)).post(_url("app-env-protect", key), post, headers=HX)
    status = expected(role, protected=True)
    if status == 200:
        assert response.status_code == 200
        assert var_of(vault, key).protected == (key == PLAIN)
        assert var_of(vault, key).value == VALUES[key]
        return
    assert_refused(response, before, vault, status, key)


def test_nobody_signed_in_is_sent_to_sign_in(vault):
    before = state(vault)
    nobody = Client()
    for response in (
        nobody.get(_url("app-env-reveal", VAULT)),
        nobody.post(_url("app-env-set"), {"key": VAULT, "value": NEW_VALUE}),
        nobody.post(_url("app-env-delete", VAULT)),
        nobody.post(_url("app-env-protect", PLAIN), {"protected": "on"}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    assert state(vault) == before


def test_a_developers_paste_with_one_protected_key_changes_nothing(vault, user_for):
    before = state(vault)
    developer = browser(user_for(Role.DEVELOPER))
    bulk = f"NEW_ONE=1\n{PLAIN}={NEW_VALUE}\n{VAULT}={NEW_VALUE}\n"
    response = developer.post(_url("app-env-set"), {"bulk": bulk}, headers=HX)
    assert_refused(response, before, vault, 403, VAULT)
    assert "Nothing was changed" in response.content.decode()
    # Without htmx: the settings page, with the same 403 and message.
    page = developer.post(_url("app-env-set"), {"bulk": bulk})
    assert_refused(page, before, vault, 403, VAULT)
    assert "only the team&#x27;s admins and owners" in page.content.decode()


def test_the_protected_box_marks_what_an_admin_adds_and_is_refused_to_a_developer(vault, user_for):
    post = {"key": "NEW_SECRET", "value": NEW_VALUE, "protected": "on"}
    refused = browser(user_for(Role.DEVELOPER)).post(_url("app-env-set"), post, headers=HX)
    assert refused.status_code == 403 and "NEW_SECRET" in refused.content.decode()
    assert var_of(vault, "NEW_SECRET") is None
    saved = browser(user_for(Role.ADMIN)).post(_url("app-env-set"), post, headers=HX)
    assert saved.status_code == 200
    assert var_of(vault, "NEW_SECRET").protected


def test_the_page_offers_each_role_only_what_it_may(vault, user_for):
    reveal, remove = (_url(name, VAULT) for name in ("app-env-reveal", "app-env-delete"))
    developer_page = browser(user_for(Role.DEVELOPER)).get(reverse("app-settings", args=["vault"]))
    body = developer_page.content.decode()
    assert _url("app-env-reveal", PLAIN) in body and reveal not in body and remove not in body
    assert "protected</span>" in body and "app-env-protect" not in body
    assert 'name="protected"' not in body and "Protect " not in body
    admin_body = browser(user_for(Role.ADMIN)).get(reverse("app-settings", args=["vault"]))
    admin_body = admin_body.content.decode()
    assert (
        reveal in admin_body
        and remove in admin_body
        and _url("app-env-protect", PLAIN) in (admin_body)
    )
    assert 'name="protected"' in admin_body and "Unprotect" in admin_body
    assert all(value not in body + admin_body for value in VALUES.values())


def test_a_superuser_sets_unprotected_vars_but_never_reads_a_value_or_touches_protected(vault):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = browser(root)
    assert client.get(_url("app-env-reveal", PLAIN), headers=HX).status_code == 404
    before = state(vault)
    refused = client.post(_url("app-env-set"), {"key": VAULT, "value": NEW_VALUE}, headers=HX)
    assert_refused(refused, before, vault, 403, VAULT)
    marked = client.post(_url("app-env-protect", PLAIN), {"protected": "on"}, headers=HX)
    assert_refused(marked, before, vault, 403, PLAIN)
    saved = client.post(_url("app-env-set"), {"key": PLAIN, "value": NEW_VALUE}, headers=HX)
    assert saved.status_code == 200 and var_of(vault, PLAIN).value == NEW_VALUE


# --- the API -----------------------------------------------------------------------------------

ENV = "/apps/vault/environments/production/env"


@pytest.mark.parametrize("role", EVERYONE)
def test_listing_shows_keys_and_marks_to_every_member_never_a_value(vault, user_for, role):
    response = api_for(user_for(role), vault).get(ENV)
    if role == OUTSIDER:
        assert response.status_code == 404
        return
    assert response.status_code == 200
    listed = {v["key"]: v for v in response.json()["vars"]}
    assert {k: v["protected"] for k, v in listed.items()} == {PLAIN: False, VAULT: True}
    assert set(listed[VAULT]) == {"key", "protected", "not_for_previews", "updated_at"}
    assert all(value not in response.content.decode() for value in VALUES.values())


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_revealing_through_the_api(vault, user_for, role, key):
    before = state(vault)
    response = api_for(user_for(role), vault).get(f"{ENV}/{key}")
    status = expected(role, key == VAULT)
    if status == 200:
        assert response.json() == {"key": key, "value": VALUES[key], "protected": key == VAULT}
        return
    assert_refused(response, before, vault, status, key)
    code = {403: "protected_env_var", 404: "not_found"}[status]
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_setting_through_the_api(vault, user_for, role, key):
    before = state(vault)
    response = api_for(user_for(role), vault).put_json(f"{ENV}/{key}", {"value": NEW_VALUE})
    status = expected(role, key == VAULT)
    if status == 200:
        assert response.json()["protected"] == (key == VAULT)
        assert NEW_VALUE not in response.content.decode()
        assert var_of(vault, key).value == NEW_VALUE
        return
    assert_refused(response, before, vault, status, key)
    if status == 403:
        assert response.json()["error"]["code"] == "protected_env_var"
        assert response.json()["error"]["fields"].keys() == {key}


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_removing_through_the_api(vault, user_for, role, key):
    before = state(vault)
    response = api_for(user_for(role), vault).delete(f"{ENV}/{key}")
    status = expected(role, key == VAULT)
    if status == 200:
        assert response.status_code == 204 and var_of(vault, key) is None
        return
    assert_refused(response, before, vault, status, key)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("role", EVERYONE)
def test_marking_through_the_api_is_for_admins_and_owners(vault, user_for, role, key):
    before = state(vault)
    mark = key == PLAIN
    response = api_for(user_for(role), vault).patch(f"{ENV}/{key}", {"protected": mark})
    status = expected(role, protected=True)
    if status == 200:
        assert response.json()["protected"] is mark and var_of(vault, key).protected is mark
        return
    assert_refused(response, before, vault, status, key)


def test_no_token_is_401_and_changes_nothing(vault):
    before = state(vault)
    nobody = ApiClient()
    for response in (
        nobody.get(ENV),
        nobody.get(f"{ENV}/{VAULT}"),
        nobody.put_json(f"{ENV}/{VAULT}", {"value": NEW_VALUE}),
        nobody.patch(f"{ENV}/{VAULT}", {"protected": False}),
        nobody.delete(f"{ENV}/{VAULT}"),
    ):
        assert response.status_code == 401
    assert state(vault) == before


def test_a_read_only_token_sees_no_value_even_its_owners(vault, owner):
    response = api_for(owner, vault, scope=TokenScope.READ).get(f"{ENV}/{VAULT}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_token"
    assert VALUES[VAULT] not in response.content.decode()


def test_a_developer_may_not_make_a_new_var_protected(vault, user_for):
    before = state(vault)
    api = api_for(user_for(Role.DEVELOPER), vault)
    response = api.put_json(f"{ENV}/NEW_ONE", {"value": NEW_VALUE, "protected": True})
    assert_refused(response, before, vault, 403, "NEW_ONE")
    unmarked = api.put_json(f"{ENV}/NEW_ONE", {"value": NEW_VALUE, "protected": False})
    assert unmarked.status_code == 200 and not var_of(vault, "NEW_ONE").protected


def test_bad_keys_and_values_are_clear_errors(vault, owner):
    api = api_for(owner, vault)
    before = state(vault)
    assert api.get(f"{ENV}/1BAD").status_code == 404
    bad_value = api.put_json(f"{ENV}/GOOD", {"value": "a\x00b"})
    assert bad_value.status_code == 400 and "value" in bad_value.json()["error"]["fields"]
    assert api.put_json(f"{ENV}/1BAD", {"value": "x"}).json()["error"]["fields"].keys() == {"key"}
    assert state(vault) == before


def test_a_developers_app_patch_with_one_protected_key_changes_nothing_at_all(vault, user_for):
    before = state(vault)
    api = api_for(user_for(Role.DEVELOPER), vault)
    patch = {"branch": "elsewhere", "env": {"production": {PLAIN: NEW_VALUE, VAULT: NEW_VALUE}}}
    response = api.patch("/apps/vault", patch)
    assert_refused(response, before, vault, 403, VAULT)  # not the branch, not PLAIN either
    assert response.json()["error"]["code"] == "protected_env_var"
    fine = api.patch("/apps/vault", {"env": {"production": {PLAIN: NEW_VALUE}}})
    assert fine.status_code == 200 and var_of(vault, PLAIN).value == NEW_VALUE


# --- audit and logs ----------------------------------------------------------------------------


def test_the_audit_log_records_keys_and_marks_never_values(vault, user_for, caplog):
    caplog.set_level(logging.DEBUG)
    admin = browser(user_for(Role.ADMIN))
    developer = browser(user_for(Role.DEVELOPER))
    start = AuditEntry.objects.count()
    developer.post(_url("app-env-set"), {"key": VAULT, "value": NEW_VALUE}, headers=HX)
    assert AuditEntry.objects.count() == start  # a refusal records nothing
    admin.post(_url("app-env-set"), {"key": VAULT, "value": NEW_VALUE}, headers=HX)
    admin.post(_url("app-env-protect", PLAIN), {"protected": "on"}, headers=HX)
    admin.post(_url("app-env-delete", VAULT), headers=HX)
    entries = list(AuditEntry.objects.order_by("pk")[start:])
    assert [(e.action, e.target, e.details) for e in entries] == [
        ("env.set", "production", {"keys": [VAULT], "replace": False}),
        ("env.protect", "production", {"key": PLAIN, "protected": True}),
        ("env.delete", "production", {"key": VAULT}),
    ]
    assert {e.actor_role for e in entries} == {Role.ADMIN}
    recorded = " ".join(f"{e.target} {e.details}" for e in AuditEntry.objects.all())
    logged = caplog.text
    for value in [*VALUES.values(), NEW_VALUE]:
        assert value not in recorded and value not in logged


# --- copies keep the mark ----------------------------------------------------------------------


def test_an_environment_copied_from_another_keeps_its_protected_vars_protected(vault, user_for):
    environments.create_environment(vault, "dev", copy_env_from="production")
    dev = vault.environment("dev")
    assert {v.key: v.protected for v in dev.env_vars.all()} == {PLAIN: False, VAULT: True}
    reveal = reverse("app-env-reveal", args=["vault", "dev", VAULT])
    assert browser(user_for(Role.DEVELOPER)).get(reveal, headers=HX).status_code == 403


def test_a_preview_keeps_the_template_vars_marks(vault):
    assert send_pr("github", vault, pr_payload("github", number=5)).status_code == 202
    preview = Preview.objects.get(app=vault, number=5).environment
    assert {v.key: v.protected for v in preview.env_vars.all()} == {PLAIN: False, VAULT: True}
