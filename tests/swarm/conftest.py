"""The two-node swarm the Swarm backend's tests run on (scripts/swarm-lab).

One for this package's tests, made by `swarm-lab up` and always torn down by `swarm-lab
down`, pass or fail. Package scope, not session: in a full run the host engine (shared with
other test runs) is a swarm manager only while these tests run, and returns to the swarm
state it had before the rest of the suite goes on. Every object a test makes carries
LAB_LABEL and goes after the test.
"""

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import docker.errors
import pytest
import requests
from django.conf import settings

from apps.models import Environment
from deployments import jobs
from deployments.adapters.registry import Registry
from deployments.adapters.router.traefik import TraefikRouter
from deployments.adapters.runtime.swarm import SwarmRuntime
from deployments.models import Deployment, Trigger
from deployments.workers import pipeline
from deployments.workers.pipeline.lifecycle import retire
from tests.support import ROOT, make_live_deployment, through_proxy, wait_for

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


# --- deployments on the lab (PAAS_RUNTIME=swarm's backend, in this process) ------------

# Each task serves its own hostname (its container's id), so answers tell replicas apart.
SERVE_HOSTNAME = (
    "mkdir -p /tmp/www && hostname > /tmp/www/index.html"
    ' && exec busybox httpd -f -p "$PORT" -h /tmp/www'
)
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
    monkeypatch.setattr(
        jobs, "_send", lambda task, *args, **kw: runtime.queued.append((task, *args))
    )
    try:
        yield runtime
    finally:
        try:
            _remove_instance_services(runtime)
        finally:
            runtime.gateway.remove()  # its route into the lab's range would stop the next up


def _remove_instance_services(runtime: SwarmRuntime) -> None:
    """The test's services, then the app overlays once their tasks (removed by Swarm
    asynchronously) have left them."""
    labels = {"slipway.instance": settings.PAAS_INSTANCE}
    runtime.remove_by_labels(labels)
    wait_for(
        lambda: not runtime.client.api.services(filters={"label": "slipway.instance"}),
        60,
        message="the test's services to go",
    )

    def overlays_gone() -> bool:
        for network in runtime.client.networks.list(filters={"label": "slipway.app"}):
            runtime.remove_network(network.name)
        return not runtime.client.networks.list(filters={"label": "slipway.app"})

    wait_for(overlays_gone, 60, every=0.5, message="the app overlays to go")


def make_swarm_app(make_app, image_id: str):
    """App `swarmy` with 2 web replicas and a live deployment (no container) of image_id
    whose web process serves its hostname: deploy() runs that image again."""
    app = make_app("swarmy", staging=False)
    source = make_live_deployment(app, image_id, step_data={"processes": {"web": SERVE_HOSTNAME}})
    Environment.objects.filter(pk=source.environment_id).update(replicas=2)
    return app


@pytest.fixture
def swarm_app(make_app, lab):
    return make_swarm_app(make_app, lab.manager.images.get(LAB_IMAGE).id)


def deploy(app, runtime, trigger=Trigger.RESTART, source=None, **fields) -> Deployment:
    """A deployment of the live image (or `source`'s) run through the whole pipeline, with
    the retries it queues for itself, then the retirement it queues for the previous one."""
    env = app.environment("production")
    source = source or env.live_deployment
    d = app.new_deployment(env, trigger=trigger, source_deployment=source, **fields)
    pipeline.run(d.pk, runtime, TraefikRouter())
    while ("run_deployment", d.pk) in runtime.queued:
        runtime.queued.remove(("run_deployment", d.pk))
        pipeline.run(d.pk, runtime, TraefikRouter())
    for task, *args in runtime.queued:
        if task == "retire_deployment":
            retire(args[0], runtime)
    runtime.queued.clear()
    return Deployment.objects.get(pk=d.pk)


def host_of(app) -> str:
    return TraefikRouter().get(app.environment("production").route_id).hosts[0]


def answering(app, requests_count: int = 30) -> set[str]:
    """The replicas (hostnames) that answered through the router, once Traefik's health
    check counts every replica up: right after a switch it has been seen marking a new
    task down for up to a second (its first check failing), and retrying its requests on
    the others."""
    wait_for(lambda: all_up(app), 20, every=0.1, message="Traefik to count every replica up")
    seen = set()
    for _ in range(requests_count):
        response = through_proxy(host_of(app))
        assert response.status_code == 200, response.text[:200]
        seen.add(response.text.strip())
    return seen


def all_up(app) -> bool:
    api = f"http://127.0.0.1:{settings.PAAS_ROUTER_API_PORT}/api/http/services"
    route_id = app.environment("production").route_id
    for service in requests.get(api, timeout=5).json():
        if service["name"] == f"{route_id}@file":
            statuses = (service.get("serverStatus") or {}).values()
            return bool(statuses) and all(status == "UP" for status in statuses)
    return False


# --- Slipway's registry on the lab manager's address (scripts/services registry) -------

REGISTRY_ADDRESS = "10.231.77.1:5443"


def services(command: str, env: dict) -> None:
    done = subprocess.run(
        [str(ROOT / "scripts" / "services"), command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
    )
    print(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="package")
def registry_service(swarm_lab, tmp_path_factory) -> Iterator[Registry]:
    """One registry for the package's tests: each image is pushed (and pulled by node 2)
    once, not once per test."""
    directory = tmp_path_factory.mktemp("registry")
    env = {"PAAS_REGISTRY_ADDRESS": REGISTRY_ADDRESS, "PAAS_REGISTRY_DIR": str(directory)}
    registry = Registry(REGISTRY_ADDRESS, directory)
    try:
        services("registry", env)
        yield registry
    finally:
        services("registry-stop", env)
        registry.remove_trust()


@pytest.fixture
def registry(registry_service, lab, settings):
    settings.PAAS_REGISTRY_ADDRESS = REGISTRY_ADDRESS
    settings.PAAS_REGISTRY_DIR = registry_service.directory
    return registry_service
