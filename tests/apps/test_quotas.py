"""Per-user quotas: apps, custom domains, volumes and add-ons. Over a limit the API and the
services answer 409 quota_exceeded and create nothing; staff are exempt."""

import pytest

from apps.models import AddOn, App, Domain, Volume
from deployments.services import Conflict, addons, domains
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

APP_BODY = {"repository": "https://example.com/acme/demo.git"}


def test_an_app_over_the_quota_is_refused_by_the_api_and_nothing_is_made(settings, api):
    settings.PAAS_MAX_APPS_PER_USER = 2
    for name in ("one", "two"):
        assert api.post("/apps", {"name": name, **APP_BODY}).status_code == 201
    response = api.post("/apps", {"name": "three", **APP_BODY})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "quota_exceeded"
    assert "PAAS_MAX_APPS_PER_USER=2" in response.json()["error"]["message"]
    assert not App.objects.filter(name="three").exists()


def test_the_dashboard_create_form_says_so_too(settings, owner, make_app, client):
    settings.PAAS_MAX_APPS_PER_USER = 1
    make_app("one")
    client.force_login(owner)
    response = client.post("/new/", {"name": "two", **APP_BODY, "build_method": "auto"})
    assert response.status_code in (400, 409)
    assert "PAAS_MAX_APPS_PER_USER" in response.content.decode()
    assert not App.objects.filter(name="two").exists()


def test_staff_are_exempt(settings, staff):
    settings.PAAS_MAX_APPS_PER_USER = 0
    assert ApiClient(staff).post("/apps", {"name": "ops", **APP_BODY}).status_code == 201


def test_domains_over_the_quota(settings, api, make_app):
    settings.PAAS_MAX_DOMAINS_PER_USER = 1
    make_app("shop")
    make_app("blog")
    assert api.post("/apps/shop/domains", {"hostname": "shop.example.com"}).status_code == 201
    response = api.post("/apps/blog/domains", {"hostname": "blog.example.com"})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "quota_exceeded")
    assert list(Domain.objects.values_list("hostname", flat=True)) == ["shop.example.com"]


def test_volumes_over_the_quota(settings, make_app):
    settings.PAAS_MAX_VOLUMES_PER_USER = 1
    app = make_app("shop")
    domains.add_volume(app, "production", "data", "/data")
    with pytest.raises(Conflict) as refused:
        domains.add_volume(app, "staging", "data", "/data")
    assert refused.value.code == "quota_exceeded"
    assert Volume.objects.count() == 1


def test_addons_over_the_quota(settings, make_app):
    settings.PAAS_MAX_ADDONS_PER_USER = 1
    app = make_app("shop")
    addons.attach(app, "production", "redis")
    with pytest.raises(Conflict) as refused:
        addons.attach(app, "staging", "redis")
    assert refused.value.code == "quota_exceeded"
    assert AddOn.objects.count() == 1


def test_the_quota_counts_the_owners_apps_not_the_callers(settings, owner, staff, make_app):
    """A superuser adding a domain to a user's app still meets that user's quota."""
    settings.PAAS_MAX_DOMAINS_PER_USER = 0
    app = make_app("shop")
    with pytest.raises(Conflict):
        domains.add_domain(app, "production", "shop.example.com")
    assert not Domain.objects.exists()
