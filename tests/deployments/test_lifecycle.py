"""Promote, rollback, restart, stop/start and delete — on the real worker, dockerd and Caddy."""

import time

import docker
import pytest
from django.conf import settings

from apps.models import App
from deployments import services, wiring
from deployments.models import Deployment
from deployments.workers.cleanup import cleanup_app
from deployments.workers.pipeline.lifecycle import prune_images
from tests.support import (
    commit,
    containers,
    log_text,
    through_proxy,
    wait_final,
    wait_for,
)

pytestmark = pytest.mark.live_app("cycle", sample="python")


def _host(app, env="production"):
    return app.environment(env).hostname


def _containers(app):
    return containers(label=f"slipway.app={app.name}")


def test_promote_reuses_the_staging_image_with_production_env(live_app):
    services.set_env_vars(live_app.environment("staging"), {"GREETING": "from staging"})
    services.set_env_vars(live_app.environment("production"), {"GREETING": "from production"})
    commit(
        live_app.repo, {"app.py": (live_app.repo / "app.py").read_text().replace("v1", "v2")}, "v2"
    )
    staged = wait_final(services.queue_deployment(live_app, "staging"))
    assert through_proxy(_host(live_app, "staging")).text == "python says from staging v2"

    promoted = wait_final(services.promote(live_app))
    assert promoted.status == "succeeded", log_text(promoted)
    assert promoted.trigger == "promote" and promoted.image_id == staged.image_id
    assert promoted.commit_sha == staged.commit_sha
    assert "Step 1/" not in log_text(promoted)  # no build
    assert through_proxy(_host(live_app)).text == "python says from production v2"


def test_rollback_brings_an_earlier_image_back_without_a_build(live_app):
    first = Deployment.objects.get(app=live_app, number=1)
    commit(
        live_app.repo, {"app.py": (live_app.repo / "app.py").read_text().replace("v1", "v2")}, "v2"
    )
    assert wait_final(services.queue_deployment(live_app, "production")).status == "succeeded"
    assert through_proxy(_host(live_app)).text.endswith("v2")

    started = time.monotonic()
    back = wait_final(services.rollback(first))
    elapsed = time.monotonic() - started
    assert back.status == "succeeded", log_text(back)
    assert back.image_id == first.image_id and "Reusing the image of deployment #1" in log_text(
        back
    )
    assert through_proxy(_host(live_app)).text.endswith("v1")
    assert elapsed < 15, f"rollback took {elapsed:.1f}s"


def test_restart_starts_a_new_container_then_retires_the_old_one(live_app):
    old = Deployment.objects.get(app=live_app, number=1)
    restarted = wait_final(services.restart(live_app, "production"))
    assert restarted.status == "succeeded" and restarted.trigger == "restart"
    assert restarted.containers != old.containers
    assert through_proxy(_host(live_app)).status_code == 200
    wait_for(
        lambda: [c.id for c in _containers(live_app)] == restarted.containers,
        timeout=30,
        message="the old container to be retired after the drain",
    )


def test_stop_serves_a_stopped_page_and_start_brings_the_app_back(live_app):
    services.stop(live_app, "production")
    wait_for(lambda: through_proxy(_host(live_app)).status_code == 503, timeout=30, message="503")
    assert "stopped" in through_proxy(_host(live_app)).text
    live_app.refresh_from_db()
    wait_for(
        lambda: App.objects.get(pk=live_app.pk).status == "stopped",
        timeout=10,
        message="stopped status",
    )

    services.start(live_app, "production")
    wait_for(
        lambda: through_proxy(_host(live_app)).status_code == 200, timeout=60, message="200 again"
    )
    wait_for(
        lambda: App.objects.get(pk=live_app.pk).status == "running", timeout=10, message="running"
    )


def test_actions_on_a_missing_target_are_clear_conflicts(platform, owner, tmp_path):
    app = App.objects.create(name="nothing-live", owner=owner, repository=str(tmp_path))
    for action in (
        lambda: services.promote(app),
        lambda: services.restart(app, "production"),
        lambda: services.stop(app, "production"),
    ):
        with pytest.raises(services.Conflict):
            action()
    assert not app.deployments.exists()


