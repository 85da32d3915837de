"""Sessions (paas/sessions.py): the session table with Redis in front. A signed-in request
reads its session from the cache; signing out ends it in both; with Redis away, the table
answers alone and nobody is signed out (signing in needs Redis all the same: the sign-in
limits count there, apps/accounts). Real PostgreSQL and Redis."""

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client

from paas.sessions import SessionStore

pytestmark = pytest.mark.django_db

LOGIN, LOGOUT = "/accounts/login/", "/accounts/logout/"
AWAY = {"default": {"BACKEND": "paas.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}


def _signed_in_client(owner) -> Client:
    client = Client()
    response = client.post(LOGIN, {"login": owner.username, "password": "pw-alice-123"})
    assert response.status_code == 302, response.content[:500]
    return client


def _key(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_a_session_is_in_the_table_and_in_the_cache(owner):
    client = _signed_in_client(owner)
    key = _key(client)
    assert Session.objects.filter(session_key=key).exists()
    assert cache.get(SessionStore.cache_key_prefix + key)["_auth_user_id"] == str(owner.pk)
    assert client.get("/").status_code == 200


def test_signing_out_ends_it_in_both_and_the_cookie_opens_nothing(owner):
    client = _signed_in_client(owner)
    key = _key(client)
    assert client.post(LOGOUT).status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert cache.get(SessionStore.cache_key_prefix + key) is None
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    assert replay.get("/").status_code == 302  # to the sign-in page


def test_with_redis_away_a_signed_in_user_stays_signed_in(owner, settings):
    client = _signed_in_client(owner)
    settings.CACHES = AWAY  # nothing listens on port 1
    page = client.get("/")
    assert page.status_code == 200 and owner.username in page.content.decode()
