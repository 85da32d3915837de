"""The engines of a swarm's nodes, for what only a task's own node can do.

A manager schedules tasks on every node and reads their logs through Swarm, but it cannot
exec into a container on another node, nor read its stats or remove a volume there (this is
the "This node is not a swarm manager" failure of CapRover's and Dokploy's remote
add-ons). So the platform reaches each node's engine itself, at the URL the operator gives
for it (PAAS_SWARM_NODE_ENGINES): ssh:// through the docker CLI's own SSH transport (the
way Kamal reaches its hosts), tcp:// with TLS, or unix:// (the test lab's second engine).
"""

from __future__ import annotations

import logging
import os

import docker
import requests
from docker.errors import DockerException

from deployments.adapters.runtime import RuntimeBackendError
from deployments.adapters.runtime.docker import DockerRuntime

logger = logging.getLogger(__name__)

ENGINE_TIMEOUT = 60


class NodeUnreachable(RuntimeBackendError):
    """A task runs on a node whose engine the platform has no URL for, or cannot reach."""

    code = "node_unreachable"


class NodeEngines:
    def __init__(self, manager: docker.DockerClient, urls: dict[str, str]):
        self.manager = manager
        self.urls = dict(urls)  # node hostname or id -> engine URL
        self._engines: dict[str, DockerRuntime] = {}
        self._own_id: str | None = None

    def engine_of(self, node_id: str) -> DockerRuntime:
        """The Docker backend on node `node_id`'s engine: the manager's own, or the URL
        given for its hostname (or id)."""
        if node_id == self.own_id():
            return DockerRuntime(self.manager)
        hostname = self._hostname(node_id)
        url = self.urls.get(hostname) or self.urls.get(node_id)
        if not url:
            raise NodeUnreachable(
                f"this runs on node {hostname}, whose engine Slipway cannot reach: add "
                f"{hostname}=ssh://root@<its address> to PAAS_SWARM_NODE_ENGINES"
            )
        return self._engine_at(url)

    def every_engine(self) -> list[DockerRuntime]:
        """The manager's and each listed node's that answers (for what may be on whichever
        node); one that does not is logged and left out: its node is down."""
        engines = [DockerRuntime(self.manager)]
        for url in sorted(set(self.urls.values())):
            try:
                engines.append(self._engine_at(url))
            except NodeUnreachable as exc:
                logger.warning("left out an engine: %s", exc.message)
        return engines

    def _engine_at(self, url: str) -> DockerRuntime:
        if url not in self._engines:  # one client per engine: an ssh:// one is a process
            self._engines[url] = DockerRuntime(_client(url))
        return self._engines[url]

    def own_id(self) -> str:
        if self._own_id is None:
            try:
                self._own_id = self.manager.info()["Swarm"]["NodeID"]
            except (DockerException, requests.RequestException, KeyError) as exc:
                raise NodeUnreachable(f"could not ask the manager for its node id: {exc}") from exc
        return self._own_id

    def _hostname(self, node_id: str) -> str:
        try:
            node = self.manager.api.inspect_node(node_id)
        except (DockerException, requests.RequestException) as exc:
            raise NodeUnreachable(f"could not inspect node {node_id[:12]}: {exc}"[:300]) from exc
        return (node.get("Description") or {}).get("Hostname") or node_id


def _client(url: str) -> docker.DockerClient:
    """A client for one engine URL. tcp:// is always TLS-verified (DOCKER_CERT_PATH holds
    the CA and the client's certificate): a node's engine is root on that node."""
    environment = {**os.environ, "DOCKER_HOST": url}
    if url.startswith("tcp://"):
        environment["DOCKER_TLS_VERIFY"] = "1"
    try:
        return docker.from_env(
            environment=environment,
            use_ssh_client=url.startswith("ssh://"),
            timeout=ENGINE_TIMEOUT,
        )
    except DockerException as exc:
        raise NodeUnreachable(f"could not reach the engine at {url}: {exc}"[:300]) from exc
