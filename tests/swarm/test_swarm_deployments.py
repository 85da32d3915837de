"""Deployments on the two-node lab swarm with PAAS_RUNTIME=swarm's backend: the pipeline,
unchanged, drives one-task services through SwarmRuntime, and the host's Traefik reaches
the task IPs on the app's overlay through the overlay gateway.

The pipeline runs in this process with a SwarmRuntime (the session's Celery worker uses the
Docker backend): the jobs it would queue (retiring the old deployment) are taken from
jobs._send and run here with the same runtime. Deployments reuse the lab image, which both
nodes have, as a restart, scale or rollback does (test_swarm_registry.py: an image
only the manager has).
"""

import subprocess
import threading
import time

import pytest
import requests
from django.conf import settings

from deployments.adapters.router.traefik import TraefikRouter
from deployments.adapters.runtime.swarm import SwarmRuntime
from deployments.models import Deployment, Trigger
from deployments.workers import warden
from tests.support import log_text, through_proxy, wait_for

from .conftest import answering, deploy, host_of, run_lab

pytestmark = pytest.mark.django_db(transaction=True)

CRASH = "echo about to fail && exit 3"


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


def test_a_constraint_on_a_node_label_puts_every_replica_on_that_node(swarm, swarm_app, lab):
    node = lab.manager.nodes.get(lab.worker_node_id)
    spec = node.attrs["Spec"]
    spec.setdefault("Labels", {})["slipway-lab-apps"] = "yes"
    node.update(spec)
    try:
        swarm.constraints = ["node.labels.slipway-lab-apps==yes"]
        d = deploy(swarm_app, swarm)
        assert d.status == "succeeded", log_text(d)
        assert task_nodes(swarm, d) == [lab.worker_node_id, lab.worker_node_id]
        assert len(answering(swarm_app)) == 2
    finally:
        node.reload()
        spec = node.attrs["Spec"]
        spec.get("Labels", {}).pop("slipway-lab-apps", None)
        node.update(spec)


def test_an_app_placement_on_a_label_no_node_has_is_refused_and_changes_nothing(swarm, swarm_app):
    live = deploy(swarm_app, swarm)
    assert live.status == "succeeded"
    type(swarm_app).objects.filter(pk=swarm_app.pk).update(
        placement="node.labels.slipway-lab-absent==yes"
    )
    refused = deploy(swarm_app, swarm)
    assert refused.status == "failed"
    assert refused.error_code == "placement_unknown_label", log_text(refused)
    assert "node.labels.slipway-lab-absent==yes matches no node" in refused.error_message
    services = swarm.client.api.services(filters={"label": "slipway.app=swarmy"})
    assert sorted(s["ID"] for s in services) == sorted(live.web_containers)
    assert len(answering(swarm_app)) == 2


def test_the_warden_heals_a_gateway_that_lost_its_settings(swarm, swarm_app):
    """As after a dockerd restart: the gateway container restarted (a new network namespace:
    no forwarding, no masquerade) and the host's route to the overlays gone."""
    assert deploy(swarm_app, swarm).status == "succeeded"
    swarm.client.containers.get(swarm.gateway.name).restart(timeout=1)
    subprocess.run(["ip", "route", "del", settings.PAAS_NETWORK_POOL], check=False)
    assert through_proxy(host_of(swarm_app)).status_code != 200  # not served
    warden.heal_gateway(swarm)
    assert len(answering(swarm_app)) == 2


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
        assert "the warden is r" in text and "running again" in text, text
    finally:
        run_lab("node2-start", 120)


def task_nodes_or_none(runtime: SwarmRuntime, deployment: Deployment) -> list[str | None]:
    return [
        (task or {}).get("NodeID")
        for task in (runtime._running_task(service) for service in deployment.web_containers)
    ]