def test_delete_is_refused_while_deploying_then_removes_everything(live_app, api):
    pending = services.queue_deployment(live_app, "production")
    refused = api.delete(f"/apps/{live_app.name}")
    assert refused.status_code == 409 and "in progress" in refused.json()["error"]["message"]
    wait_final(pending)
    images_before = {d.image_id for d in live_app.deployments.all() if d.image_id}

    accepted = api.delete(f"/apps/{live_app.name}")
    assert accepted.status_code == 202
    wait_for(
        lambda: not App.objects.filter(pk=live_app.pk).exists(), timeout=60, message="app deleted"
    )

    client = docker.from_env()
    labels = [f"{k}={v}" for k, v in live_app.resource_labels.items()]
    assert containers(label=labels) == []
    assert client.networks.list(names=[live_app.network]) == []
    assert client.images.list(filters={"label": labels}) == []
    remaining = {i.id for i in client.images.list()}
    assert not images_before & remaining
    assert not [
        r for r in wiring.router().route_ids() if r.startswith(f"{settings.PAAS_INSTANCE}-cycle-")
    ]


def test_cleanup_is_idempotent(live_app):
    live_app.request_cleanup()
    assert cleanup_app(live_app.pk, wiring.runtime(), wiring.router()) is True
    assert (
        cleanup_app(live_app.pk, wiring.runtime(), wiring.router()) is False
    )  # a duplicate delivery finds nothing to do


def test_the_api_drives_rollback_restart_stop_and_start(live_app, api):
    name = live_app.name
    assert api.post(f"/apps/{name}/restart", {"environment": "qa"}).status_code == 400
    queued = api.post(f"/apps/{name}/restart", {"environment": "production"})
    assert queued.status_code == 202
    wait_final(Deployment.objects.get(app=live_app, number=queued.json()["number"]))
    rolled = api.post(f"/apps/{name}/deployments/1/rollback")
    assert rolled.status_code == 202
    assert (
        wait_final(Deployment.objects.get(app=live_app, number=rolled.json()["number"])).status
        == "succeeded"
    )
    assert api.post(f"/apps/{name}/stop", {"environment": "production"}).status_code == 202
    wait_for(lambda: through_proxy(_host(live_app)).status_code == 503, timeout=30, message="503")
    assert api.post(f"/apps/{name}/start", {"environment": "production"}).status_code == 202
    wait_for(lambda: through_proxy(_host(live_app)).status_code == 200, timeout=60, message="200")
    assert api.post(f"/apps/{name}/deployments/99/rollback").status_code == 404


def test_old_images_are_pruned_and_a_rollback_to_one_is_refused_clearly(live_app):
    for before, after in (("v1", "v2"), ("v2", "v3")):
        code = (live_app.repo / "app.py").read_text().replace(before, after)
        commit(live_app.repo, {"app.py": code}, after)
        assert wait_final(services.queue_deployment(live_app, "production")).status == "succeeded"
    first, second, third = Deployment.objects.filter(app=live_app).order_by("number")
    runtime = wiring.runtime()
    # A deploy can be quicker than the drain: the first's container, retired a drain after
    # the second went live, would still hold its image (kept then, pruned by the retire).
    wait_for(
        lambda: [c.id for c in _containers(live_app)] == third.containers,
        timeout=30,
        message="the old containers to be retired after the drain",
    )

    assert prune_images(live_app, runtime, keep=2) == [first.image_tag]
    assert not runtime.image_exists(first.image_tag)
    assert runtime.image_exists(second.image_tag) and runtime.image_exists(third.image_tag)
    with pytest.raises(services.Conflict) as refused:
        services.rollback(first)
    assert refused.value.code == "image_pruned"
    assert wait_final(services.rollback(second)).status == "succeeded"
    assert prune_images(live_app, runtime, keep=2) == []  # the live image is never pruned
