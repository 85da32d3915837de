"""Shared fixtures: an owner, a teammate-less outsider and a staff operator, with API clients.

Tests run against the real PostgreSQL and Redis that scripts/services starts; a missing
service is an error, never a skip.
"""

import json

import pytest
from django.test import Client

from apps.models import ApiToken


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw-alice-123")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("mallory", "mallory@example.com", "pw-mallory-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "operator", "ops@example.com", "pw-ops-123", is_staff=True, is_superuser=True
    )


class ApiClient:
    """A Django test client that speaks JSON with a bearer token."""

    def __init__(self, user=None, raw_token=None):
        self.client = Client()
        if raw_token is None and user is not None:
            _, raw_token = ApiToken.issue(user)
        self.headers = {"Authorization": f"Bearer {raw_token}"} if raw_token else {}

    def _send(self, method, path, body=None, **extra):
        data = json.dumps(body) if body is not None else ""
        return getattr(self.client, method)(
            "/api/v1" + path, data=data, content_type="application/json", headers=self.headers, **extra
        )

    def get(self, path, **extra):
        return self.client.get("/api/v1" + path, headers=self.headers, **extra)

    def post(self, path, body=None):
        return self._send("post", path, body)

    def patch(self, path, body=None):
        return self._send("patch", path, body)

    def delete(self, path):
        return self._send("delete", path)


@pytest.fixture
def api(owner):
    return ApiClient(owner)


@pytest.fixture
def outsider_api(outsider):
    return ApiClient(outsider)


@pytest.fixture
def make_app(owner):
    """Create an app straight through the model (no deployment, no worker)."""
    from apps.models import App

    def make(name="demo", user=None, **fields):
        fields.setdefault("repository", "https://example.com/acme/demo.git")
        return App.objects.create(name=name, owner=user or owner, **fields)

    return make
