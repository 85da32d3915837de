"""Volumes: a file written by one deployment is read by the next; sizes are listed; bad
mount paths are refused; data is deleted only when asked."""

import docker
import pytest
from django.conf import settings

from apps.models import App, Volume
from deployments import services
from tests.support import commit, make_repo, sample_files, through_proxy, wait_final, wait_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name, path, field",
    [
        ("data", "relative", "mount_path"),
        ("data", "/etc", "mount_path"),
        ("data", "/usr/local/x", "mount_path"),
        ("data", "/data/../etc", "mount_path"),
        ("data", "/", "mount_path"),
        ("Bad_Name", "/data", "name"),
        ("", "/data", "name"),
        ("data", "/with space", "mount_path"),
    ],
)
def test_it_refuses_bad_names_and_mount_paths(api, make_app, name, path, field):
    make_app("demo")
    response = api.post("/apps/demo/volumes", {"name": name, "mount_path": path})
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Volume.objects.exists()


def test_a_volume_name_or_path_is_used_once_per_environment(api, make_app):
    make_app("demo")
    assert (
        api.post("/apps/demo/volumes", {"name": "data", "mount_path": "/data"}).status_code == 201
    )
    assert (
        api.post("/apps/demo/volumes", {"name": "data", "mount_path": "/other"}).status_code == 409
    )
    assert (
        api.post("/apps/demo/volumes", {"name": "other", "mount_path": "/data"}).status_code == 409
    )
    assert (
        api.post(
            "/apps/demo/volumes", {"name": "data", "mount_path": "/data", "environment": "staging"}
        ).status_code
        == 201
    )


def test_a_file_survives_a_redeploy_and_the_volume_is_listed_with_its_size(
    platform, owner, tmp_path, api
):
    files = sample_files("volume", python_image=settings.PAAS_BASE_IMAGES["python"])
    repo = make_repo(tmp_path / "vol", files)
    app = App.objects.create(name="keeper", owner=owner, repository=str(repo))
    created = api.post("/apps/keeper/volumes", {"name": "data", "mount_path": "/data"})
    assert created.status_code == 201 and created.json()["redeploy_needed"]
    services.set_env_vars(app.environment("production"), {"NOTE": "written by deployment 1"})
    assert wait_final(services.queue_deployment(app, "production")).status == "succeeded"
    host = app.environment("production").hostname
    assert through_proxy(host, "/write").text == "written by deployment 1"

    commit(repo, {"server.py": files["server.py"] + "\n# a code change\n"}, "change")
    assert wait_final(services.queue_deployment(app, "production")).status == "succeeded"
    assert through_proxy(host, "/").text == "written by deployment 1"

    [listed] = api.get("/apps/keeper/volumes").json()["volumes"]
    assert listed["docker_volume"] == Volume.objects.get(name="data").docker_name
    assert listed["docker_volume"] == f"{settings.PAAS_INSTANCE}-vol-{listed['id']}"
    assert listed["size"] is None or listed["size"] >= len("written by deployment 1")


def test_removing_a_volume_keeps_its_data_unless_asked(platform, owner, api):
    app = App.objects.create(name="dropper", owner=owner, repository="https://example.com/a.git")
    client = docker.from_env()
    keep = api.post("/apps/dropper/volumes", {"name": "keep", "mount_path": "/keep"}).json()
    drop = api.post("/apps/dropper/volumes", {"name": "drop", "mount_path": "/drop"}).json()
    for volume in (keep, drop):
        client.volumes.create(volume["docker_volume"], labels=app.resource_labels)

    assert api.delete(f"/apps/dropper/volumes/{keep['id']}").json()["data_deleted"] is False
    assert (
        api.delete(f"/apps/dropper/volumes/{drop['id']}?delete_data=true").json()["data_deleted"]
        is True
    )
    wait_for(
        lambda: not client.volumes.list(filters={"name": drop["docker_volume"]}),
        timeout=30,
        message="the dropped volume's data to be deleted",
    )
    assert client.volumes.get(keep["docker_volume"])
    client.volumes.get(keep["docker_volume"]).remove()
