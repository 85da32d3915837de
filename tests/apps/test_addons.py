"""Add-ons on the real worker, dockerd and Caddy: PostgreSQL beside a deployed app keeps its
rows across redeploys and restarts; MariaDB and Redis answer; the URL is a secret at rest;
detaching keeps the data unless asked to delete it."""

import docker
import pytest
from django.db import connection

from apps.models import App, EnvVar
from apps.models.addons import AddOn
from deployments import services, wiring
from deployments.services import Conflict
from deployments.services import addons as addon_services
from deployments.workers import warden
from tests.apps.addon_helpers import (  # noqa: F401 - addon_leftovers is a fixture
    addon_leftovers,
    connect,
    volume_exists,
    wait_addon,
)
from tests.support import containers, log_text, make_repo, through_proxy, wait_final, wait_for

pytestmark = pytest.mark.usefixtures("addon_leftovers")

# A stdlib web server: /write?body=… inserts a row, /read lists them, from DATABASE_URL.
NOTES_APP = """\
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import psycopg


def db():
    return psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5)


class Notes(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/write":
            body = parse_qs(url.query).get("body", [""])[0]
            with db() as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text)")
                conn.execute("INSERT INTO notes (body) VALUES (%s)", [body])
            self.answer(b"written")
        elif url.path == "/read":
            with db() as conn:
                rows = conn.execute("SELECT body FROM notes ORDER BY id").fetchall()
            self.answer(json.dumps([row[0] for row in rows]).encode())
        else:
            self.answer(b"notes app")

    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Notes).serve_forever()
"""


@pytest.fixture
def notes_repo(tmp_path):
    return make_repo(
        tmp_path / "notes",
        {
            "app.py": NOTES_APP,
            "requirements.txt": "psycopg[binary]>=3.2,<4\n",
            "Procfile": "web: python app.py\n",
        },
    )


def _deploy(app):
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", log_text(deployment)
    return deployment


def _get(app, path):
    response = through_proxy(app.environment("production").hostname, path, timeout=15)
    assert response.status_code == 200, response.text
    return response.text


def test_postgres_rows_survive_redeploys_and_addon_restarts(platform, owner, notes_repo):
    app = App.objects.create(name="notes", owner=owner, repository=str(notes_repo))
    addon = wait_addon(addon_services.attach(app, "production", "postgres"))
    url = app.environment("production").env_dict()["DATABASE_URL"]
    assert url.startswith("postgres://") and f"@{addon.alias}:5432/" in url

    _deploy(app)
    assert _get(app, "/write?body=first%20note") == "written"
    _deploy(app)  # a new container: the data is in the add-on, not the app
    assert _get(app, "/read") == '["first note"]'

    addon_services.restart(addon)
    addon = wait_addon(addon)
    assert _get(app, "/read") == '["first note"]'


def test_the_database_url_is_encrypted_at_rest(platform, owner, make_app):
    app = make_app("secretdb")
    addon = wait_addon(addon_services.attach(app, "production", "postgres"))
    var = EnvVar.objects.get(environment__app=app, key="DATABASE_URL")
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM apps_envvar WHERE id = %s", [var.pk])
        stored = cursor.fetchone()[0]
        cursor.execute("SELECT password FROM apps_addon WHERE id = %s", [addon.pk])
        stored_password = cursor.fetchone()[0]
    assert addon.password not in stored and "postgres://" not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert addon.password not in stored_password
    assert var.value == addon.connection_url()


def test_mariadb_attaches_and_answers(platform, make_app):
    app = make_app("mariademo")
    addon = wait_addon(addon_services.attach(app, "production", "mariadb"))
    assert app.environment("production").env_dict()["DATABASE_URL"].startswith("mysql://")
    conn = connect(addon)
    try:
        with conn.cursor() as cursor:
            cursor.execute("CREATE TABLE t (x varchar(20))")
            cursor.execute("INSERT INTO t VALUES ('from mariadb')")
            conn.commit()
            cursor.execute("SELECT x FROM t")
            assert cursor.fetchall() == (("from mariadb",),)
    finally:
        conn.close()


def test_redis_attaches_and_answers_with_a_password_kept_out_of_argv(platform, make_app):
    app = make_app("redisdemo")
    addon = wait_addon(addon_services.attach(app, "staging", "redis"))
    container = docker.from_env().containers.get(addon.container_id)
    argv = [" ".join(container.attrs["Config"]["Cmd"] or []), *container.attrs["Args"]]
    processes = [" ".join(row) for row in container.top(ps_args="-eo pid,args")["Processes"]]
    assert any("redis-server" in line for line in processes), processes
    assert not [line for line in argv + processes if addon.password in line]
    assert app.environment("staging").env_dict()["REDIS_URL"] == addon.connection_url()
    assert "REDIS_URL" not in app.environment("production").env_dict()
    client = connect(addon)
    assert client.set("greeting", "hello") and client.get("greeting") == b"hello"
    client.close()
    import redis

    anonymous = redis.Redis(host=client.connection_pool.connection_kwargs["host"], port=6379)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("x", "1")


