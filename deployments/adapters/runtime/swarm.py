"""The Docker Swarm runtime backend (PAAS_RUNTIME=swarm): the start of issue 16.

A web process type is one Swarm service with its replicas: rolling updates start the new
task before the old one stops and roll back on their own when the new tasks fail, and a
task that dies is restarted (on another node if its own is gone). The router is to reach
the tasks by their IPs on an overlay network (endpoint mode dnsrr): on this machine the
service's virtual IP (IPVS) did not answer across nodes, and a router that knows every
task balances and health-checks them itself.

Not there yet (docs/swarm.md): the pipeline still starts one container per replica through
`start()`, which here is the Docker backend's, on the manager; the router on the host
cannot reach an overlay's addresses; images are not pushed to a registry, so a node has
only what was loaded into it. Until those land this backend runs deployments exactly as
the Docker one does, and the service methods below are what the pipeline will call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from docker.errors import DockerException, NotFound
from docker.types import (
    EndpointSpec,
    NetworkAttachmentConfig,
    Resources,
    RestartPolicy,
    RollbackConfig,
    ServiceMode,
    UpdateConfig,
)
from docker.utils import parse_bytes

from deployments.adapters.runtime import (
    ContainerSpec,
    Endpoint,
    EngineError,
    RuntimeBackendError,
)
from deployments.adapters.runtime.docker import (
    CAP_DROP,
    PORT_LABEL,
    DockerRuntime,
    refuse_foreign,
)

SECOND_NS = 1_000_000_000  # Swarm's durations are nanoseconds
# One task at a time, the new one first; a new task that fails within MONITOR of starting
# makes Swarm put the previous spec back by itself (Dokploy showed success after such a
# rollback, Dokploy#3987: the pipeline is to read UpdateStatus and say so).
UPDATE_CONFIG = UpdateConfig(
    parallelism=1,
    order="start-first",
    failure_action="rollback",
    monitor=10 * SECOND_NS,
    max_failure_ratio=0,
)
ROLLBACK_CONFIG = RollbackConfig(parallelism=1, order="start-first", failure_action="pause")
RESTART_DELAY = 1 * SECOND_NS
POLL_INTERVAL = 0.25
LOG_DRIVER_OPTIONS = {"max-size": "10m", "max-file": "3"}  # the Docker backend's cap


class ServiceNotReady(RuntimeBackendError):
    """A service's tasks did not all run in time; the message holds the tasks' own errors
    (an image missing on a node, a placement no node satisfies, a crash)."""

    code = "service_not_ready"


@dataclass(frozen=True)
class TaskEndpoint:
    """A running task of a service, where it runs and where it answers."""

    task_id: str
    node_id: str
    endpoint: Endpoint


class SwarmRuntime(DockerRuntime):
    """The Docker backend (on the manager) for everything container-level, plus services."""

    # --- networks -------------------------------------------------------------------

    def ensure_overlay(self, name: str, labels: dict[str, str]) -> str:
        """An attachable overlay (tasks on every node, and plain containers, join it); an
        existing one of that name is kept unless its labels name another app."""
        with _swarm_errors(f"ensure overlay {name}"):
            found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
            if found:
                refuse_foreign(f"network {name}", found[0].attrs.get("Labels"), labels)
                return found[0].id
            network = self.client.networks.create(
                name, driver="overlay", attachable=True, labels=labels
            )
            return network.id

    # --- services -------------------------------------------------------------------

    def deploy_service(
        self, spec: ContainerSpec, replicas: int, constraints: list[str] | None = None
    ) -> str:
        """Create the service `spec.name`, or roll it to this spec (start-first, rollback on
        failure); returns its id. `spec.network` must be an overlay. `constraints` are
        Swarm placement constraints (`node.labels.disk==ssd`)."""
        kwargs = {**_service_kwargs(spec, replicas), "constraints": constraints or []}
        with _swarm_errors(f"deploy service {spec.name}"):
            existing = self._service(spec.name)
            if existing is None:
                return self.client.services.create(**kwargs).id
            refuse_foreign(
                f"service {spec.name}", existing.attrs["Spec"].get("Labels"), spec.labels
            )
            existing.update(**kwargs)
            return existing.id

    def scale_service(self, name: str, replicas: int) -> None:
        with _swarm_errors(f"scale service {name}"):
            service = self._service(name)
            if service is None:
                raise EngineError(f"there is no service {name} to scale")
            service.scale(replicas)

    def remove_service(self, name: str) -> bool:
        """Its tasks stop and go on every node, asynchronously. False: there was none."""
        with _swarm_errors(f"remove service {name}"):
            service = self._service(name)
            if service is None:
                return False
            try:
                service.remove()
            except NotFound:
                return False
            return True

    def update_state(self, name: str) -> str | None:
        """Swarm's word on the service's last rolling update: updating, completed,
        rollback_started, rollback_completed, paused…; None before any update."""
        with _swarm_errors(f"inspect service {name}"):
            service = self._service(name)
            if service is None:
                raise EngineError(f"there is no service {name}")
        return (service.attrs.get("UpdateStatus") or {}).get("State")

    def task_endpoints(self, name: str, network: str) -> list[TaskEndpoint]:
        """The running tasks of service `name`, each with its IP on `network`."""
        with _swarm_errors(f"list the tasks of {name}"):
            service = self._service(name)
            if service is None:
                return []
            port = int(service.attrs["Spec"]["Labels"][PORT_LABEL])
            tasks = service.tasks({"desired-state": "running"})
        return [
            TaskEndpoint(task["ID"], task["NodeID"], Endpoint(ip, port))
            for task in tasks
            if task["Status"]["State"] == "running" and (ip := _task_ip(task, network))
        ]

    def wait_task_endpoints(
        self, name: str, network: str, count: int, timeout: float
    ) -> list[TaskEndpoint]:
        """Poll until `count` tasks run (not necessarily answering HTTP yet)."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.task_endpoints(name, network)
            if len(running) == count:
                return running
            if time.monotonic() + POLL_INTERVAL > deadline:
                raise ServiceNotReady(
                    f"service {name}: {len(running)} of {count} tasks running after "
                    f"{timeout:g}s{self._task_errors(name)}"
                )
            time.sleep(POLL_INTERVAL)

    def _task_errors(self, name: str) -> str:
        with _swarm_errors(f"list the tasks of {name}"):
            service = self._service(name)
            tasks = service.tasks() if service else []
        errors = {task["Status"].get("Err") for task in tasks} - {None, ""}
        return f" (tasks say: {'; '.join(sorted(errors))})" if errors else ""

    def _service(self, name: str):
        found = [s for s in self.client.services.list(filters={"name": name}) if s.name == name]
        return found[0] if found else None


