import pytest
from django.db import connection

from apps.models import EnvVar

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-value-that-must-not-be-stored-plain"


def _raw(table, column, pk):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_env_values_are_encrypted_in_the_raw_column(make_app):
    env = make_app().environment("production")
    var = EnvVar.objects.create(environment=env, key="API_KEY", value=SECRET)
    raw = _raw("apps_envvar", "value", var.pk)
    assert SECRET not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    assert EnvVar.objects.get(pk=var.pk).value == SECRET


def test_webhook_secrets_are_encrypted_in_the_raw_column(make_app):
    app = make_app()
    raw = _raw("apps_app", "webhook_secret", app.pk)
    assert app.webhook_secret and app.webhook_secret not in raw


def test_the_masked_form_hides_the_value(make_app):
    env = make_app().environment("production")
    var = EnvVar.objects.create(environment=env, key="K", value=SECRET)
    assert SECRET not in str(var) and SECRET not in var.masked


def test_a_rotated_key_still_decrypts_old_values(make_app, settings):
    from cryptography.fernet import Fernet

    env = make_app().environment("production")
    var = EnvVar.objects.create(environment=env, key="K", value=SECRET)
    settings.PAAS_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.PAAS_ENCRYPTION_KEYS]
    assert EnvVar.objects.get(pk=var.pk).value == SECRET
