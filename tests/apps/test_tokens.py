import pytest
from django.core.management import CommandError, call_command

from apps.models import ApiToken
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_paas_token_prints_a_token_that_authenticates(owner, capsys):
    call_command("paas_token", "alice")
    raw = capsys.readouterr().out.strip()
    assert raw.startswith("slw_")
    assert ApiClient(raw_token=raw).get("/apps").status_code == 200
    stored = ApiToken.objects.get()
    assert raw not in (stored.token_hash, stored.hint) and stored.last_used_at is not None


def test_paas_token_refuses_an_unknown_user():
    with pytest.raises(CommandError):
        call_command("paas_token", "nobody")


def test_a_deactivated_users_token_stops_working(owner):
    _, raw = ApiToken.issue(owner)
    owner.is_active = False
    owner.save()
    assert ApiClient(raw_token=raw).get("/apps").status_code == 401
