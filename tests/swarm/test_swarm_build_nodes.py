"""A build node (PAAS_BUILD_QUEUE): node 2 runs `scripts/join-node build-worker`, a real
Celery worker on node 2's engine that consumes only the build queue. A deployment claimed
on the manager hands its build there; node 2 builds, pushes to the registry and hands it
back on the manager's queue; the manager's part (in this process, as in the package's other
tests) runs the image it never built on both nodes, pulled by digest.
"""

import os
import subprocess
import uuid

import pytest
import redis
from django.conf import settings

from apps.models import Environment
from deployments.adapters.router.traefik import TraefikRouter
from deployments.adapters.runtime.docker import DockerRuntime
from deployments.models import Deployment, Trigger
from deployments.workers import pipeline
from paas.celery import app as celery_app
from paas.celery import route_builds
from tests.support import ROOT, log_text, make_repo, sample_files, wait_for, worker_database_url

from .conftest import NODE2_SOCKET, OVERLAY_POOL, REGISTRY_ADDRESS, answering

pytestmark = pytest.mark.django_db(transaction=True)

JOIN_NODE = ROOT / "scripts" / "join-node"
BUILD_TIMEOUT = 240


def join_node(command: str, env: dict) -> str:
    done = subprocess.run(
        [str(JOIN_NODE), command], env=env, capture_output=True, text=True, timeout=120
    )
    print(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def build_node(swarm, registry, settings, tmp_path):
    """Node 2's build worker on a queue of this test's; yields the queue."""
    queue = f"lab-builds-{uuid.uuid4().hex[:8]}"
    settings.PAAS_BUILD_QUEUE = queue
    env = {
        **os.environ,
        "SLIPWAY_NODE_ENV": str(tmp_path / "node.env"),  # none: all from here
        "DATABASE_URL": worker_database_url(),
        "DOCKER_HOST": NODE2_SOCKET,  # its engine: PAAS_DOCKER_HOST
        "PAAS_BUILD_QUEUE": queue,
        "PAAS_REGISTRY_ADDRESS": REGISTRY_ADDRESS,
        "PAAS_REGISTRY_DIR": str(registry.directory),
        "PAAS_NETWORK_POOL": OVERLAY_POOL,
    }
    assert "consuming " + queue in join_node("build-worker", env)
    try:
        yield queue
    finally:
        join_node("build-worker-stop", env)


@pytest.fixture
def no_image_on_the_manager(lab):
    """The app's images on the manager go after the test (its tasks there pulled them);
    first in the test's arguments, so that this runs after the services are gone."""
    yield
    for image in lab.manager.images.list(filters={"label": "slipway.app=built"}):
        lab.manager.images.remove(image.id, force=True)


@pytest.fixture
def manager_queue():
    """Where the build node hands deployments back: a queue no worker consumes, read here."""
    name = f"lab-managers-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        yield name, broker
    finally:
        broker.delete(name)


def test_only_the_build_task_goes_to_the_build_queue(settings):
    settings.PAAS_BUILD_QUEUE = "builds"
    assert route_builds("deployments.tasks.build_deployment", (), {}, {}) == {"queue": "builds"}
    assert route_builds("deployments.tasks.resume_deployment", (), {}, {}) is None
    settings.PAAS_BUILD_QUEUE = ""
    assert route_builds("deployments.tasks.build_deployment", (), {}, {}) is None


def test_a_build_node_builds_and_pushes_and_the_manager_runs_it_on_both_nodes(
    no_image_on_the_manager, build_node, manager_queue, swarm, registry, make_app, lab, tmp_path
):
    swarm.registry = registry
    returns, broker = manager_queue
    repo = make_repo(tmp_path / "site", sample_files("static"))
    app = make_app("built", staging=False, repository=str(repo))
    env = app.environment("production")
    Environment.objects.filter(pk=env.pk).update(replicas=2)
    d = app.new_deployment(env, trigger=Trigger.MANUAL, branch="main")

    # The manager's worker claims it and hands the build over. This process's jobs are
    # captured (the swarm fixture), so the test sends that message itself, by name and
    # with no queue: the router of paas/celery.py puts it on the build queue, which only
    # node 2's worker consumes.
    pipeline.run(d.pk, swarm, TraefikRouter(), return_queue=returns)
    message = ("build_deployment", d.pk, returns, 0)
    assert message in swarm.queued
    celery_app.signature("deployments.tasks.build_deployment", args=message[1:]).apply_async()
    wait_for(
        lambda: broker.llen(returns) == 1 or Deployment.objects.get(pk=d.pk).status != "building",
        BUILD_TIMEOUT,
        every=1,
        message="the hand-back",
    )

    d = Deployment.objects.get(pk=d.pk)
    assert d.status == "building", log_text(d)
    assert d.image_id.startswith(f"{REGISTRY_ADDRESS}/slipwaytest/built@sha256:"), d.image_id
    assert registry.has(d.image_id)
    built = lab.worker.images.get("slipwaytest/built:1")  # on node 2's engine
    assert built.id not in {image.id for image in lab.manager.images.list()}

    # A duplicate of either message, or one for another attempt, does nothing.
    assert pipeline.build(d.pk, DockerRuntime(lab.worker), registry, returns, 0) == "gone"
    assert pipeline.resume(d.pk, swarm, TraefikRouter(), attempt=1) == "gone"

    # The manager's part: release, start, health check, switch, on both nodes.
    pipeline.resume(d.pk, swarm, TraefikRouter(), attempt=0)
    d = Deployment.objects.get(pk=d.pk)
    assert d.status == "succeeded", log_text(d)
    assert {swarm.node_of(service) for service in d.web_containers} == {
        lab.manager_node_id,
        lab.worker_node_id,
    }
    assert "static says hello" in next(iter(answering(app)))
