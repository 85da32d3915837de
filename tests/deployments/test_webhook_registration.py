"""Slipway registers the push webhook on the provider for apps made from its repositories,
and removes it when the app is deleted — against a fake forge on loopback."""

import pytest

from apps.models import App
from deployments import wiring
from deployments.services.webhooks import webhook_url
from deployments.workers.cleanup import cleanup_app
from deployments.workers.webhook_registration import register
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def public_url(settings):
    settings.PAAS_PUBLIC_URL = "https://paas.example.com"


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_it_registers_and_removes_the_hook(kind, forge, connect, owner, public_url):
    fake = forge(kind)
    fake.add_repo("acme/shop", updated=None)
    connect(fake)
    app = App.objects.create(name="shop", owner=owner, repository=f"{fake.url}/acme/shop.git")

    assert "registered" in register(app)
    [hook] = fake.hooks.values()
    assert hook["repo"] == "acme/shop"
    assert webhook_url(app, kind) == f"https://paas.example.com/hooks/{kind}/shop"
    assert app.webhook_secret in str(hook) and webhook_url(app, kind) in str(hook)
    app.refresh_from_db()
    assert app.webhook_hook_id and app.webhook_provider == kind

    app.request_cleanup()
    assert cleanup_app(app.pk, wiring.runtime(), wiring.router()) is True
    assert fake.hooks == {}


def test_a_repository_of_no_connected_provider_gets_a_note_not_an_error(owner, public_url):
    app = App.objects.create(name="plain", owner=owner, repository="https://example.com/a/b.git")
    assert "by hand" in register(app)
    app.refresh_from_db()
    assert not app.webhook_hook_id and "by hand" in app.webhook_note


def test_a_provider_that_refuses_leaves_a_note(forge, connect, owner, public_url):
    fake = forge("github")
    fake.add_repo("acme/shop", updated=None)
    connect(fake)
    fake.fail_status = 500
    app = App.objects.create(name="shop", owner=owner, repository=f"{fake.url}/acme/shop.git")
    assert "Could not register" in register(app)
    assert fake.hooks == {}


def test_without_a_public_url_nothing_is_registered(forge, connect, owner, settings):
    settings.PAAS_PUBLIC_URL = ""
    fake = forge("gitea")
    fake.add_repo("acme/shop", updated=None)
    connect(fake)
    app = App.objects.create(name="shop", owner=owner, repository=f"{fake.url}/acme/shop.git")
    assert "PAAS_PUBLIC_URL" in register(app)
    assert fake.hooks == {}


def test_the_api_shows_urls_and_secret_to_the_owner_only(make_app, api, outsider_api):
    app = make_app("hooked")
    body = api.get("/apps/hooked/webhook").json()
    assert body["secret"] == app.webhook_secret
    assert body["urls"]["github"].endswith("/hooks/github/hooked")
    assert outsider_api.get("/apps/hooked/webhook").status_code == 404


def test_staff_see_the_webhook_urls_but_not_the_secret(make_app, staff):
    app = make_app("hooked")
    body = ApiClient(staff).get("/apps/hooked/webhook").json()
    assert body["secret"] is None and body["urls"]["gitea"].endswith("/hooks/gitea/hooked")
    assert app.webhook_secret not in str(body)