def test_a_second_database_for_the_same_env_var_is_refused(platform, make_app):
    app = make_app("twodbs")
    wait_addon(addon_services.attach(app, "production", "postgres"))
    with pytest.raises(Conflict) as refused:
        addon_services.attach(app, "production", "mariadb")
    assert refused.value.code == "env_var_taken"
    with pytest.raises(Conflict):
        addon_services.attach(app, "production", "postgres")


def test_detach_keeps_the_volume_unless_delete_data(platform, make_app):
    app = make_app("detachy")
    addon = wait_addon(addon_services.attach(app, "production", "redis"))
    connect(addon).set("kept", "yes")
    container = addon.container_id

    addon_services.detach(addon)
    assert "REDIS_URL" not in app.environment("production").env_dict()
    wait_for(
        lambda: not containers(id=container),
        timeout=30,
        message="the add-on container to go",
    )
    assert volume_exists(addon.volume)
    assert AddOn.objects.get(pk=addon.pk).status == "detached"

    again = wait_addon(addon_services.attach(app, "production", "redis"))  # with its data
    assert again.pk == addon.pk and connect(again).get("kept") == b"yes"

    addon_services.detach(again, delete_data=True)
    wait_for(
        lambda: not AddOn.objects.filter(pk=addon.pk).exists(),
        timeout=30,
        message="the add-on to be deleted",
    )
    assert not volume_exists(addon.volume)


def test_deleting_the_app_removes_its_addon_volumes(platform, make_app):
    app = make_app("goner")
    addon = wait_addon(addon_services.attach(app, "production", "redis"))
    services.request_cleanup(app)
    wait_for(lambda: not App.objects.filter(pk=app.pk).exists(), timeout=60, message="app deleted")
    assert not volume_exists(addon.volume)


def test_the_api_attaches_lists_restarts_and_deletes(platform, make_app, api, outsider_api):
    app = make_app("apiaddon")
    created = api.post(f"/apps/{app.name}/addons", {"kind": "redis", "environment": "production"})
    assert created.status_code == 202, created.content
    addon_id = created.json()["id"]
    wait_addon(AddOn.objects.get(pk=addon_id))
    listed = api.get(f"/apps/{app.name}/addons").json()["addons"]
    assert [(a["kind"], a["status"], a["env_var"]) for a in listed] == [
        ("redis", "running", "REDIS_URL")
    ]
    assert "url" not in listed[0]
    assert outsider_api.get(f"/apps/{app.name}/addons").status_code == 404
    assert outsider_api.delete(f"/apps/{app.name}/addons/{addon_id}").status_code == 404

    assert api.post(f"/apps/{app.name}/addons/{addon_id}/restart").status_code == 202
    wait_addon(AddOn.objects.get(pk=addon_id))
    assert api.delete(f"/apps/{app.name}/addons/{addon_id}?delete_data=maybe").status_code == 400
    assert api.delete(f"/apps/{app.name}/addons/{addon_id}?delete_data=true").status_code == 202
    wait_for(lambda: not AddOn.objects.filter(pk=addon_id).exists(), timeout=30, message="deleted")


def test_the_owner_attaches_from_the_add_ons_page(platform, make_app, owner):
    from django.test import Client

    app = make_app("pageaddon")
    browser = Client()
    browser.force_login(owner)
    assert browser.get(f"/apps/{app.name}/addons/").status_code == 200
    attached = browser.post(
        f"/apps/{app.name}/addons/attach/", {"kind": "redis", "environment": "staging"}
    )
    addon = AddOn.objects.get(environment__app=app)
    assert attached.status_code == 302 and attached.url == f"/apps/{app.name}/addons/{addon.pk}/"
    addon = wait_addon(addon)
    detail = browser.get(attached.url).content.decode()
    assert "REDIS_URL" in detail and addon.password not in detail  # masked until revealed
    status = browser.get(attached.url + "status/", headers={"HX-Request": "true"})
    assert status.status_code == 286 and "hx-trigger" not in status.content.decode()
    revealed = browser.get(attached.url + "url/").content.decode()
    assert addon.password in revealed
    again = browser.post(
        f"/apps/{app.name}/addons/attach/", {"kind": "redis", "environment": "staging"}
    )
    assert "already attached" in browser.get(again.url).content.decode()


def test_the_warden_brings_back_an_add_on_whose_container_vanished(platform, make_app):
    app = make_app("revived")
    addon = wait_addon(addon_services.attach(app, "production", "redis"))
    docker.from_env().containers.get(addon.container_id).remove(force=True)
    assert warden.reconcile(wiring.runtime(), wiring.router())["addons"] == 1
    back = wait_for(
        lambda: (
            (a := AddOn.objects.get(pk=addon.pk)).status == "running"
            and a.container_id != addon.container_id
            and a
        ),
        timeout=60,
        message="the add-on to run again",
    )
    assert docker.from_env().containers.get(back.container_id).status == "running"
    assert connect(back).ping()
    assert warden.reconcile(wiring.runtime(), wiring.router())["addons"] == 0
