import pytest
from django.core.exceptions import ImproperlyConfigured

from paas.env import env_bool, env_int


@pytest.mark.parametrize(
    "raw, expected", [("true", True), ("1", True), ("False", False), ("off", False)]
)
def test_env_bool_reads_true_and_false_words(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG") is expected


def test_env_bool_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("X_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_FLAG")


def test_env_int_refuses_words(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_NUM", 1)


def test_tests_run_on_postgresql_and_redis():
    import redis
    from django.conf import settings
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).ping() is True
