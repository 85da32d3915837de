import os
import subprocess
import sys

import pytest
import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from paas.env import env_bool, env_choice, env_float, env_int, env_map


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


@pytest.mark.parametrize(
    "raw, expected", [("swarm", "swarm"), (" Docker ", "docker"), ("", "docker")]
)
def test_env_choice_reads_a_choice_and_falls_back_when_empty(monkeypatch, raw, expected):
    monkeypatch.setenv("X_RUNTIME", raw)
    assert env_choice("X_RUNTIME", ("docker", "swarm"), "docker") == expected


def test_env_choice_refuses_anything_else_and_names_the_choices(monkeypatch):
    monkeypatch.setenv("X_RUNTIME", "kubernetes")
    with pytest.raises(ImproperlyConfigured, match="X_RUNTIME must be one of docker, swarm"):
        env_choice("X_RUNTIME", ("docker", "swarm"), "docker")


def test_env_int_refuses_words(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_NUM", 1)


@pytest.mark.parametrize("raw, expected", [("0.5", 0.5), ("8", 8.0), ("", 2.5)])
def test_env_float_reads_numbers_and_falls_back_when_empty(monkeypatch, raw, expected):
    monkeypatch.setenv("X_NUM", raw)
    assert env_float("X_NUM", 2.5) == expected


@pytest.mark.parametrize("raw", ["ten", "1,5", "nan", "inf"])
def test_env_float_refuses_anything_else_and_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("X_NUM", raw)
    with pytest.raises(ImproperlyConfigured, match="X_NUM"):
        env_float("X_NUM", 1.0)


def test_env_map_reads_key_value_pairs_and_falls_back_when_empty(monkeypatch):
    monkeypatch.setenv("X_ENGINES", " node2=ssh://root@10.0.0.2 , node3=unix:///run/n3.sock ")
    assert env_map("X_ENGINES", {}) == {
        "node2": "ssh://root@10.0.0.2",
        "node3": "unix:///run/n3.sock",
    }
    monkeypatch.setenv("X_ENGINES", " ")
    assert env_map("X_ENGINES", {"a": "b"}) == {"a": "b"}


@pytest.mark.parametrize("raw", ["node2", "node2=", "=ssh://x", "a=1,a=2", "a=1,,b=2"])
def test_env_map_refuses_a_malformed_pair_and_names_it(monkeypatch, raw):
    monkeypatch.setenv("X_ENGINES", raw)
    with pytest.raises(ImproperlyConfigured, match="X_ENGINES must be key=value pairs"):
        env_map("X_ENGINES", {})


def test_tests_run_on_postgresql_and_redis():
    assert connection.vendor == "postgresql"
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).ping() is True


def test_a_heartbeat_timeout_one_late_beat_could_pass_is_refused():
    env = {**os.environ, "PAAS_HEARTBEAT_SECONDS": "2", "PAAS_HEARTBEAT_TIMEOUT": "5"}
    loaded = subprocess.run(
        [sys.executable, "-c", "import paas.settings"], env=env, capture_output=True, text=True
    )
    assert loaded.returncode != 0
    assert "PAAS_HEARTBEAT_TIMEOUT must be at least 3 × PAAS_HEARTBEAT_SECONDS" in loaded.stderr
