"""/api/v1/apps/<name>/environments/<env> (GET, PATCH) and /api/v1/apps/<name>/scale.

Nothing queued here is sent: the test's transaction never commits.
"""

import bcrypt
import pytest

from apps.models import Environment
from tests.conftest import ApiClient
from tests.support import make_live_deployment

pytestmark = pytest.mark.django_db

URL = "/apps/shop/environments/production"
PASSWORD = "correct horse battery"
SHAPE = {
    "name",
    "url",
    "replicas",
    "visibility",
    "basic_auth_user",
    "protected",
    "maintenance",
    "maintenance_message",
    "max_body_bytes",
    "body_limit",
    "stopped",
}


@pytest.fixture
def shop(make_app):
    return make_app("shop")


def _env(app, name="production") -> Environment:
    return app.environments.get(name=name)


def test_get_an_environment(api, shop, settings):
    response = api.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SHAPE
    assert body == {
        "name": "production",
        "url": _env(shop).url,
        "replicas": 1,
        "visibility": "public",
        "basic_auth_user": "",
        "protected": False,
        "maintenance": False,
        "maintenance_message": "",
        "max_body_bytes": None,
        "body_limit": settings.PAAS_MAX_BODY_BYTES,
        "stopped": False,
    }
    staging = api.get("/apps/shop/environments/staging").json()
    assert staging["name"] == "staging" and staging["url"] == _env(shop, "staging").url


