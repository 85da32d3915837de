"""Nothing lost, nothing stuck: a restarted Docker Engine or Redis leaves every deployment
final, every live app serving, and no orphan container.

These tests really stop and start the host's dockerd and redis-server (scripts/services
starts them again), so they run last in the session: see pytest_collection_modifyitems in
tests/conftest.py.
"""

import subprocess
import time

import pytest
from django.conf import settings

from apps.models import App
from apps.models.addons import AddOn
from deployments import services, wiring
from deployments.models import ACTIVE_STATUSES, Deployment
from deployments.services import addons as addon_services
from deployments.workers import warden
from tests import router_process
from tests.apps.addon_helpers import addon_leftovers, wait_addon  # noqa: F401 (a fixture)
from tests.support import (
    containers,
    log_text,
    make_repo,
    sample_files,
    services_command,
    through_proxy,
    wait_final,
    wait_for,
)

pytestmark = pytest.mark.restarts_services


def _dockerd_running() -> bool:
    return subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode == 0


def _stop_dockerd() -> None:
    # Wait for the process itself to end, not just the API: a new dockerd refuses to start
    # while the old one still holds its pid file.
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=False)
    wait_for(lambda: not _dockerd_running(), timeout=90, message="dockerd to exit")


def _serving(app, text: str) -> bool:
    warden.reconcile(wiring.runtime(), wiring.router())  # what the beat does every few seconds
    try:
        return text in through_proxy(app.environment("production").hostname, timeout=2).text
    except Exception:  # noqa: BLE001 - not routed yet
        return False


def _deploy_static(owner, tmp_path, name):
    repo = make_repo(tmp_path / name, sample_files("static"))
    app = App.objects.create(name=name, owner=owner, repository=str(repo))
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", log_text(deployment)
    return app


def _labelled_containers(app):
    labels = [f"{k}={v}" for k, v in app.resource_labels.items()]
    return containers(label=labels)


@pytest.mark.usefixtures("addon_leftovers")
def test_a_restarted_engine_brings_live_apps_workers_and_add_ons_back(platform, owner, tmp_path):
    files = {**sample_files("static"), "Procfile": "worker: sleep infinity\n"}
    repo = make_repo(tmp_path / "survivor", files)
    app = App.objects.create(name="survivor", owner=owner, repository=str(repo))
    addon = wait_addon(addon_services.attach(app, "production", "redis"))
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", log_text(deployment)

    _stop_dockerd()
    services_command()
    wait_for(
        lambda: _serving(app, "static says hello"), timeout=120, message="the app to serve again"
    )
    app.refresh_from_db()
    assert app.status == "running"
    runtime = wiring.runtime()
    wait_for(lambda: _running_processes(app) == ["web", "worker"], timeout=60, message="the worker")
    wait_for(
        lambda: runtime.is_running(AddOn.objects.get(pk=addon.pk).container_id),
        timeout=120,
        message="the add-on to run again",
    )
    assert wait_addon(addon).status == "running"


def _running_processes(app) -> list[str]:
    running = containers(label=f"slipway.app={app.name}", status="running")
    return sorted(
        c.labels.get("slipway.process", "") for c in running if "slipway.process" in c.labels
    )


def test_a_deployment_queued_while_the_engine_is_down_ends_final(platform, owner, tmp_path):
    app = _deploy_static(owner, tmp_path, "patient")
    _stop_dockerd()
    try:
        deployment = services.queue_deployment(app, "production")
        wait_for(
            lambda: (
                Deployment.objects.get(pk=deployment.pk).attempt >= 1
                or Deployment.objects.get(pk=deployment.pk).is_final
            ),
            timeout=60,
            message="the engine error to be seen and retried",
        )
    finally:
        services_command()
    final = wait_final(deployment, timeout=180)
    assert final.status in ("succeeded", "failed")
    if final.status == "failed":
        assert final.error_code == "engine_unreachable", final.error_code
    wait_for(lambda: _serving(app, "static says hello"), timeout=120, message="the app to serve")
    assert not Deployment.objects.filter(app=app, status__in=ACTIVE_STATUSES).exists()
    wait_for(
        lambda: len(_labelled_containers(app)) == 1,
        timeout=30,
        message="only the live container to remain",
    )


def test_a_redis_restart_loses_no_deployment(platform, owner, tmp_path):
    repo = make_repo(tmp_path / "queued", sample_files("static"))
    app = App.objects.create(name="queued", owner=owner, repository=str(repo))
    platform.kill()  # the message waits in Redis...
    deployment = services.queue_deployment(app, "production")
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], check=False)
    services_command()  # ...and a Redis restarted without saving has lost it
    platform.start()
    time.sleep(1)
    Deployment.objects.filter(pk=deployment.pk).update(
        created_at=deployment.created_at.replace(year=2000)
    )
    assert warden.reconcile(wiring.runtime(), wiring.router())["requeued"] == 1
    done = wait_final(deployment)
    assert done.status == "succeeded", log_text(done)
    assert "static says hello" in through_proxy(app.environment("production").hostname).text
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_a_killed_router_that_lost_its_files_gets_every_route_back_at_worker_start(
    platform, owner, tmp_path
):
    app = _deploy_static(owner, tmp_path, "rerouted")
    router_process.kill()
    _forget_routes()
    router_process.start()  # a fresh router, and no route of this installation on disk
    assert through_proxy(app.environment("production").hostname).status_code == 404
    platform.kill()
    platform.start()  # a worker that starts rebuilds every route from PostgreSQL
    wait_for(lambda: _serving(app, "static says hello"), timeout=60, message="the route to return")
    assert not Deployment.objects.filter(app=app, status__in=ACTIVE_STATUSES).exists()


def test_the_warden_rebuilds_routes_a_router_lost(platform, owner, tmp_path):
    app = _deploy_static(owner, tmp_path, "rebuilt")
    _forget_routes()
    wait_for(
        lambda: through_proxy(app.environment("production").hostname).status_code == 404,
        timeout=10,
        message="the router to drop the route",
    )
    assert warden.reconcile(wiring.runtime(), wiring.router())["routes"] >= 1
    wait_for(lambda: _serving(app, "static says hello"), timeout=10, message="the route to return")


def _forget_routes() -> None:
    for route_file in settings.PAAS_ROUTER_DYNAMIC_DIR.glob(f"{settings.PAAS_INSTANCE}-*"):
        route_file.unlink()
