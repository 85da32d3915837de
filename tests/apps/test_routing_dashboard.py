"""The dashboard's Routing panel (settings page), the Scale button (app page), and the page
the router shows for a stopped or maintenance environment (/_slipway/page/<route_id>/).

Nothing queued here is sent: the test's transaction never commits.
"""

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from apps.models import Environment
from deployments.services import routing
from tests.support import make_live_deployment

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
PASSWORD = "correct horse battery"
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
MIB = 1024 * 1024


@pytest.fixture
def web(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def shop(make_app):
    return make_app("shop")


def _env(app, name="production") -> Environment:
    return app.environments.get(name=name)


def _routing_url(environment="production"):
    return reverse("app-routing", args=["shop", environment])


def _form(**fields) -> dict:
    """What the panel's form posts when nothing is touched, with `fields` changed."""
    return {
        "visibility": "public",
        "basic_auth_user": "",
        "basic_auth_password": "",
        "maintenance_message": "",
        "max_body_mib": "",
        "max_body_shown": "",
        **fields,
    }


# --- the Routing panel ----------------------------------------------------------------------


def test_the_settings_page_loads_a_routing_panel_per_environment(web, shop):
    body = web.get(reverse("app-settings", args=["shop"])).content.decode()
    assert ">Routing</h2>" in body
    for environment in ("production", "staging"):
        assert f'hx-get="{_routing_url(environment)}"' in body


def test_the_panel_shows_the_settings(web, shop, settings):
    settings.PAAS_MAX_BODY_BYTES = 200 * MIB
    response = web.get(_routing_url(), headers=HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="routing-production"' in body
    assert 'name="visibility" value="public" checked' in body
    assert 'name="visibility" value="protected">' in body
    assert 'name="visibility" value="internal">' in body
    assert 'placeholder="200"' in body and "the platform's default, 200 MiB" in body
    assert 'data-testid="password-set-production"' not in body
    assert 'type="password"' in body and 'autocomplete="new-password"' in body


def test_protecting_from_the_panel(web, shop):
    response = web.post(
        _routing_url(),
        _form(visibility="protected", basic_auth_user="ops", basic_auth_password=PASSWORD),
        headers=HX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Saved visibility, basic_auth_user, basic_auth_password" in body
    env = _env(shop)
    assert env.visibility == "protected" and env.basic_auth_user == "ops"
    assert routing.password_matches(env, PASSWORD)
    # Never shown back: a "set" mark instead.
    assert PASSWORD not in body and env.basic_auth_hash not in body
    assert 'data-testid="password-set-production"' in body
    assert 'name="basic_auth_password" value=""' in body

    # Saved again untouched (the password field empty): the stored one stays.
    again = web.post(
        _routing_url(), _form(visibility="protected", basic_auth_user="ops"), headers=HX
    )
    assert again.status_code == 200 and "Nothing changed." in again.content.decode()
    assert _env(shop).basic_auth_hash == env.basic_auth_hash


def test_maintenance_and_the_body_limit_from_the_panel(web, shop):
    response = web.post(
        _routing_url("staging"),
        _form(maintenance="on", maintenance_message="Back soon.\r\nSorry.", max_body_mib="50"),
        headers=HX,
    )
    assert response.status_code == 200
    env = _env(shop, "staging")
    assert env.maintenance and env.maintenance_message == "Back soon.\nSorry."
    assert env.max_body_bytes == 50 * MIB
    body = response.content.decode()
    assert 'name="max_body_mib" value="50"' in body and 'name="maintenance" checked' in body
    assert _env(shop).maintenance is False  # production untouched

    # A decimal MiB is taken; empty is the default again.
    web.post(_routing_url("staging"), _form(max_body_mib="0.5", max_body_shown="50"), headers=HX)
    assert _env(shop, "staging").max_body_bytes == MIB // 2
    web.post(_routing_url("staging"), _form(max_body_mib="", max_body_shown="0.5"), headers=HX)
    assert _env(shop, "staging").max_body_bytes is None


def test_a_limit_set_in_bytes_survives_a_save_of_the_panel(web, shop):
    routing.update_routing(_env(shop), {"max_body_bytes": 1500})
    body = web.get(_routing_url(), headers=HX).content.decode()
    assert 'name="max_body_shown" value="0.001431"' in body
    web.post(
        _routing_url(), _form(maintenance="on", max_body_mib="0.001431", max_body_shown="0.001431")
    )
    env = _env(shop)
    assert env.maintenance and env.max_body_bytes == 1500


@pytest.mark.parametrize(
    "fields, field_message",
    [
        ({"visibility": "protected"}, "Set a password to protect the environment."),
        (
            {"visibility": "protected", "basic_auth_user": "o:ps", "basic_auth_password": PASSWORD},
            "A user name is 1 to 64 letters",
        ),
        (
            {"visibility": "protected", "basic_auth_user": "ops", "basic_auth_password": "short"},
            "A password is 8 to 256 characters.",
        ),
        ({"maintenance_message": "m" * 2001}, "At most 2000 characters."),
        ({"max_body_mib": "lots"}, "From 0.001 MiB (1 KiB) to 10240 MiB (10 GiB)"),
        ({"max_body_mib": "99999"}, "From 0.001 MiB (1 KiB) to 10240 MiB (10 GiB)"),
        ({"visibility": "hidden"}, "Use one of: public, protected, internal."),
    ],
)
def test_a_refusal_is_shown_on_its_field_and_saves_nothing(web, shop, fields, field_message):
    before = Environment.objects.filter(pk=_env(shop).pk).values().get()
    response = web.post(_routing_url(), _form(maintenance="on", **fields), headers=HX)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was saved" in body and "field-invalid" in body and field_message in body
    assert Environment.objects.filter(pk=_env(shop).pk).values().get() == before
    if "basic_auth_password" in fields:
        assert fields["basic_auth_password"] not in body  # not even a refused one
    # What was typed is kept in the form.
    assert 'name="maintenance" checked' in body


def test_the_message_is_escaped_in_the_panel(web, shop):
    web.post(_routing_url(), _form(maintenance_message=XSS), headers=HX)
    body = web.get(_routing_url(), headers=HX).content.decode()
    assert XSS not in body and XSS_ESCAPED in body


def test_without_htmx_the_panel_redirects_with_a_message(web, shop):
    response = web.post(_routing_url(), _form(maintenance="on"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("app-settings", args=["shop"])
    assert "Saved maintenance of production" in response.content.decode()
    refused = web.post(_routing_url(), _form(visibility="protected"), follow=True)
    assert "The routing of production was not saved" in refused.content.decode()


def test_the_panel_needs_a_csrf_token(owner, shop):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(_routing_url(), _form(maintenance="on"), headers=HX).status_code == 403
    assert _env(shop).maintenance is False


def test_another_users_app_is_not_found(outsider, shop):
    client = Client()
    client.force_login(outsider)
    assert client.get(_routing_url(), headers=HX).status_code == 404
    assert client.post(_routing_url(), _form(maintenance="on"), headers=HX).status_code == 404
    scale = client.post(
        reverse("app-scale", args=["shop"]), {"environment": "production", "replicas": "3"}
    )
    assert scale.status_code == 404
    env = _env(shop)
    assert env.maintenance is False and env.replicas == 1


def test_an_unknown_environment_is_not_found(web, shop):
    assert web.get(reverse("app-routing", args=["shop", "qa"]), headers=HX).status_code == 404


# --- the Scale button -----------------------------------------------------------------------


def test_the_app_page_has_a_scale_button_per_environment(web, shop):
    Environment.objects.filter(app=shop, name="staging").update(replicas=3)
    for url in (reverse("app-detail", args=["shop"]), reverse("app-environments", args=["shop"])):
        body = web.get(url, headers=HX).content.decode()
        assert f'action="{reverse("app-formation", args=["shop"])}"' in body
        assert 'id="scale-production"' in body and 'id="scale-staging"' in body
        assert 'id="replicas-staging" name="replicas" value="3"' in body
        assert "3 web containers" in body and "1 web container" in body


def test_the_formation_form_has_a_count_per_process_type(web, shop, local_image_id):
    processes = {"web": "", "worker": "python worker.py", "clock": "python clock.py"}
    make_live_deployment(shop, local_image_id, step_data={"processes": processes})
    Environment.objects.filter(app=shop, name="production").update(formation={"worker": 2})
    body = web.get(reverse("app-environments", args=["shop"]), headers=HX).content.decode()
    assert 'name="process-worker" value="2"' in body and 'name="process-clock" value="1"' in body
    assert "1 web container · 1 clock · 2 worker" in body


def test_the_formation_form_scales_each_type(web, shop, local_image_id):
    live = make_live_deployment(
        shop, local_image_id, step_data={"processes": {"web": "", "worker": "w"}}
    )
    response = web.post(
        reverse("app-formation", args=["shop"]),
        {"environment": "production", "replicas": "2", "process-worker": "0"},
        headers=HX,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert f"Scaling production to 2 web, 0 worker (deployment #{live.number + 1})." in text
    env = _env(shop, "production")
    assert env.replicas == 2 and env.formation == {"worker": 0}


def test_the_formation_form_refuses_a_bad_count_and_changes_nothing(web, shop, local_image_id):
    make_live_deployment(shop, local_image_id, step_data={"processes": {"web": "", "worker": "w"}})
    response = web.post(
        reverse("app-formation", args=["shop"]),
        {"environment": "production", "replicas": "1", "process-worker": "-3"},
        headers=HX,
    )
    assert response.status_code == 400
    assert "from 0 to 10" in response.content.decode()
    assert _env(shop, "production").formation == {} and shop.deployments.count() == 1


def test_scaling_with_nothing_live_saves_the_count(web, shop):
    response = web.post(
        reverse("app-scale", args=["shop"]), {"environment": "staging", "replicas": "2"}, headers=HX
    )
    assert response.status_code == 200
    assert "Staging starts 2 containers from its next deployment." in response.content.decode()
    assert response["HX-Trigger"] == "app-changed"
    assert _env(shop, "staging").replicas == 2


def test_scaling_a_live_environment_queues_a_deployment(web, shop, local_image_id):
    live = make_live_deployment(shop, local_image_id)
    response = web.post(
        reverse("app-scale", args=["shop"]),
        {"environment": "production", "replicas": "4"},
        headers=HX,
    )
    assert response.status_code == 200
    number = live.number + 1
    assert (
        f"Scaling production to 4 containers (deployment #{number})." in response.content.decode()
    )
    assert response["HX-Trigger"] == "new-deployment, app-changed"
    deployment = shop.deployments.get(number=number)
    assert deployment.trigger == "scale" and deployment.source_deployment == live
    assert _env(shop).replicas == 4


@pytest.mark.parametrize("replicas", ["0", "11", "two", ""])
def test_a_bad_count_is_a_toast(web, shop, replicas):
    response = web.post(
        reverse("app-scale", args=["shop"]),
        {"environment": "production", "replicas": replicas},
        headers=HX,
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "toast-error" in body and "from 1 to 10" in body
    assert _env(shop).replicas == 1


def test_a_stopped_environment_is_not_scaled(web, shop, local_image_id):
    make_live_deployment(shop, local_image_id)
    Environment.objects.filter(app=shop, name="production").update(stopped=True)
    response = web.post(
        reverse("app-scale", args=["shop"]),
        {"environment": "production", "replicas": "2"},
        headers=HX,
    )
    assert response.status_code == 409 and "is stopped" in response.content.decode()
    assert _env(shop).replicas == 1


# --- the page the router shows ----------------------------------------------------------------


def _page(route_id, method="get"):
    # Anonymous, as every visitor of the app is; no CSRF token, as a form posted to the app.
    return getattr(Client(enforce_csrf_checks=True), method)(
        reverse("router-page", args=[route_id])
    )


def test_the_maintenance_page(shop):
    env = _env(shop)
    routing.update_routing(env, {"maintenance": True, "maintenance_message": f"Back soon {XSS}"})
    response = _page(env.route_id)
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert f"Back soon {XSS_ESCAPED}" in body and XSS not in body
    assert "Under maintenance" in body
    # Self-contained: no stylesheet, script, image or font from anywhere.
    assert "<link" not in body and "<script" not in body and "src=" not in body
    assert "url(" not in body


def test_the_default_maintenance_text(shop):
    env = _env(shop, "staging")
    routing.update_routing(env, {"maintenance": True})
    body = _page(env.route_id).content.decode()
    assert "This app is under maintenance." in body


def test_the_stopped_page_answers_any_method(shop, local_image_id):
    make_live_deployment(shop, local_image_id)
    Environment.objects.filter(app=shop, name="production").update(stopped=True)
    env = _env(shop)
    assert env.route_id == f"{django_settings.PAAS_INSTANCE}-shop-production"
    for method in ("get", "post", "put", "delete"):
        response = _page(env.route_id, method)
        assert response.status_code == 503, method
        assert "This app is stopped." in response.content.decode()
    assert _page(env.route_id, "head").status_code == 503


def test_a_dashed_app_name_is_found(make_app):
    env = make_app("my-little-shop").environment("staging")
    routing.update_routing(env, {"maintenance": True, "maintenance_message": "Dashes."})
    assert "Dashes." in _page(env.route_id).content.decode()


@pytest.mark.parametrize(
    "route_id",
    [
        "{instance}-nosuch-production",
        "{instance}-shop-qa",
        "{instance}-shop",
        "{instance}-",
        "other-shop-production",
        "shop-production",
    ],
)
def test_an_unknown_route_is_not_found(shop, route_id):
    route_id = route_id.format(instance=django_settings.PAAS_INSTANCE)
    assert _page(route_id).status_code == 404


def test_an_internal_environment_has_no_page(shop):
    env = _env(shop)
    routing.update_routing(env, {"visibility": "internal", "maintenance": True})
    assert _page(env.route_id).status_code == 404
