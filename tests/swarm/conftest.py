"""The two-node swarm the Swarm backend's tests run on (scripts/swarm-lab).

One for this package's tests, made by `swarm-lab up` and always torn down by `swarm-lab
down`, pass or fail. Package scope, not session: in a full run the host engine (shared with
other test runs) is a swarm manager only while these tests run, and returns to the swarm
state it had before the rest of the suite goes on. Every object a test makes carries
LAB_LABEL and goes after the test.
"""

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import docker.errors
import pytest

from tests.support import ROOT

LAB_SCRIPT = ROOT / "scripts" / "swarm-lab"
NODE2_SOCKET = "unix:///run/slipway-node2.sock"
LAB_LABEL = "org.slipway.swarm-lab-test"
UP_TIMEOUT = 300  # node 2's dockerd start, the join, and loading an image into it
DOWN_TIMEOUT = 180


@dataclass(frozen=True)
class SwarmLab:
    manager: docker.DockerClient  # node 1: the host's own engine
    worker: docker.DockerClient  # node 2: the second dockerd, in its network namespace
    manager_node_id: str
    worker_node_id: str

    def engines(self) -> list[docker.DockerClient]:
        return [self.manager, self.worker]


def run_lab(command: str, timeout: float) -> None:
    """`scripts/swarm-lab COMMAND`; its output shows with the test's (-s or on failure)."""
    done = subprocess.run(
        [str(LAB_SCRIPT), command], capture_output=True, text=True, timeout=timeout
    )
    print(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"swarm-lab {command} failed ({done.returncode}): {done.stderr}")


def node_id(client: docker.DockerClient) -> str:
    return client.info()["Swarm"]["NodeID"]


@pytest.fixture(scope="package")
def swarm_lab() -> Iterator[SwarmLab]:
    try:
        run_lab("up", UP_TIMEOUT)
        manager = docker.from_env(timeout=60)
        worker = docker.DockerClient(base_url=NODE2_SOCKET, timeout=60)
        yield SwarmLab(manager, worker, node_id(manager), node_id(worker))
    finally:
        run_lab("down", DOWN_TIMEOUT)


def remove_lab_objects(lab: SwarmLab, timeout: float = 60) -> None:
    """Services first; their task containers go asynchronously on both nodes, and an overlay
    can be removed only once no container on it is left."""
    labelled = {"label": LAB_LABEL}
    for service in lab.manager.services.list(filters=labelled):
        with contextlib.suppress(docker.errors.NotFound):
            service.remove()
    for engine in lab.engines():
        for container in engine.containers.list(all=True, filters=labelled):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
    deadline = time.monotonic() + timeout
    while networks := lab.manager.networks.list(filters=labelled):
        for network in networks:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()
        if time.monotonic() > deadline:
            raise AssertionError(f"overlays still in use after {timeout}s: {networks}")
        time.sleep(0.5)


@pytest.fixture
def lab(swarm_lab) -> Iterator[SwarmLab]:
    """The lab swarm, with whatever a test made (labelled LAB_LABEL) removed after it."""
    try:
        yield swarm_lab
    finally:
        remove_lab_objects(swarm_lab)
