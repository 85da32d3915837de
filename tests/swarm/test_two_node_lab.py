"""The lab itself: a service spread over both nodes, reached across them on an overlay.

Routing goes to task IPs (endpoint mode dnsrr): on this machine the service's virtual IP
(IPVS) did not answer across nodes, so Slipway's router is to balance over the tasks itself.
"""

import uuid

import docker.types

from tests.support import wait_for

from .conftest import LAB_IMAGE, LAB_LABEL, LAB_PORT, SERVE_NODE_ID

TASK_TIMEOUT = 90  # both tasks running; node 2 has the image already, nothing is pulled


def make_overlay(lab, name: str):
    return lab.manager.networks.create(
        name, driver="overlay", attachable=True, labels={LAB_LABEL: "1"}
    )


def make_spread_service(lab, name: str, network: str):
    """Two replicas, at most one a node: one on each."""
    return lab.manager.services.create(
        LAB_IMAGE,
        SERVE_NODE_ID,
        name=name,
        env=["NODE_ID={{.Node.ID}}", "GREETING=hello"],
        labels={LAB_LABEL: "1"},
        container_labels={LAB_LABEL: "1"},
        networks=[network],
        mode=docker.types.ServiceMode("replicated", replicas=2),
        maxreplicas=1,
        endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
    )


def running_tasks(service, count: int) -> list[dict] | None:
    """The service's running tasks once there are `count` of them; None until then."""
    tasks = service.tasks({"desired-state": "running"})
    running = [task for task in tasks if task["Status"]["State"] == "running"]
    return running if len(running) == count else None


def task_ip(task: dict, network_id: str) -> str:
    for attachment in task["NetworksAttachments"]:
        if attachment["Network"]["ID"] == network_id:
            return attachment["Addresses"][0].split("/")[0]
    raise AssertionError(f"task {task['ID']} is not on network {network_id}")


def test_the_lab_has_a_manager_and_a_ready_worker(lab):
    nodes = {node.id: node.attrs for node in lab.manager.nodes.list()}
    assert set(nodes) == {lab.manager_node_id, lab.worker_node_id}
    assert nodes[lab.manager_node_id]["Spec"]["Role"] == "manager"
    assert nodes[lab.worker_node_id]["Spec"]["Role"] == "worker"
    assert nodes[lab.worker_node_id]["Status"]["State"] == "ready"


def test_a_task_on_node_2_answers_a_container_on_node_1_by_its_task_ip(lab):
    suffix = uuid.uuid4().hex[:8]
    network = make_overlay(lab, f"slipway-lab-net-{suffix}")
    service = make_spread_service(lab, f"slipway-lab-web-{suffix}", network.name)

    tasks = wait_for(lambda: running_tasks(service, 2), TASK_TIMEOUT, message="two running tasks")
    by_node = {task["NodeID"]: task_ip(task, network.id) for task in tasks}
    assert set(by_node) == {lab.manager_node_id, lab.worker_node_id}

    # Across the nodes (the point of the lab), and on node 1 itself for comparison.
    for node_id, ip in by_node.items():
        url = f"http://{ip}:{LAB_PORT}/"
        assert lab.fetch_from_manager(network.name, url) == f"{node_id} hello"