def test_patch_protects_it_and_never_answers_the_password_or_its_hash(api, shop):
    response = api.patch(
        URL,
        {"visibility": "protected", "basic_auth_user": "ops", "basic_auth_password": PASSWORD},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == SHAPE | {"changed"}
    assert body["changed"] == ["visibility", "basic_auth_user", "basic_auth_password"]
    assert body["protected"] is True and body["basic_auth_user"] == "ops"
    stored = _env(shop).basic_auth_hash
    assert stored.startswith("$2y$") and bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    for text in (response.content.decode(), api.get(URL).content.decode()):
        assert PASSWORD not in text and stored not in text and "$2y$" not in text

    again = api.patch(URL, {"maintenance": True, "maintenance_message": "Back soon."})
    assert again.status_code == 200
    assert again.json()["changed"] == ["maintenance", "maintenance_message"]
    assert again.json()["protected"] is True  # the stored password stays


def test_patch_the_body_limit_and_back_to_the_default(api, shop, settings):
    body = api.patch(URL, {"max_body_bytes": 5 * 1024 * 1024}).json()
    assert body["max_body_bytes"] == body["body_limit"] == 5 * 1024 * 1024
    body = api.patch(URL, {"max_body_bytes": None}).json()
    assert body["changed"] == ["max_body_bytes"] and body["max_body_bytes"] is None
    assert body["body_limit"] == settings.PAAS_MAX_BODY_BYTES


def test_patch_with_no_body_changes_nothing(api, shop):
    response = api.patch(URL)
    assert response.status_code == 200 and response.json()["changed"] == []


@pytest.mark.parametrize(
    "payload, fields",
    [
        ({"replicas": 3}, {"replicas"}),
        ({"basic_auth_hash": "$2y$10$x"}, {"basic_auth_hash"}),
        ({"visibility": "secret"}, {"visibility"}),
        ({"visibility": "protected"}, {"basic_auth_user", "basic_auth_password"}),
        (
            {"visibility": "protected", "basic_auth_user": "o:ps", "basic_auth_password": "short"},
            {"basic_auth_user", "basic_auth_password"},
        ),
        ({"maintenance_message": "m" * 2001, "maintenance": True}, {"maintenance_message"}),
        ({"max_body_bytes": 12}, {"max_body_bytes"}),
        ({"max_body_bytes": "lots"}, {"max_body_bytes"}),
        ({"maintenance": "maybe"}, {"maintenance"}),
    ],
)
def test_patch_refusals_name_the_fields_and_change_nothing(api, shop, payload, fields):
    before = Environment.objects.filter(pk=_env(shop).pk).values().get()
    response = api.patch(URL, payload)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and set(error["fields"]) == fields
    assert Environment.objects.filter(pk=_env(shop).pk).values().get() == before


def test_an_unknown_field_is_refused_as_the_app_patch_does(api, shop):
    error = api.patch(URL, {"nope": 1}).json()["error"]
    assert error == {
        "code": "invalid",
        "message": "Unknown fields.",
        "fields": {"nope": ["Unknown field."]},
    }


def test_an_unknown_environment_is_not_found(api, shop):
    assert api.get("/apps/shop/environments/qa").status_code == 404
    assert api.patch("/apps/shop/environments/qa", {"maintenance": True}).status_code == 404


def test_scale_with_nothing_live_saves_the_count(api, shop):
    response = api.post("/apps/shop/scale", {"environment": "staging", "replicas": 3})
    assert response.status_code == 200, response.content
    assert response.json() == {"environment": "staging", "replicas": 3, "deployment": None}
    assert _env(shop, "staging").replicas == 3 and _env(shop).replicas == 1
    assert api.get("/apps/shop/environments/staging").json()["replicas"] == 3


def test_scale_with_a_live_deployment_queues_a_scale_deployment(api, shop, local_image_id):
    live = make_live_deployment(shop, local_image_id)
    response = api.post("/apps/shop/scale", {"replicas": 2})  # production by default
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["trigger"] == "scale" and body["status"] == "pending"
    assert body["number"] == live.number + 1 and body["environment"] == "production"
    assert _env(shop).replicas == 2


@pytest.mark.parametrize(
    "payload, status, code",
    [
        ({"replicas": 0}, 400, "invalid_replicas"),
        ({"replicas": 11}, 400, "invalid_replicas"),
        ({"replicas": "3"}, 400, "invalid"),
        ({}, 400, "invalid"),
        ({"environment": "qa", "replicas": 2}, 400, "invalid_environment"),
    ],
)
def test_scale_refusals(api, shop, payload, status, code):
    response = api.post("/apps/shop/scale", payload)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert _env(shop).replicas == 1


def test_scale_says_the_range(api, shop):
    message = api.post("/apps/shop/scale", {"replicas": 99}).json()["error"]["message"]
    assert "from 1 to 10" in message


def test_a_stopped_environment_is_not_scaled(api, shop, local_image_id):
    make_live_deployment(shop, local_image_id)
    Environment.objects.filter(app=shop, name="production").update(stopped=True)
    response = api.post("/apps/shop/scale", {"replicas": 2})
    assert response.status_code == 409 and response.json()["error"]["code"] == "stopped"
    assert api.get(URL).json()["stopped"] is True


def test_another_users_app_is_not_found_and_unchanged(outsider_api, shop):
    before = Environment.objects.filter(pk=_env(shop).pk).values().get()
    assert outsider_api.get(URL).status_code == 404
    assert outsider_api.patch(URL, {"visibility": "internal"}).status_code == 404
    assert outsider_api.post("/apps/shop/scale", {"replicas": 4}).status_code == 404
    assert Environment.objects.filter(pk=_env(shop).pk).values().get() == before


def test_staff_see_and_change_any_app(staff, shop):
    staff_api = ApiClient(staff)
    assert staff_api.get(URL).status_code == 200
    assert staff_api.patch(URL, {"maintenance": True}).json()["changed"] == ["maintenance"]


def test_a_token_is_required(shop):
    anonymous = ApiClient()
    for response in (
        anonymous.get(URL),
        anonymous.patch(URL, {"maintenance": True}),
        anonymous.post("/apps/shop/scale", {"replicas": 2}),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    assert _env(shop).maintenance is False and _env(shop).replicas == 1


# --- env vars of any environment through the app's PATCH --------------------------------------


def test_patch_sets_env_vars_of_an_environment_the_app_made(shop, api):
    Environment.create_for(shop, "dev")
    answer = api.patch("/apps/shop", {"env": {"dev": {"DEBUG": "1"}}})
    assert answer.status_code == 200, answer.content
    assert _env(shop, "dev").env_dict() == {"DEBUG": "1"}


def test_patch_naming_an_environment_the_app_lacks_changes_nothing(shop, api):
    answer = api.patch("/apps/shop", {"branch": "next", "env": {"qa": {"DEBUG": "1"}}})
    assert answer.status_code == 400
    assert "Unknown environment “qa”" in answer.json()["error"]["fields"]["env"][0]
    shop.refresh_from_db()
    assert shop.branch != "next" and not shop.environments.filter(name="qa").exists()
