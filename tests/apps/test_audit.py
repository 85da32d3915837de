"""The audit log: every change records who, what, which app, when and from where, through
the dashboard, the API and the admin; refusals record nothing; no secret is ever kept.
Shown per app to whoever may see the app, platform-wide to staff in the admin."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.models import AuditEntry
from deployments import services
from paas.actor import Actor, acting
from tests.support import make_live_deployment

pytestmark = pytest.mark.django_db

SECRET = "audit-must-never-hold-this-value"
HX = {"HX-Request": "true"}


@pytest.fixture
def web(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def shop(make_app):
    return make_app("shop")


def _entries(app) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(app=app).order_by("id"))


def test_an_api_change_records_the_user_the_source_and_the_address(api, owner, shop):
    response = api.patch("/apps/shop", {"release_command": "./migrate"})
    assert response.status_code == 200, response.content
    [entry] = _entries(shop)
    assert (entry.action, entry.source, entry.actor, entry.actor_name) == (
        "app.update",
        "api",
        owner,
        owner.username,
    )
    assert entry.address == "127.0.0.1" and entry.details == {"changed": ["release_command"]}


def test_env_vars_are_named_never_shown(web, shop):
    response = web.post(
        reverse("app-env-set", args=["shop", "production"]),
        {"key": "TOKEN", "value": SECRET},
        headers=HX,
    )
    assert response.status_code == 200
    web.post(reverse("app-env-delete", args=["shop", "production", "TOKEN"]), headers=HX)
    actions = [(e.action, e.source, e.target, e.details) for e in _entries(shop)]
    assert actions == [
        ("env.set", "dashboard", "production", {"keys": ["TOKEN"], "replace": False}),
        ("env.delete", "dashboard", "production", {"key": "TOKEN"}),
    ]
    stored = json.dumps(list(AuditEntry.objects.values()), default=str)
    assert SECRET not in stored


def test_a_refusal_records_nothing(api, shop):
    assert (
        api.patch("/apps/shop", {"repository": "http://plain.example.com/x.git"}).status_code == 400
    )
    assert api.put_json("/apps/shop/formation", {"processes": {"web": -1}}).status_code == 400
    assert _entries(shop) == []


def test_a_deployment_names_its_trigger_and_number(api, shop, local_image_id):
    live = make_live_deployment(shop, local_image_id)
    response = api.post(f"/apps/shop/deployments/{live.number}/redeploy")
    assert response.status_code == 202, response.content
    [entry] = _entries(shop)
    assert entry.action == "deployment.queue" and entry.target == f"#{live.number + 1} production"
    assert entry.details == {"trigger": "redeploy"}


def test_the_warden_and_the_system_are_named_when_no_user_acts(shop, local_image_id):
    make_live_deployment(shop, local_image_id)
    with acting(Actor("warden", name="warden")):
        services.stop(shop, "production")
    services.start(shop, "production")  # a shell or a task with no actor set
    assert [(e.action, e.source, e.actor_name, e.actor) for e in _entries(shop)] == [
        ("environment.stop", "warden", "warden", None),
        ("environment.start", "system", "system", None),
    ]


def test_the_owner_reads_the_log_on_the_api_and_the_page(api, web, owner, shop):
    api.patch("/apps/shop", {"branch": "dev"})
    api.patch("/apps/shop", {"branch": "main"})
    body = api.get("/apps/shop/audit?limit=1").json()
    assert [e["action"] for e in body["entries"]] == ["app.update"] and body["next"]
    older = api.get(f"/apps/shop/audit?before={body['next']}").json()
    assert len(older["entries"]) == 1 and older["next"] is None
    assert set(body["entries"][0]) == {
        "id",
        "created_at",
        "actor",
        "source",
        "address",
        "action",
        "app",
        "actor_role",
        "target",
        "details",
    }
    page = web.get(reverse("app-audit", args=["shop"])).content.decode()
    assert "app.update" in page and owner.username in page


def test_another_user_sees_no_log(outsider_api, outsider, shop, api):
    api.patch("/apps/shop", {"branch": "dev"})
    assert outsider_api.get("/apps/shop/audit").status_code == 404
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.get(reverse("app-audit", args=["shop"])).status_code == 404


def test_staff_read_the_whole_log_in_the_admin(api, staff, shop):
    api.patch("/apps/shop", {"branch": "dev"})
    admin = Client()
    admin.force_login(staff)
    page = admin.get("/admin/apps/auditentry/").content.decode()
    assert "app.update" in page and "shop" in page
    assert (
        admin.get(f"/admin/apps/auditentry/{AuditEntry.objects.get().pk}/delete/").status_code
        == 403
    )
