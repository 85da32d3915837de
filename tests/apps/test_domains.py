"""Custom domains: validated, unique across apps, limited per app, never the platform's own
hosts, and routed by the real router only once verified: the router serves the domain's
token, Slipway fetches it back through the router, and then the app answers on it."""

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


def test_an_outsider_cannot_list_add_verify_or_remove_domains(outsider_api, make_app):
    app = make_app("demo")
    domains.add_domain(app, "production", "www.demo.example")
    assert outsider_api.get("/apps/demo/domains").status_code == 404
    assert outsider_api.post("/apps/demo/domains", {"hostname": "x.example.com"}).status_code == 404
    assert outsider_api.post("/apps/demo/domains/www.demo.example/verify").status_code == 404
    assert outsider_api.delete("/apps/demo/domains/www.demo.example").status_code == 404
    assert list(Domain.objects.values_list("hostname", flat=True)) == ["www.demo.example"]
    assert not Domain.objects.get().is_verified


def test_the_platforms_own_hosts_are_refused(api, make_app, settings):
    settings.PAAS_DOMAIN, settings.PAAS_PUBLIC_HOST = "paas.example.com", "dash.example.org"
    make_app("demo")
    for host in (
        "paas.example.com",
        "demo.paas.example.com",
        "x.y.paas.example.com",
        "dash.example.org",
        "DASH.example.org.",
    ):
        response = api.post("/apps/demo/domains", {"hostname": host})
        assert response.status_code == 400, host
        assert "hostname" in response.json()["error"]["fields"]
    assert not Domain.objects.exists()


def test_an_app_claims_at_most_the_domain_limit(api, make_app, settings):
    settings.PAAS_MAX_DOMAINS_PER_APP = 2
    make_app("demo")
    for host in ("a.demo.example", "b.demo.example"):
        assert api.post("/apps/demo/domains", {"hostname": host}).status_code == 201
    third = api.post("/apps/demo/domains", {"hostname": "c.demo.example"})
    assert third.status_code == 409 and third.json()["error"]["code"] == "too_many_domains"
    assert Domain.objects.count() == 2


def test_an_unverified_domain_is_listed_with_its_check_and_not_in_the_hostnames(api, make_app):
    app = make_app("demo")
    assert api.post("/apps/demo/domains", {"hostname": "www.demo.example"}).status_code == 201
    [listed] = api.get("/apps/demo/domains").json()["domains"]
    domain = Domain.objects.get()
    assert listed["verified"] is False and listed["verified_at"] is None
    assert listed["token"] == domain.token and len(domain.token) >= 32
    assert (
        listed["check_url"] == f"http://www.demo.example/.well-known/slipway-domain/{domain.token}"
    )
    assert app.environment("production").hostnames == [app.environment("production").hostname]


def test_a_domain_is_routed_only_once_the_router_served_its_token(
    platform, owner, tmp_path, api, settings
):
    settings.PAAS_DOMAIN_CHECK_ADDRESS = f"127.0.0.1:{settings.PAAS_PROXY_HTTP_PORT}"
    repo = make_repo(tmp_path / "site", sample_files("static"))
    app = App.objects.create(name="branded", owner=owner, repository=str(repo))
    assert wait_final(services.queue_deployment(app, "production")).status == "succeeded"
    host = "www.branded.example"

    assert api.post("/apps/branded/domains", {"hostname": host}).status_code == 201
    domain = Domain.objects.get(hostname=host)
    wait_for(
        lambda: through_proxy(host, domain.check_path).text == domain.token,
        timeout=30,
        message="the router to serve the domain's token",
    )
    assert "static says hello" not in through_proxy(host).text  # claimed is not routed
    assert through_proxy(host, "/.well-known/slipway-domain/other").status_code == 404

    verified = api.post(f"/apps/branded/domains/{host}/verify")
    assert verified.status_code == 200, verified.content
    assert verified.json()["verified"] is True
    wait_for(
        lambda: "static says hello" in through_proxy(host).text,
        timeout=30,
        message="the verified domain to be routed",
    )
    assert "static says hello" in through_proxy(app.environment("production").hostname).text

    assert api.delete(f"/apps/branded/domains/{host}").status_code == 200
    wait_for(
        lambda: "static says hello" not in through_proxy(host).text,
        timeout=30,
        message="the custom domain to be unrouted",
    )


def test_a_domain_whose_check_answers_something_else_stays_unverified(api, make_app, settings):
    # Nothing routes this host, so the router answers 404: not verified, and told why.
    settings.PAAS_DOMAIN_CHECK_ADDRESS = f"127.0.0.1:{settings.PAAS_PROXY_HTTP_PORT}"
    make_app("demo")
    api.post("/apps/demo/domains", {"hostname": "www.nobody.example"})
    refused = api.post("/apps/demo/domains/www.nobody.example/verify")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "domain_not_verified"
    assert not Domain.objects.get().is_verified
