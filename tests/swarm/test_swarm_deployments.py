"""Deployments on the two-node lab swarm with PAAS_RUNTIME=swarm's backend: the pipeline,
unchanged, drives one-task services through SwarmRuntime, and the host's Traefik reaches
the task IPs on the app's overlay through the overlay gateway.

The pipeline runs in this process with a SwarmRuntime (the session's Celery worker uses the
Docker backend): the jobs it would queue (retiring the old deployment) are taken from
jobs._send and run here with the same runtime. Deployments reuse the lab image, which both
nodes have (there is no registry yet), as a restart, scale or rollback does.
"""

import threading
import time

import pytest
import requests
from django.conf import settings

from deployments import jobs
from deployments.adapters.router.traefik import TraefikRouter
from deployments.adapters.runtime.swarm import SwarmRuntime
from deployments.models import Deployment, Trigger
from deployments.workers import pipeline, warden
from deployments.workers.pipeline.lifecycle import retire
from tests.support import log_text, make_live_deployment, through_proxy, wait_for

from .conftest import LAB_IMAGE, run_lab

pytestmark = pytest.mark.django_db(transaction=True)

# Each task serves its own hostname (its container's id), so answers tell replicas apart.
SERVE_HOSTNAME = (
    "mkdir -p /tmp/www && hostname > /tmp/www/index.html"
    ' && exec busybox httpd -f -p "$PORT" -h /tmp/www'
)
CRASH = "echo about to fail && exit 3"
OVERLAY_POOL = "10.231.88.0/22"  # inside the lab's own 10.231.77-95
GATEWAY_SUBNET = "10.231.95.0/24"


@pytest.fixture
def swarm(lab, settings, monkeypatch):
    """A SwarmRuntime on the lab, app overlays from a pool of the lab's, its gateway
    removed afterwards; jobs the pipeline queues are kept in `swarm.queued`."""
    settings.PAAS_NETWORK_POOL = OVERLAY_POOL
    settings.PAAS_SWARM_GATEWAY_SUBNET = GATEWAY_SUBNET
    settings.PAAS_SWARM_GATEWAY_IMAGE = LAB_IMAGE
    settings.PAAS_HEALTH_TIMEOUT = 30
    runtime = SwarmRuntime()
    runtime.queued = []
    monkeypatch.setattr(jobs, "_send", lambda task, *args, **kw: runtime.queued.append(args))
    yield runtime
    _remove_instance_services(runtime)
    runtime.gateway.remove()


def _remove_instance_services(runtime: SwarmRuntime) -> None:
    labels = {"slipway.instance": settings.PAAS_INSTANCE}
    runtime.remove_by_labels(labels)
    wait_for(
        lambda: not runtime.client.api.services(filters={"label": "slipway.instance"}),
        60,
        message="the test's services to go",
    )
    for network in runtime.client.networks.list(filters={"label": "slipway.app"}):
        runtime.remove_network(network.name)


@pytest.fixture
def swarm_app(make_app, lab):
    app = make_app("swarmy", staging=False)
    image_id = lab.manager.images.get(LAB_IMAGE).id
    source = make_live_deployment(app, image_id, step_data={"processes": {"web": SERVE_HOSTNAME}})
    app.environment("production").__class__.objects.filter(pk=source.environment_id).update(
        replicas=2
    )
    app.source = source
    return app


def deploy(app, runtime, trigger=Trigger.RESTART, source=None, **fields) -> Deployment:
    """A deployment of the live image (or `source`'s) run through the whole pipeline."""
    env = app.environment("production")
    source = source or env.live_deployment
    d = app.new_deployment(env, trigger=trigger, source_deployment=source, **fields)
    pipeline.run(d.pk, runtime, TraefikRouter())
    for (queued_id,) in [args for args in runtime.queued if len(args) == 1]:
        retire(queued_id, runtime)
    runtime.queued.clear()
    return Deployment.objects.get(pk=d.pk)


def host_of(app) -> str:
    return TraefikRouter().get(app.environment("production").route_id).hosts[0]


def answering(app, requests_count: int = 30) -> set[str]:
    """The replicas (hostnames) that answered through the router."""
    seen = set()
    for _ in range(requests_count):
        response = through_proxy(host_of(app))
        assert response.status_code == 200, response.text[:200]
        seen.add(response.text.strip())
    return seen


def task_nodes(runtime: SwarmRuntime, deployment: Deployment) -> list[str]:
    return [runtime._running_task(service)["NodeID"] for service in deployment.web_containers]


