"""/api/v1/apps/<name>/formation (GET, PUT) and the command settings on create and PATCH.

Nothing queued here is sent: the test's transaction never commits.
"""

import pytest

from apps.models import App, Environment
from tests.support import make_live_deployment

pytestmark = pytest.mark.django_db

URL = "/apps/shop/formation"
PROCESSES = {"web": "gunicorn app:app", "worker": "python worker.py"}


@pytest.fixture
def shop(make_app):
    return make_app("shop")


def _live(app, image_id):
    return make_live_deployment(app, image_id, step_data={"processes": PROCESSES})


def _env(app, name="production") -> Environment:
    return app.environments.get(name=name)


def test_get_with_nothing_deployed_shows_web_alone(api, shop):
    response = api.get(URL)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "environment": "production",
        "processes": {"web": {"replicas": 1, "command": ""}},
        "deployment": None,
    }


def test_get_shows_the_live_deployments_types_web_first(api, shop, local_image_id):
    _live(shop, local_image_id)
    Environment.objects.filter(pk=_env(shop).pk).update(replicas=2, formation={"worker": 3})
    body = api.get(URL + "?environment=production").json()
    assert list(body["processes"]) == ["web", "worker"]
    assert body["processes"] == {
        "web": {"replicas": 2, "command": "gunicorn app:app"},
        "worker": {"replicas": 3, "command": "python worker.py"},
    }


def test_put_queues_a_scale_deployment_and_get_shows_the_counts(api, shop, local_image_id):
    live = _live(shop, local_image_id)
    response = api.put_json(URL, {"environment": "production", "processes": {"worker": 0}})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["deployment"] == live.number + 1
    assert body["processes"]["worker"]["replicas"] == 0
    assert shop.deployments.get(number=live.number + 1).trigger == "scale"
    assert api.get(URL).json()["processes"]["worker"]["replicas"] == 0
    assert _env(shop).formation == {"worker": 0} and _env(shop).replicas == 1


def test_put_of_the_same_counts_changes_nothing(api, shop, local_image_id):
    live = _live(shop, local_image_id)
    response = api.put_json(URL, {"processes": {"web": 1, "worker": 1}})
    assert response.status_code == 200, response.content
    assert response.json()["deployment"] is None
    assert shop.deployments.count() == 1 and live.number == 1


def test_put_with_nothing_live_saves_for_the_next_deployment(api, shop):
    response = api.put_json(URL, {"environment": "staging", "processes": {"web": 3}})
    assert response.status_code == 200, response.content
    assert response.json()["processes"]["web"]["replicas"] == 3
    assert _env(shop, "staging").replicas == 3 and shop.deployments.count() == 0


@pytest.mark.parametrize(
    "processes, field, words",
    [
        ({"clock": 1}, "processes.clock", "Unknown process type; this app has: web, worker."),
        ({"worker": -1}, "processes.worker", "from 0 to 10"),
        ({"web": 11}, "processes.web", "from 0 to 10"),
        ({"web": "2"}, "processes.web", "whole number"),
        ({"web": True}, "processes.web", "whole number"),
        ({}, "processes", "Expected an object"),
    ],
)
def test_put_refusals_name_the_field_and_change_nothing(
    api, shop, local_image_id, processes, field, words
):
    _live(shop, local_image_id)
    response = api.put_json(URL, {"processes": processes})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert words in " ".join(error["fields"][field])
    env = _env(shop)
    assert env.replicas == 1 and env.formation == {} and shop.deployments.count() == 1


def test_put_refuses_unknown_fields_and_environments(api, shop):
    assert api.put_json(URL, {"processes": {"web": 1}, "size": "L"}).status_code == 400
    response = api.put_json(URL, {"environment": "qa", "processes": {"web": 1}})
    assert response.status_code == 400


def test_a_stopped_environment_is_not_scaled(api, shop, local_image_id):
    _live(shop, local_image_id)
    Environment.objects.filter(pk=_env(shop).pk).update(stopped=True)
    response = api.put_json(URL, {"processes": {"web": 2}})
    assert response.status_code == 409 and response.json()["error"]["code"] == "stopped"
    assert _env(shop).replicas == 1


def test_another_users_app_is_not_found(outsider_api, shop):
    assert outsider_api.get(URL).status_code == 404
    assert outsider_api.put_json(URL, {"processes": {"web": 2}}).status_code == 404
    assert _env(shop).replicas == 1


# --- the three commands -------------------------------------------------------------------


def test_create_keeps_the_commands_and_patch_changes_them(api):
    body = {
        "name": "cmds",
        "repository": "https://example.com/cmds.git",
        "build_command": "npm run build",
        "start_command": "uvicorn main:app --host 0.0.0.0 --port $PORT",
        "release_command": "python manage.py migrate",
    }
    created = api.post("/apps", body)
    assert created.status_code == 201, created.content
    assert created.json()["start_command"] == body["start_command"]
    app = App.objects.get(name="cmds")
    assert (app.build_command, app.release_command) == (
        "npm run build",
        "python manage.py migrate",
    )
    patched = api.patch("/apps/cmds", {"start_command": "", "release_command": "./release.sh"})
    assert patched.status_code == 200, patched.content
    assert set(patched.json()["changed"]) == {"start_command", "release_command"}
    app.refresh_from_db()
    assert app.start_command == "" and app.release_command == "./release.sh"


def test_create_refuses_unknown_fields(api):
    response = api.post(
        "/apps", {"name": "typo", "repository": "https://example.com/t.git", "start_cmd": "x"}
    )
    assert response.status_code == 400, response.content
    assert not App.objects.filter(name="typo").exists()


@pytest.mark.parametrize(
    "command, words", [("a\nb", "one line"), ("a\x00b", "Null characters"), ("x" * 2001, "2000")]
)
def test_bad_commands_are_refused_and_change_nothing(api, shop, command, words):
    response = api.patch("/apps/shop", {"release_command": command})
    assert response.status_code == 400, response.content
    assert words in " ".join(response.json()["error"]["fields"]["release_command"])
    shop.refresh_from_db()
    assert shop.release_command == ""
