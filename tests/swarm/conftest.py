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
# The image node 2 has (swarm-lab loads it): busybox httpd to serve, busybox wget to ask.
LAB_IMAGE = "slipway/static:bookworm"
LAB_PORT = 8080
# Each task serves the id of the node it runs on ($NODE_ID is a service template,
# {{.Node.ID}}) and then $GREETING, so an answer says which node's task, of which spec.
SERVE_NODE_ID = [
    "sh",
    "-c",
    'mkdir -p /tmp/www && echo "$NODE_ID $GREETING" > /tmp/www/index.html'
    f" && exec busybox httpd -f -p {LAB_PORT} -h /tmp/www",
]
REQUEST_TIMEOUT = 30
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

    def fetch_from_manager(self, network: str, url: str) -> str:
        """GET `url` from a container on node 1 (the host's engine) attached to `network`.
        No `wget -T`: bookworm's busybox 1.35 segfaults with it; the wait bounds it."""
        client = self.manager.containers.run(
            LAB_IMAGE,
            ["busybox", "wget", "-q", "-O-", url],
            network=network,
            labels={LAB_LABEL: "1"},
            detach=True,
        )
        try:
            outcome = client.wait(timeout=REQUEST_TIMEOUT)
            output = client.logs().decode().strip()
            assert outcome["StatusCode"] == 0, f"wget {url} failed: {output}"
            return output
        finally:
            client.remove(force=True)


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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "stops_a_node: stops node 2's engine (run after this package's other tests)"
    )


def pytest_collection_modifyitems(items):
    """A test that stops a node runs after the package's others: Swarm places tasks
    differently for a while after a node comes back (seen: both tasks of a rolled-out
    service on node 1)."""
    last = [item for item in items if item.get_closest_marker("stops_a_node")]
    if not last:
        return
    package = [i for i, item in enumerate(items) if "tests/swarm/" in item.nodeid]
    others = [items[i] for i in package if items[i] not in last]
    for i, item in zip(package, others + last, strict=True):
        items[i] = item
