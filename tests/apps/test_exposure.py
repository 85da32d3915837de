"""What the dashboard exposes to someone guessing: sign-ins are rate-limited across
processes (the count lives in the shared Redis cache), the admin's login is no second way
in, and the page with the webhook secret is never cached."""

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _sign_in(client, password, login="alice"):
    return client.post(LOGIN, {"login": login, "password": password})


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_cache_is_the_shared_redis():
    assert isinstance(caches["default"], RedisCache)  # paas.cache's: Django's, its client kept
    assert cache._cache.get_client() is cache._cache.get_client()


def test_failures_from_two_processes_add_up_and_then_even_the_right_password_is_refused(owner):
    # Two clients stand for two gunicorn processes: only a shared cache counts them together.
    first, second = Client(), Client()
    for attempt in range(settings.PAAS_LOGIN_ATTEMPTS):
        client = first if attempt % 2 else second
        response = _sign_in(client, "wrong-password")
        assert response.status_code == 200 and not _signed_in(client), attempt
    third = Client()
    response = _sign_in(third, "pw-alice-123")
    assert not _signed_in(third)
    assert "Too many failed login attempts" in response.content.decode()
    # The count sits in Redis, where any other process reads it.
    redis = cache._cache.get_client()
    assert any(b"login_failed" in key for key in redis.scan_iter(match=f"{cache.key_prefix}:*"))


def test_a_right_password_below_the_limit_signs_in(owner):
    for _ in range(settings.PAAS_LOGIN_ATTEMPTS - 1):
        _sign_in(Client(), "wrong-password")
    client = Client()
    assert _sign_in(client, "pw-alice-123").status_code == 302
    assert _signed_in(client)


def test_the_limit_is_per_account_whatever_address_the_router_saw(owner, outsider):
    for n in range(settings.PAAS_LOGIN_ATTEMPTS):
        Client(headers={"X-Forwarded-For": f"203.0.113.{n}"}).post(
            LOGIN, {"login": "alice", "password": "wrong"}
        )
    late = Client(headers={"X-Forwarded-For": "198.51.100.7"})
    _sign_in(late, "pw-alice-123")
    assert not _signed_in(late)
    # Another account is not locked out by alice's guesser.
    other = Client(headers={"X-Forwarded-For": "198.51.100.7"})
    _sign_in(other, "pw-mallory-123", login="mallory")
    assert _signed_in(other)


def test_the_admin_login_is_allauths_and_so_is_its_limit(owner):
    response = Client().get("/admin/login/?next=/admin/apps/app/")
    assert response.status_code == 302
    assert response["Location"] == LOGIN + "?next=/admin/apps/app/"
    assert Client().get("/admin/")["Location"].startswith("/admin/login/")
    # Django's own admin login form takes no password at all.
    client = Client()
    client.post("/admin/login/", {"username": "alice", "password": "pw-alice-123"})
    assert not _signed_in(client)


def test_a_signed_in_user_who_is_not_staff_is_refused_not_looped(owner):
    client = Client()
    client.force_login(owner)
    assert client.get("/admin/login/?next=/admin/").status_code == 403


def test_the_settings_page_with_the_webhook_secret_is_never_cached(owner, make_app):
    make_app("hooked")
    client = Client()
    client.force_login(owner)
    response = client.get(reverse("app-settings", kwargs={"name": "hooked"}))
    assert response.status_code == 200
    assert "webhook-secret" in response.content.decode()
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control and "private" in cache_control