def _service_kwargs(spec: ContainerSpec, replicas: int) -> dict:
    """The service for a process type: what the Docker backend gives a container (limits,
    init, dropped capabilities, capped logs), as a replicated service on the overlay."""
    labels = {**spec.labels, PORT_LABEL: str(spec.port)}
    return {
        "image": spec.image,
        # `args`, not `command`: a service's `command` replaces the image's ENTRYPOINT,
        # where `docker run`'s command (the Docker backend) replaces only its CMD.
        "args": spec.command,
        "name": spec.name,
        # Sent in the request body, never on a command line (env values are secrets).
        "env": [f"{k}={v}" for k, v in {**spec.env, "TINI_KILL_PROCESS_GROUP": "1"}.items()],
        "labels": labels,
        "container_labels": labels,
        "networks": [NetworkAttachmentConfig(spec.network, aliases=spec.aliases or None)],
        "mode": ServiceMode("replicated", replicas=replicas),
        "endpoint_spec": EndpointSpec(mode="dnsrr"),
        "update_config": UPDATE_CONFIG,
        "rollback_config": ROLLBACK_CONFIG,
        "restart_policy": RestartPolicy(
            condition="any" if spec.restart else "none", delay=RESTART_DELAY
        ),
        "resources": Resources(
            cpu_limit=int(spec.cpus * SECOND_NS), mem_limit=parse_bytes(spec.memory)
        ),
        "init": True,
        "cap_drop": CAP_DROP,
        "log_driver": "json-file",
        "log_driver_options": LOG_DRIVER_OPTIONS,
    }


def _task_ip(task: dict, network: str) -> str | None:
    for attachment in task.get("NetworksAttachments") or []:
        if attachment["Network"]["Spec"]["Name"] == network and attachment["Addresses"]:
            return attachment["Addresses"][0].split("/")[0]
    return None


@contextmanager
def _swarm_errors(action: str) -> Iterator[None]:
    try:
        yield
    except RuntimeBackendError:
        raise
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(f"could not {action}: {exc}"[:300]) from exc
