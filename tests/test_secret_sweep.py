"""The suite-wide sweep (tests/conftest.py): after every test, no stored env value that
looks like a secret may appear in a deployment log or the audit log. Here it is shown to
find one, so a green suite means the sweep looked."""

import pytest

from apps.models import AuditEntry
from deployments import services
from tests.conftest import _leaked

pytestmark = pytest.mark.django_db

SECRET = "sweep-finds-this-0123456789"


def test_the_sweep_finds_a_secret_in_a_deployment_log_and_in_the_audit_log(make_app):
    app = make_app("sweep")
    services.set_env_vars(app.environment("production"), {"TOKEN": SECRET})
    deployment = app.new_deployment(app.environment("production"))
    assert _leaked([SECRET]) == []
    deployment.log(f"token is {SECRET}")
    AuditEntry.record("test.leak", app, target=SECRET)
    assert _leaked([SECRET]) == ["a deployment log", "the audit log"]
    deployment.log_lines.all().delete()
    AuditEntry.objects.filter(action="test.leak").delete()  # or this test would fail the sweep
