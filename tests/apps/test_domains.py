"""Custom domains: validated, unique across apps, and served by Caddy at once."""

import pytest

from apps.models import App, Domain
from deployments import services
from deployments.services import domains
from tests.support import make_repo, sample_files, through_proxy, wait_final, wait_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "host", ["www.example.com", "Shop.Example.COM.", "a.b.c.example.org", "xn--bcher-kva.example"]
)
def test_it_accepts_host_names(make_app, host):
    domain = domains.add_domain(make_app(), "production", host)
    assert domain.hostname == host.lower().rstrip(".")


@pytest.mark.parametrize(
    "host",
    [
        "",
        "localhost",
        "example",
        "*.example.com",
        "exa mple.com",
        "-bad.example.com",
        "10.0.0.1",
        "a" * 64 + ".com",
        "under.localhost",
        "demo.localhost",
        "<script>.com",
        "x.example.com/path",
    ],
)
def test_it_refuses_bad_or_reserved_host_names(api, make_app, host):
    make_app("demo")
    response = api.post("/apps/demo/domains", {"hostname": host})
    assert response.status_code == 400, host
    assert "hostname" in response.json()["error"]["fields"]
    assert not Domain.objects.exists()


def test_a_domain_belongs_to_one_app_only(api, make_app, outsider):
    make_app("demo")
    make_app("theirs", user=outsider)
    domains.add_domain(App.objects.get(name="theirs"), "production", "shop.example.com")
    response = api.post("/apps/demo/domains", {"hostname": "SHOP.example.com"})
    assert response.status_code == 409
    assert Domain.objects.count() == 1


def test_an_outsider_cannot_list_add_or_remove_domains(outsider_api, make_app):
    app = make_app("demo")
    domains.add_domain(app, "production", "www.demo.example")
    assert outsider_api.get("/apps/demo/domains").status_code == 404
    assert outsider_api.post("/apps/demo/domains", {"hostname": "x.example.com"}).status_code == 404
    assert outsider_api.delete("/apps/demo/domains/www.demo.example").status_code == 404
    assert list(Domain.objects.values_list("hostname", flat=True)) == ["www.demo.example"]


def test_caddy_serves_a_custom_domain_as_soon_as_it_is_added(platform, owner, tmp_path, api):
    repo = make_repo(tmp_path / "site", sample_files("static"))
    app = App.objects.create(name="branded", owner=owner, repository=str(repo))
    assert wait_final(services.queue_deployment(app, "production")).status == "succeeded"

    assert api.post("/apps/branded/domains", {"hostname": "www.branded.example"}).status_code == 201
    wait_for(
        lambda: "static says hello" in through_proxy("www.branded.example").text,
        timeout=30,
        message="the custom domain to be routed",
    )
    assert "static says hello" in through_proxy(app.environment("production").hostname).text

    assert api.delete("/apps/branded/domains/www.branded.example").status_code == 200
    wait_for(
        lambda: "static says hello" not in through_proxy("www.branded.example").text,
        timeout=30,
        message="the custom domain to be unrouted",
    )
