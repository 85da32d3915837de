"""No user sees or touches another's app: every route answers 404 to an outsider."""

import pytest
from django.test import Client

from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

API_ROUTES = [
    ("get", "/apps/secret"),
    ("patch", "/apps/secret"),
    ("delete", "/apps/secret"),
    ("get", "/apps/secret/deployments"),
    ("post", "/apps/secret/deployments"),
    ("get", "/apps/secret/deployments/1"),
    ("post", "/apps/secret/deployments/1/cancel"),
    ("get", "/apps/secret/deployments/1/logs"),
]


@pytest.fixture
def secret_app(make_app):
    app = make_app("secret")
    app.new_deployment(app.environment("production"))
    return app


def test_every_page_needs_a_login(secret_app):
    client = Client()
    for path in ["/", "/apps/secret/"]:
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_owner_sees_the_app_page(secret_app, owner):
    client = Client()
    client.force_login(owner)
    assert client.get("/apps/secret/").status_code == 200
    assert b"secret" in client.get("/").content


def test_an_outsider_gets_404_on_the_page_and_not_a_listing(secret_app, outsider):
    client = Client()
    client.force_login(outsider)
    assert client.get("/apps/secret/").status_code == 404
    assert b"secret" not in client.get("/").content


def test_staff_see_every_app(secret_app, staff):
    client = Client()
    client.force_login(staff)
    assert client.get("/apps/secret/").status_code == 200


@pytest.mark.parametrize("method, path", API_ROUTES)
def test_an_outsider_gets_404_from_every_api_route(secret_app, outsider_api, method, path):
    response = getattr(outsider_api, method)(path)
    assert response.status_code == 404, (method, path, response.content)
    secret_app.refresh_from_db()
    assert secret_app.cleanup_requested_at is None
    assert secret_app.deployments.count() == 1


def test_the_outsider_listing_does_not_show_the_app(secret_app, outsider_api):
    assert outsider_api.get("/apps").json() == {"apps": []}


def test_no_token_or_a_wrong_one_is_401(secret_app):
    assert ApiClient().get("/apps/secret").status_code == 401
    assert ApiClient(raw_token="slw_wrong").get("/apps/secret").status_code == 401
