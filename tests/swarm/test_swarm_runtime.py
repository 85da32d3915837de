"""The Swarm runtime backend's wiring and the service it makes for a replica."""

import uuid

from deployments import wiring
from deployments.adapters.runtime import ContainerSpec
from deployments.adapters.runtime.docker import DockerRuntime
from deployments.adapters.runtime.swarm import SwarmRuntime

from .conftest import LAB_IMAGE, LAB_LABEL, LAB_PORT, SERVE_NODE_ID


def test_paas_runtime_swarm_wires_the_swarm_backend(settings):
    settings.PAAS_RUNTIME = "swarm"
    assert isinstance(wiring.runtime(), SwarmRuntime)
    settings.PAAS_RUNTIME = "docker"
    assert type(wiring.runtime()) is DockerRuntime


def test_a_replica_is_a_one_task_service_with_start_first_rollback_dnsrr_and_limits(lab):
    suffix = uuid.uuid4().hex[:8]
    network = f"slipway-lab-app-{suffix}"
    runtime = SwarmRuntime(client=lab.manager, constraints=[])
    labels = {"slipway.app": "swarmlab", LAB_LABEL: "1"}
    runtime.ensure_overlay(network, labels)
    spec = ContainerSpec(
        name=f"{network}-web",
        image=LAB_IMAGE,
        env={"NODE_ID": "{{.Node.ID}}", "GREETING": "v1"},
        port=LAB_PORT,
        labels={**labels, "slipway.instance": "slipwaytest", "slipway.process": "web"},
        network=network,
        memory="64m",
        cpus=0.25,
        command=SERVE_NODE_ID,
    )
    service_id = runtime.start(spec)
    attrs = lab.manager.services.get(service_id).attrs["Spec"]
    assert attrs["Mode"]["Replicated"]["Replicas"] == 1
    assert attrs["UpdateConfig"]["Order"] == "start-first"
    assert attrs["UpdateConfig"]["FailureAction"] == "rollback"
    assert attrs["EndpointSpec"]["Mode"] == "dnsrr"
    assert attrs["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert attrs["TaskTemplate"]["Resources"]["Limits"] == {
        "NanoCPUs": 250_000_000,
        "MemoryBytes": 64 * 1024 * 1024,
    }
    assert "NET_RAW" in attrs["TaskTemplate"]["ContainerSpec"]["CapabilityDrop"]
