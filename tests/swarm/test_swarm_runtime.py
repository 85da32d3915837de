"""The Swarm runtime backend on the lab swarm: a web process as a service, its tasks
reached by IP on the app's overlay from node 1, rolled forward and rolled back by Swarm."""

import uuid

import pytest

from deployments import wiring
from deployments.adapters.runtime import ContainerSpec
from deployments.adapters.runtime.docker import DockerRuntime
from deployments.adapters.runtime.swarm import ServiceNotReady, SwarmRuntime
from tests.support import wait_for

from .conftest import LAB_IMAGE, LAB_LABEL, LAB_PORT, SERVE_NODE_ID

TASK_TIMEOUT = 90
UPDATE_TIMEOUT = 120  # one task at a time, each watched for failure before the next
CRASH_AT_ONCE = ["sh", "-c", "exit 3"]


def web_spec(name: str, network: str, greeting: str, command=SERVE_NODE_ID) -> ContainerSpec:
    return ContainerSpec(
        name=name,
        image=LAB_IMAGE,
        env={"NODE_ID": "{{.Node.ID}}", "GREETING": greeting},
        port=LAB_PORT,
        labels={"slipway.instance": "slipwaytest", "slipway.app": "swarmlab", LAB_LABEL: "1"},
        network=network,
        memory="64m",
        cpus=0.25,
        command=command,
    )


def new_web(lab, greeting: str) -> tuple[SwarmRuntime, ContainerSpec]:
    """A runtime on the lab's manager, and a web spec on a new overlay of its own."""
    runtime = SwarmRuntime(client=lab.manager)
    suffix = uuid.uuid4().hex[:8]
    network = f"slipway-lab-app-{suffix}"
    runtime.ensure_overlay(network, {"slipway.app": "swarmlab", LAB_LABEL: "1"})
    return runtime, web_spec(f"slipway-lab-app-{suffix}-web", network, greeting)


def deployed_web(lab, greeting: str, replicas: int = 2) -> tuple[SwarmRuntime, ContainerSpec]:
    """A web service of `replicas` tasks on a new overlay, all of them running."""
    runtime, spec = new_web(lab, greeting)
    runtime.deploy_service(spec, replicas)
    runtime.wait_task_endpoints(spec.name, spec.network, replicas, TASK_TIMEOUT)
    return runtime, spec


def answers(lab, runtime: SwarmRuntime, spec: ContainerSpec) -> list[str]:
    """Each running task's answer ("<node id> <greeting>"), asked by its IP from node 1."""
    tasks = runtime.task_endpoints(spec.name, spec.network)
    return sorted(lab.fetch_from_manager(spec.network, f"http://{t.endpoint}/") for t in tasks)


def on_each_node(lab, greeting: str) -> list[str]:
    return sorted(f"{node} {greeting}" for node in (lab.manager_node_id, lab.worker_node_id))


def test_paas_runtime_swarm_wires_the_swarm_backend(settings):
    settings.PAAS_RUNTIME = "swarm"
    assert isinstance(wiring.runtime(), SwarmRuntime)
    settings.PAAS_RUNTIME = "docker"
    assert type(wiring.runtime()) is DockerRuntime


def test_the_service_asks_for_start_first_updates_rollback_dnsrr_and_limits(lab):
    _, spec = deployed_web(lab, "v1", replicas=1)
    attrs = lab.manager.services.get(spec.name).attrs["Spec"]
    assert attrs["UpdateConfig"]["Order"] == "start-first"
    assert attrs["UpdateConfig"]["FailureAction"] == "rollback"
    assert attrs["EndpointSpec"]["Mode"] == "dnsrr"
    assert attrs["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert attrs["TaskTemplate"]["Resources"]["Limits"] == {
        "NanoCPUs": 250_000_000,
        "MemoryBytes": 64 * 1024 * 1024,
    }


def test_a_web_process_with_two_replicas_has_a_task_on_each_node_reached_by_ip(lab):
    runtime, spec = deployed_web(lab, "v1")
    assert answers(lab, runtime, spec) == on_each_node(lab, "v1")


def test_a_new_spec_rolls_out_to_every_task(lab):
    runtime, spec = deployed_web(lab, "v1")
    runtime.deploy_service(web_spec(spec.name, spec.network, "v2"), replicas=2)
    wait_for(
        lambda: runtime.update_state(spec.name) == "completed",
        UPDATE_TIMEOUT,
        message="the rolling update to finish",
    )
    runtime.wait_task_endpoints(spec.name, spec.network, 2, TASK_TIMEOUT)
    # Both tasks serve the new spec. Where the new tasks go is Swarm's choice (seen: both
    # on node 1 after other tests' services on node 2 had just gone).
    assert [answer.split()[1] for answer in answers(lab, runtime, spec)] == ["v2", "v2"]


def test_a_spec_whose_tasks_crash_is_rolled_back_by_swarm(lab):
    runtime, spec = deployed_web(lab, "v1")
    crashing = web_spec(spec.name, spec.network, "v2", command=CRASH_AT_ONCE)
    runtime.deploy_service(crashing, replicas=2)
    wait_for(
        lambda: runtime.update_state(spec.name) == "rollback_completed",
        UPDATE_TIMEOUT,
        message="Swarm to roll the update back",
    )
    runtime.wait_task_endpoints(spec.name, spec.network, 2, TASK_TIMEOUT)
    assert [answer.split()[1] for answer in answers(lab, runtime, spec)] == ["v1", "v1"]


def test_tasks_that_no_node_can_take_time_out_with_swarm_s_reason(lab):
    runtime, spec = new_web(lab, "v1")
    runtime.deploy_service(spec, 1, constraints=["node.labels.slipway-lab-absent==yes"])
    with pytest.raises(ServiceNotReady, match="0 of 1 tasks running.*no suitable node"):
        runtime.wait_task_endpoints(spec.name, spec.network, 1, timeout=5)