def test_two_web_replicas_spread_over_both_nodes_answer_through_the_router(swarm, swarm_app, lab):
    d = deploy(swarm_app, swarm)
    assert d.status == "succeeded", log_text(d)
    assert sorted(task_nodes(swarm, d)) == sorted([lab.manager_node_id, lab.worker_node_id])
    assert len(answering(swarm_app)) == 2


def test_scale_to_three_and_back_to_one(swarm, swarm_app):
    assert deploy(swarm_app, swarm).status == "succeeded"
    env = swarm_app.environment("production")
    type(env).objects.filter(pk=env.pk).update(replicas=3)
    three = deploy(swarm_app, swarm, Trigger.SCALE)
    assert three.status == "succeeded", log_text(three)
    assert len(answering(swarm_app)) == 3
    type(env).objects.filter(pk=env.pk).update(replicas=1)
    one = deploy(swarm_app, swarm, Trigger.SCALE)
    assert one.status == "succeeded", log_text(one)
    assert len(answering(swarm_app)) == 1
    # The retired deployments' services are gone: one service left for the app.
    services = swarm.client.api.services(filters={"label": "slipway.app=swarmy"})
    assert [s["ID"] for s in services] == one.web_containers


def test_a_redeploy_under_load_fails_no_request(swarm, swarm_app):
    assert deploy(swarm_app, swarm).status == "succeeded"
    host, stop, outcomes = host_of(swarm_app), threading.Event(), []

    def load():
        session = requests.Session()  # keep-alive, as a browser is
        while not stop.is_set():
            try:
                response = session.get(
                    f"http://127.0.0.1:{settings.PAAS_PROXY_HTTP_PORT}/",
                    headers={"Host": host},
                    timeout=5,
                )
                outcomes.append(response.status_code)
            except requests.RequestException as exc:
                outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        redeployed = deploy(swarm_app, swarm)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert redeployed.status == "succeeded", log_text(redeployed)
    failed = [outcome for outcome in outcomes if outcome != 200]
    assert len(outcomes) > 100 and failed == [], (len(outcomes), failed[:5])


def test_an_update_whose_replicas_crash_fails_and_the_previous_one_keeps_serving(swarm, swarm_app):
    live = deploy(swarm_app, swarm)
    assert live.status == "succeeded"
    before = answering(swarm_app)
    # An image whose web command exits at once, as a broken release's would.
    crashing = swarm_app.new_deployment(
        swarm_app.environment("production"),
        status="failed",
        image_id=live.image_id,
        step_data={"processes": {"web": CRASH}},
    )
    failed = deploy(swarm_app, swarm, Trigger.ROLLBACK, source=crashing)
    assert failed.status == "failed"
    assert failed.error_code == "app_crashed", log_text(failed)
    assert "about to fail" in log_text(failed)
    assert answering(swarm_app) == before
    # Nothing of the failed one is left on the swarm.
    services = swarm.client.api.services(filters={"label": "slipway.app=swarmy"})
    assert sorted(s["ID"] for s in services) == sorted(live.web_containers)


@pytest.mark.stops_a_node
def test_a_node_that_fails_has_its_replicas_moved_and_the_router_repointed(swarm, swarm_app, lab):
    """Node 2's engine stops (its tasks with it): Swarm starts their replacements on node 1,
    the warden's rounds mark the app crashed, route to the new tasks and see it recover."""
    d = deploy(swarm_app, swarm)
    assert d.status == "succeeded", log_text(d)
    router = TraefikRouter()
    try:
        run_lab("node2-stop", 60)

        def serving_from_node_1_only() -> bool:
            warden.restart_crashed(swarm, router)
            warden.sync_routes(router, swarm)
            if set(task_nodes_or_none(swarm, d)) != {lab.manager_node_id}:
                return False
            try:
                return len(answering(swarm_app, 10)) == 2
            except AssertionError:  # a 503 while Traefik's checks catch up with the move
                return False

        stopped = time.monotonic()
        wait_for(serving_from_node_1_only, 120, every=2, message="both replicas on node 1")
        print(f"serving from node 1 alone {time.monotonic() - stopped:.1f}s after the stop")
        swarm_app.refresh_from_db()
        assert swarm_app.status == "running"
        text = log_text(d)
        assert "the warden is restarting it" in text and "running again" in text, text
    finally:
        run_lab("node2-start", 120)


def task_nodes_or_none(runtime: SwarmRuntime, deployment: Deployment) -> list[str | None]:
    return [
        (task or {}).get("NodeID")
        for task in (runtime._running_task(service) for service in deployment.web_containers)
    ]
