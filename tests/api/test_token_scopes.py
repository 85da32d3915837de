"""API token scopes and expiry.

Every operation in the generated OpenAPI document is called with a read-only token, on
real objects (the path_values of tests/api/conftest.py): each one that changes something
answers 403 read_only_token without a single write reaching the database; each GET answers
as it would to a read-write token. Then expiry, the rate-bounded last use, masked secrets,
bad input on every way to create a token, and the migration that made tokens scoped.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.api.schemas import MASKED
from apps.models import AddOn, ApiToken, NotificationTarget
from apps.models.tokens import MAX_LIFETIME, SAFE_METHODS, TokenScope, expiry_from
from tests.conftest import ApiClient
from tests.support import migrate

pytestmark = pytest.mark.django_db

# The document as the API serves it (reading it needs no database). Read at collection,
# before pytest-django lets the test client's "testserver" in, so as localhost.
DOCUMENT = Client(SERVER_NAME="localhost").get("/api/v1/openapi.json").json()
OPERATIONS = sorted(
    (method.upper(), path)
    for path, operations in DOCUMENT["paths"].items()
    for method in operations
)
WRITES = [op for op in OPERATIONS if op[0] not in SAFE_METHODS]
# The one GET that shows a stored secret as it is refuses a read-only token (403
# read_only_token, tests/apps/test_protected_env_vars.py); every other GET reads alike.
VALUE_READS = [("GET", "/apps/{name}/environments/{environment}/env/{key}")]
READS = [op for op in OPERATIONS if op[0] in SAFE_METHODS and op not in VALUE_READS]
WRITE_SQL = ("INSERT", "UPDATE", "DELETE")


def _ids(op) -> str:
    return " ".join(op)


def _token(user, scope=TokenScope.WRITE, **fields) -> tuple[ApiToken, ApiClient]:
    token, raw = ApiToken.issue(user, "t", scope=scope, **fields)
    return token, ApiClient(raw_token=raw)


def _call(client: ApiClient, method: str, path: str, path_values: dict):
    url = path.format(**path_values)
    if method == "GET":
        return client.get(url)
    return client._send(method.lower(), url, {})


def _writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(WRITE_SQL)]


def test_the_walk_covers_the_whole_api():
    # A document that lost its paths would make the walks below vacuous.
    assert len(WRITES) >= 40 and len(READS) >= 30
    assert {method for method, _ in WRITES} == {"POST", "PUT", "PATCH", "DELETE"}
    assert set(VALUE_READS) <= set(OPERATIONS)


@pytest.mark.parametrize("operation", WRITES, ids=_ids)
def test_a_read_only_token_is_refused_on_every_write(operation, owner, path_values):
    method, path = operation
    token, client = _token(owner, TokenScope.READ)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        response = _call(client, method, path, path_values)
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "read_only_token"
    assert _writes(queries.captured_queries) == []  # refused before anything ran
    documented = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert "403" in documented


@pytest.mark.parametrize("operation", READS, ids=_ids)
def test_a_read_only_token_reads_what_a_read_write_one_does(operation, owner, path_values):
    method, path = operation
    _, reader = _token(owner, TokenScope.READ)
    _, writer = _token(owner, TokenScope.WRITE)
    read = _call(reader, method, path, path_values)
    assert read.status_code in (200, 404), read.content
    assert read.status_code == _call(writer, method, path, path_values).status_code
    assert "403" not in DOCUMENT["paths"][path][method.lower()]["responses"]


def test_a_write_token_still_writes(owner, make_app):
    make_app("shop")
    _, client = _token(owner, TokenScope.WRITE)
    assert client.post("/apps/shop/stop", {"environment": "production"}).status_code != 403


# --- secrets ----------------------------------------------------------------------------


def test_a_read_only_token_never_sees_a_secret_value(owner, path_values):
    _, reader = _token(owner, TokenScope.READ)
    _, writer = _token(owner, TokenScope.WRITE)
    addon = AddOn.objects.get(pk=path_values["addon_id"])
    target = NotificationTarget.objects.get(pk=path_values["target_id"])
    addon_url = f"/apps/demo/addons/{addon.pk}?reveal=true"
    target_url = f"/apps/demo/notifications/{target.pk}"

    assert writer.get("/apps/demo/webhook").json()["secret"] == target.app.webhook_secret
    assert reader.get("/apps/demo/webhook").json()["secret"] is None
    assert writer.get(addon_url).json()["url"] == addon.connection_url()
    masked = reader.get(addon_url).json()["url"]
    assert addon.password not in masked and masked == addon.connection_url(password=MASKED)
    assert writer.get(target_url).json()["secret"] == target.secret
    assert reader.get(target_url).json()["secret"] == MASKED
    env_url = "/apps/demo/environments/production/env/GREETING"
    assert writer.get(env_url).json()["value"] == "hello"
    refused = reader.get(env_url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "read_only_token"
    assert "hello" not in refused.content.decode()


# --- expiry and last use ----------------------------------------------------------------


def test_a_token_that_expires_mid_use_is_refused_on_its_next_call(owner):
    token, client = _token(owner, expires_at=timezone.now() + timedelta(days=7))
    assert client.get("/apps").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = client.get("/apps")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_expired"
    assert "expired" in refused.json()["error"]["message"]
    assert client.headers["Authorization"].split()[1] not in refused.content.decode()


def test_unknown_and_revoked_tokens_are_refused_as_before(owner):
    token, client = _token(owner)
    token.delete()
    for refused in (client.get("/apps"), ApiClient(raw_token="slw_nope").get("/apps")):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthorized"


def test_last_use_is_written_at_most_once_a_minute(owner):
    token, client = _token(owner)
    client.get("/apps")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        client.get("/apps")
    token.refresh_from_db()
    assert token.last_used_at == first
    assert not [q for q in _writes(queries.captured_queries) if "apitoken" in q]
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get("/apps")
    token.refresh_from_db()
    assert token.last_used_at > first


# --- bad input: nothing created ---------------------------------------------------------


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"scope": "admin"}, "scope"),
        ({"name": "x" * 101}, "name"),
        ({"name": "   "}, "name"),
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, "expires_at"),
        ({"expires_at": timezone.now() + MAX_LIFETIME + timedelta(days=1)}, "expires_at"),
    ],
)
def test_a_bad_token_is_refused_and_nothing_is_created(owner, fields, field):
    fields = {"name": "ci", **fields}
    with pytest.raises(ValidationError) as refused:
        ApiToken.issue(owner, **fields)
    assert field in refused.value.error_dict
    assert not ApiToken.objects.exists()


def test_an_expiry_is_days_or_an_iso_date_time_with_its_zone():
    now = timezone.now()
    assert expiry_from("30", now) == expiry_from(30, now) == now + timedelta(days=30)
    assert expiry_from("never", now) is None and expiry_from(None, now) is None
    moment = expiry_from("2027-01-31T12:00:00+02:00", now)
    assert moment.isoformat() == "2027-01-31T12:00:00+02:00"
    for bad in ("2027-01-31T12:00:00", "tomorrow", "2027-13-01T00:00:00Z", "-3"):
        with pytest.raises(ValidationError):
            expiry_from(bad, now)


def test_the_command_issues_a_scoped_expiring_token(owner, capsys):
    call_command("paas_token", "alice", "--scope", "read", "--expires", "30")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get()
    assert token.scope == "read" and token.expires_at > timezone.now() + timedelta(days=29)
    assert ApiClient(raw_token=raw).post("/apps", {}).status_code == 403


@pytest.mark.parametrize(
    "args", [["--scope", "root"], ["--expires", "4000"], ["--expires", "2020-01-01T00:00Z"]]
)
def test_the_command_refuses_bad_input_and_creates_nothing(owner, args):
    with pytest.raises(CommandError):
        call_command("paas_token", "alice", *args)
    assert not ApiToken.objects.exists()


# --- the dashboard ----------------------------------------------------------------------


@pytest.fixture
def web(owner):
    client = Client()
    client.force_login(owner)
    return client


def test_the_dashboard_creates_a_scoped_expiring_token_and_lists_it(web, owner):
    page = web.post(reverse("settings-tokens"), {"name": "ci", "scope": "read", "expires_at": "7"})
    assert page.status_code == 200
    token = ApiToken.objects.get(user=owner)
    assert token.scope == "read"
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(days=7)
    ApiToken.issue(owner, "forever", scope="write")
    listing = web.get(reverse("settings-tokens")).content.decode()
    assert "Read-only" in listing and "Read and write" in listing
    assert token.expires_at.strftime("%Y-%m-%d") in listing
    assert listing.count(">never<") == 3  # the forever token's expiry, and both last uses


@pytest.mark.parametrize(
    "data",
    [
        {"name": "ci", "scope": "admin", "expires_at": "30"},
        {"name": "ci", "scope": "read", "expires_at": "9999"},
        {"name": "x" * 101, "scope": "read", "expires_at": "30"},
    ],
)
def test_the_dashboard_refuses_bad_input_and_creates_nothing(web, data):
    response = web.post(reverse("settings-tokens"), data)
    assert response.status_code == 400 and b"field-invalid" in response.content
    assert not ApiToken.objects.exists()


def test_the_admin_lists_scope_and_expiry(staff, owner):
    expires = timezone.now() + timedelta(days=30)
    ApiToken.issue(owner, "ci", scope=TokenScope.READ, expires_at=expires)
    client = Client()
    client.force_login(staff)
    page = client.get("/admin/apps/apitoken/").content.decode()
    assert "Read-only" in page and str(expires.year) in page and "column-expires_at" in page


# --- the migration ----------------------------------------------------------------------

BEFORE = [("apps", "0017_previews")]
AFTER = [("apps", "0018_token_scopes")]


@pytest.mark.django_db(transaction=True)
def test_existing_tokens_become_read_write_and_never_expire(owner, back_to_latest):
    old = migrate(BEFORE)
    old.get_model("apps", "ApiToken").objects.create(
        user_id=owner.pk, name="old", token_hash="a" * 64, hint="slw_aaaa"
    )
    new = migrate(AFTER)
    (token,) = new.get_model("apps", "ApiToken").objects.all()
    assert (token.name, token.scope, token.expires_at) == ("old", "write", None)
