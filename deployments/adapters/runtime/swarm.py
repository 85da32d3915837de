"""The Docker Swarm runtime backend (PAAS_RUNTIME=swarm; docs/swarm.md).

Each replica of an app's long-running process types (web, workers) is a Swarm service of
one task, named as its container would be: Swarm places it on a node (placement
constraints from PAAS_SWARM_CONSTRAINTS), restarts it when it dies and moves it when its
node goes. The pipeline is the Docker backend's, unchanged: it starts the new replicas,
health-checks each one by its task IP, switches the router and retires the old ones, so a
deployment whose replicas fail leaves the previous ones serving and says why. The ids it
gets back are service ids, and every container method here takes either.

Services use endpoint mode dnsrr: on this machine the virtual IP (IPVS) did not answer
across nodes, and the router reaches and balances the task IPs itself, through the overlay
gateway (overlay_gateway.py).

One-off runs, the release phase and cron runs (run_once) are one-task services that are
not restarted. An add-on is a one-task service pinned to the node it was first put on
(its volume is there); what only that node's engine can do (exec for dumps and restores,
stats, volume removal) goes there through nodes.py. Builds stay on the manager's engine,
or go to build nodes (PAAS_BUILD_QUEUE), which push to the registry.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import requests
import urllib3
from django.conf import settings
from docker.errors import DockerException, NotFound
from docker.types import (
    EndpointSpec,
    IPAMConfig,
    IPAMPool,
    Mount,
    NetworkAttachmentConfig,
    Resources,
    RestartPolicy,
    RollbackConfig,
    ServiceMode,
    UpdateConfig,
)
from docker.utils import parse_bytes

from deployments.adapters.registry import Registry, RegistryError
from deployments.adapters.runtime import (
    ContainerExited,
    ContainerInfo,
    ContainerSpec,
    Endpoint,
    EngineError,
    ImageMissing,
    RunOutcome,
    RuntimeBackendError,
)
from deployments.adapters.runtime import docker as engine
from deployments.adapters.runtime.docker import (
    CAP_DROP,
    PORT_LABEL,
    DockerRuntime,
    refuse_foreign,
)
from deployments.adapters.runtime.nodes import NodeEngines
from deployments.adapters.runtime.overlay_gateway import OverlayGateway

logger = logging.getLogger(__name__)

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
# An add-on's one task owns its data directory: the old one stops before the new one starts
# (two postmasters on one volume is what start-first would make).
ADDON_UPDATE_CONFIG = UpdateConfig(parallelism=1, order="stop-first", failure_action="pause")
ADDON_LABEL = "slipway.addon"
RESTART_DELAY = 1 * SECOND_NS
POLL_INTERVAL = 0.25
LOG_DRIVER_OPTIONS = {"max-size": "10m", "max-file": "3"}  # the Docker backend's cap
SWARM_TASK_LABEL = "com.docker.swarm.task.id"  # on a task's container
CONTAINER_ID_LENGTH = 64  # a container's id; a service's is 25 characters
# A task's states before it runs (Swarm's order), and those it ends in.
PENDING_STATES = frozenset(
    {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
)
CRASHED_STATES = frozenset({"failed", "complete", "rejected", "orphaned"})
ASSIGN_WAIT = 5.0  # a task no node can take stays unassigned: endpoint() says why later
ASSIGN_POLL = 0.05
RUN_DONE_STATES = frozenset({"complete", "failed", "shutdown", "orphaned"})
RUN_LOG_BATCH = 1000
RUN_LOG_DRAIN = 3.0  # seconds at most for a finished run's last lines to arrive
RUN_LOG_QUIET = 0.6
LABEL_CONSTRAINT = re.compile(r"node\.labels\.(?P<key>[\w.-]+)\s*==\s*(?P<value>\S+)")


class UnknownNodeLabel(RuntimeBackendError):
    """A placement constraint asks for a node label no node has: no task could ever be
    placed, so nothing is started (PAAS_SWARM_CONSTRAINTS names it)."""

    code = "placement_unknown_label"
    user_fault = True


class ServiceNotReady(RuntimeBackendError):
    """A service's tasks did not all run in time; the message holds the tasks' own errors
    (an image missing on a node, a placement no node satisfies, a crash)."""

    code = "service_not_ready"


class SwarmRuntime(DockerRuntime):
    """A one-task service for each replica of an app's web and worker processes, each
    one-off run and each add-on; the Docker backend (the manager's engine) for builds."""

    # Swarm starts a replica again on another node when its node goes: the warden then
    # routes to its new address (warden._moved_replicas).
    moves_replicas = True

    def __init__(
        self,
        client=None,
        gateway: OverlayGateway | None = None,
        constraints=None,
        registry: Registry | None = None,
        node_engines: dict[str, str] | None = None,
    ):
        super().__init__(client)
        self._gateway = gateway
        self.registry = registry
        self._node_engines = node_engines
        self._nodes: NodeEngines | None = None
        self._logged_in = False
        # (image id, repository) -> its reference by digest, pushed by this runtime
        self._published: dict[tuple[str, str], str] = {}
        self.constraints = list(
            settings.PAAS_SWARM_CONSTRAINTS if constraints is None else constraints
        )

    @property
    def gateway(self) -> OverlayGateway:
        if self._gateway is None:
            self._gateway = OverlayGateway(
                self.client,
                name=f"{settings.PAAS_INSTANCE}-overlay-gateway",
                subnet=settings.PAAS_SWARM_GATEWAY_SUBNET,
                pool=settings.PAAS_NETWORK_POOL,
                image=settings.PAAS_SWARM_GATEWAY_IMAGE,
                labels={"slipway.instance": settings.PAAS_INSTANCE},
            )
        return self._gateway

    @property
    def nodes(self) -> NodeEngines:
        if self._nodes is None:
            urls = self._node_engines
            self._nodes = NodeEngines(
                self.client, settings.PAAS_SWARM_NODE_ENGINES if urls is None else urls
            )
        return self._nodes

    # --- an app's network: an overlay the host reaches through the gateway ------------

    def ensure_network(self, name: str, labels: dict[str, str], subnet: str | None = None) -> str:
        if "slipway.app" not in labels:
            return super().ensure_network(name, labels, subnet)  # the build network
        network_id = self.ensure_overlay(name, labels, subnet)
        with _swarm_errors(f"attach the overlay gateway to {name}"):
            self.gateway.attach(name)
        return network_id

    def remove_network(self, name: str) -> bool:
        with _swarm_errors(f"detach the overlay gateway from {name}"):
            self.gateway.detach(name)
        try:
            return super().remove_network(name)
        except EngineError as exc:
            # Docker 20.10 answers 500 "network … not found" for an overlay it is removing
            # already (seen right after the last task and the gateway left it).
            if "not found" in exc.message:
                return True
            raise

    # --- an app's replicas as one-task services -----------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        if ADDON_LABEL in spec.labels:
            return self._start_addon(spec)
        if not (spec.restart and "slipway.process" in spec.labels):
            return super().start(spec)  # a run to completion
        constraints = self._constraints_for(spec)
        spec = replace(spec, image=self._pullable(spec))
        # Away from the nodes its siblings run on, while another node is free of them.
        avoid = [f"node.id!={node}" for node in self._sibling_nodes(spec)]
        kwargs = {**_service_kwargs(spec, 1), "constraints": [*constraints, *avoid]}
        with _swarm_errors(f"start service {spec.name}"):
            service_id = self._create_service(spec, kwargs)
        self._wait_assigned(service_id)
        if avoid:
            # Placed (or no node took it): the spread constraints go again, so that Swarm
            # may move the task to any node later. A change of placement alone does not
            # restart a task whose node still qualifies.
            self._set_constraints(service_id, constraints)
        return service_id

    def _create_service(self, spec: ContainerSpec, kwargs: dict) -> str:
        stale = self._service_attrs(spec.name)
        if stale is not None:  # left by an attempt that died: the docker backend's rule
            refuse_foreign(f"service {spec.name}", stale["Spec"].get("Labels"), spec.labels)
            self.client.api.remove_service(stale["ID"])
        return self.client.services.create(**kwargs).id

    def _start_addon(self, spec: ContainerSpec) -> str:
        """An add-on as a one-task service: placed by the app's constraints the first time,
        then on the node it was put on (spec.constraints: node.id==, AddOn.node), where its
        volume is. Once placed, the service itself is pinned there, so a task Swarm
        replaces (a crash, a restart) comes back to its data. Returns once its task runs:
        add-on readiness probes it at once."""
        constraints = self._constraints_for(spec)
        if not any(c.startswith("node.id==") for c in constraints) and self._volume_here(spec):
            # Made before add-ons were services: a container on the manager, data here.
            constraints = [*constraints, f"node.id=={self.nodes.own_id()}"]
        kwargs = {
            **_service_kwargs(replace(spec, image=self._pullable(spec)), 1),
            "constraints": constraints,
            "update_config": ADDON_UPDATE_CONFIG,
            "rollback_config": None,
        }
        with _swarm_errors(f"start service {spec.name}"):
            service_id = self._create_service(spec, kwargs)
        task = self._placed_task(self._service_attrs(service_id))
        pin = f"node.id=={task.get('NodeID')}"
        if task.get("NodeID") and pin not in constraints:
            self._set_constraints(service_id, [*self.constraints, pin])
        return service_id

    def _volume_here(self, spec: ContainerSpec) -> bool:
        """Whether one of its volumes is on the manager's engine already."""
        for volume in spec.volumes:
            with _swarm_errors(f"inspect volume {volume}"):
                try:
                    self.client.api.inspect_volume(volume)
                    return True
                except NotFound:
                    continue
        return False

    def node_of(self, container_id: str) -> str:
        """The id of the node its task is placed on ("" when it is not placed)."""
        if self._service_attrs(container_id) is None:
            return super().node_of(container_id)
        task = self._running_or_assigned(container_id)
        return task["NodeID"] if task else ""

    def _set_constraints(self, service_id: str, constraints: list[str]) -> None:
        """The service's spec as it is but for its placement constraints."""
        api = self.client.api
        with _swarm_errors(f"update service {service_id[:25]}"):
            current = api.inspect_service(service_id)
            spec = current["Spec"]
            spec["TaskTemplate"].setdefault("Placement", {})["Constraints"] = constraints
            response = api._post_json(
                api._url("/services/{0}/update", service_id),
                data=spec,
                params={"version": current["Version"]["Index"], "registryAuthFrom": "spec"},
            )
            api._raise_for_status(response)

    def _sibling_nodes(self, spec: ContainerSpec) -> list[str]:
        """The nodes where the other replicas of this process type of this deployment run,
        when some ready node runs none of them (else [], and Swarm picks). One-task
        services are placed one by one, and Swarm's scheduler was seen putting two of them
        on one node with another node idle."""
        keys = ("slipway.app", "slipway.environment", "slipway.deployment", "slipway.process")
        siblings = {key: spec.labels[key] for key in keys if key in spec.labels}
        with _swarm_errors("list the nodes and services"):
            nodes = {
                node["ID"]
                for node in self.client.api.nodes()
                if node["Status"]["State"] == "ready"
                and node["Spec"].get("Availability") == "active"
            }
            services = self.client.api.services(filters={"label": engine._label_filter(siblings)})
        used = set()
        for service in services:
            task = self._running_or_assigned(service["ID"])
            if task is not None:
                used.add(task["NodeID"])
        return sorted(used & nodes) if nodes - used else []

    def _running_or_assigned(self, service_id: str) -> dict | None:
        tasks = [t for t in self._tasks(service_id) if t.get("DesiredState") == "running"]
        placed = [t for t in tasks if t.get("NodeID")]
        return placed[-1] if placed else None

    def _wait_assigned(self, service_id: str) -> None:
        """Until Swarm has given the task a node (a moment, or ASSIGN_WAIT at most)."""
        deadline = time.monotonic() + ASSIGN_WAIT
        while time.monotonic() < deadline:
            if any(task.get("NodeID") for task in self._tasks(service_id)):
                return
            time.sleep(ASSIGN_POLL)

    def _constraints_for(self, spec: ContainerSpec) -> list[str]:
        """The installation's constraints and the app's. `node.labels.<key>==<value>` that
        no node matches is refused: Swarm would leave the task pending for ever (its own
        answer is "no suitable node")."""
        constraints = [*self.constraints, *spec.constraints]
        wanted = [m for c in constraints if (m := LABEL_CONSTRAINT.fullmatch(c.strip()))]
        if wanted:
            self._check_labels(wanted)
        return constraints

    def _check_labels(self, wanted: list[re.Match]) -> None:
        with _swarm_errors("list the nodes"):
            nodes = self.client.api.nodes()
        labels = [(node.get("Spec") or {}).get("Labels") or {} for node in nodes]
        for match in wanted:
            key, value = match.group("key"), match.group("value")
            if not any(node_labels.get(key) == value for node_labels in labels):
                raise UnknownNodeLabel(
                    f"the placement constraint node.labels.{key}=={value} matches no node "
                    f"(the app's placement or PAAS_SWARM_CONSTRAINTS; label a node with "
                    f"docker node update --label-add {key}={value} <node>)"
                )

    def _pullable(self, spec: ContainerSpec) -> str:
        """The image as every node can pull it: pushed to the registry and named by digest
        (the manager's credentials go with the service to the nodes); without a registry,
        the local image, which only nodes that have it can run."""
        if self.registry is None:
            return spec.image
        if self._in_registry(spec.image):  # pushed by a build node
            self._log_in()
            return spec.image
        repository = self.registry.repository(
            spec.labels.get("slipway.instance", "slipway"), spec.labels["slipway.app"]
        )
        if (spec.image, repository) in self._published:
            return self._published[spec.image, repository]
        reference = self.registry.publish(self.client, spec.image, repository)
        self._log_in()
        self._published[spec.image, repository] = reference
        return reference

    def _log_in(self) -> None:
        """The manager's credentials, which go with each service to the nodes."""
        if self._logged_in:
            return
        try:
            self.client.login(**_login_kwargs(self.registry.auth_config()))
        except (DockerException, requests.RequestException) as exc:
            raise EngineError(f"could not log in to the registry: {exc}"[:300]) from exc
        self._logged_in = True

    def _in_registry(self, image: str) -> bool:
        """A reference by digest into Slipway's registry (a build node's image)."""
        return (
            self.registry is not None
            and image.startswith(f"{self.registry.address}/")
            and "@sha256:" in image
        )

    def image_exists(self, image: str) -> bool:
        if self._in_registry(image):
            return self.registry.has(image)
        return super().image_exists(image)

    def remove_image(self, image: str) -> bool:
        """Untag it, and once untagged here, drop its registry tags and manifests too, so
        no node pulls it again (prune_images: retention follows PAAS_KEEP_IMAGES)."""
        tags, references = self._registry_names(image)
        if self._in_registry(image) and image not in references:
            references.append(image)  # pushed by a build node: perhaps never pulled here
        if not super().remove_image(image):
            return False
        self._published = {k: v for k, v in self._published.items() if v not in references}
        for reference in references:
            try:
                self.registry.delete(reference)
            except RegistryError as exc:
                logger.warning("could not delete %s from the registry: %s", reference, exc)
        for tag in tags:
            super().remove_image(tag)
        return True

    def _registry_names(self, image: str) -> tuple[list[str], list[str]]:
        """The image's tags and digests in Slipway's registry."""
        if self.registry is None:
            return [], []
        try:
            attrs = self.client.api.inspect_image(image)
        except (DockerException, requests.RequestException):
            return [], []
        prefix = f"{self.registry.address}/"
        tags = [t for t in attrs.get("RepoTags") or [] if t.startswith(prefix)]
        return tags, [d for d in attrs.get("RepoDigests") or [] if d.startswith(prefix)]

    def run_once(
        self,
        spec: ContainerSpec,
        on_line: Callable[[str], object],
        timeout: float,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> RunOutcome:
        """An app's one-off run, release phase or cron run as a one-task service that is not
        restarted, on whichever node Swarm picks: its lines go to on_line as they come (read
        through Swarm's log broker), it is removed at the deadline, once cancelled, and in
        any case at the end."""
        if "slipway.app" not in spec.labels:
            return super().run_once(spec, on_line, timeout, cancelled)
        constraints = self._constraints_for(spec)
        spec = replace(spec, image=self._pullable(spec), restart=False)
        with _swarm_errors(f"start run {spec.name}"):
            stale = self._service_attrs(spec.name)
            if stale is not None:
                refuse_foreign(f"service {spec.name}", stale["Spec"].get("Labels"), spec.labels)
                self.client.api.remove_service(stale["ID"])
            service_id = self.client.services.create(
                **{**_service_kwargs(spec, 1), "constraints": constraints}
            ).id
        try:
            return self._follow_run_task(service_id, on_line, timeout, cancelled)
        finally:
            self.remove(service_id)

    def _follow_run_task(self, service_id, on_line, timeout, cancelled) -> RunOutcome:
        watch = engine._RunWatch(timeout, cancelled)
        newest = 0
        while True:
            task = (self._tasks(service_id) or [None])[-1]
            state = task["Status"]["State"] if task else "new"
            if state == "rejected":
                raise self._not_ready(service_id, "was rejected")
            for ns, text in self.logs(service_id, since_ns=newest, limit=RUN_LOG_BATCH):
                newest = ns
                on_line(text)
            if state in RUN_DONE_STATES:
                newest = self._drain_run_logs(service_id, newest, on_line)
                code = (task["Status"].get("ContainerStatus") or {}).get("ExitCode")
                return RunOutcome(code)
            if watch.should_kill():
                return RunOutcome(
                    None, timed_out=watch.killed == "timeout", cancelled=watch.killed == "cancel"
                )
            time.sleep(POLL_INTERVAL)

    def _drain_run_logs(self, service_id: str, newest: int, on_line) -> int:
        """Lines still on their way from the task's node once it has ended: read until
        none come for a moment (at most RUN_LOG_DRAIN seconds)."""
        deadline = time.monotonic() + RUN_LOG_DRAIN
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < RUN_LOG_QUIET:
            lines = self.logs(service_id, since_ns=newest, limit=RUN_LOG_BATCH)
            for ns, text in lines:
                newest = ns
                on_line(text)
            if lines:
                quiet_since = time.monotonic()
            time.sleep(POLL_INTERVAL)
        return newest

    def endpoint(self, container_id: str, network: str, port: int | None = None) -> Endpoint:
        service = self._service_attrs(container_id)
        if service is None:
            return super().endpoint(container_id, network, port)
        task = self._placed_task(service)
        ip = _task_ip(task, network)
        if not ip:
            raise EngineError(f"service {service['Spec']['Name']} has no address on {network}")
        return Endpoint(ip, int(port or service["Spec"]["Labels"][PORT_LABEL]))

    # The Docker backend's wait_healthy, as it is, on a task: what it asks of the
    # container (a crash, its listening ports, its log tail) is asked of the task here.

    def _raise_if_crashed(self, container_id: str) -> None:
        if self._service_attrs(container_id) is None:
            return super()._raise_if_crashed(container_id)
        return self._raise_if_task_crashed(container_id)

    def listening(self, container_id: str):
        """Unknown for a task: one on another node cannot be exec'd into from here."""
        if self._service_attrs(container_id) is None:
            return super().listening(container_id)
        return None

    def _tail(self, container_id: str) -> str:
        if self._service_attrs(container_id) is None:
            return super()._tail(container_id)
        return self._service_tail(container_id)

    def wait_running(self, container_id: str, seconds: float) -> None:
        if self._service_attrs(container_id) is None:
            return super().wait_running(container_id, seconds)
        deadline = time.monotonic() + settings.PAAS_SWARM_TASK_TIMEOUT + seconds
        while True:
            self._raise_if_task_crashed(container_id)
            task = self._running_task(container_id)
            if task is not None and _seconds_in_state(task) >= seconds:
                return
            if time.monotonic() > deadline:
                raise self._not_ready(container_id, "did not keep a task running")
            time.sleep(POLL_INTERVAL)

    def stop(self, container_id: str, timeout: int = 10) -> None:
        """Scale to 0: Swarm sends SIGTERM, and SIGKILL after the service's grace period
        (PAAS_STOP_GRACE_SECONDS); returns once no task runs."""
        service = self._service_attrs(container_id)
        if service is None:
            return super().stop(container_id, timeout)
        with _swarm_errors(f"stop service {service['Spec']['Name']}"):
            self.client.services.get(service["ID"]).scale(0)
        deadline = time.monotonic() + timeout + settings.PAAS_STOP_GRACE_SECONDS + 10
        while self._running_task(container_id) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)

    def remove(self, container_id: str) -> None:
        service = self._service_attrs(container_id)
        if service is None:
            return super().remove(container_id)
        with _swarm_errors(f"remove service {service['Spec']['Name']}"):
            try:
                self.client.api.remove_service(service["ID"])
            except NotFound:
                pass

    def is_running(self, container_id: str) -> bool:
        if self._service_attrs(container_id) is None:
            return super().is_running(container_id)
        return self._running_task(container_id) is not None

    def restart_count(self, container_id: str) -> int:
        """How many of its tasks ended by themselves (Swarm keeps the last few)."""
        if self._service_attrs(container_id) is None:
            return super().restart_count(container_id)
        return sum(1 for task in self._tasks(container_id) if _crashed(task))

    def restart(self, container_id: str) -> None:
        """A new task (an add-on's after its old one stopped, an app's before), or the one
        task again after a stop; returns once it runs, as `docker restart` does (or after
        PAAS_SWARM_TASK_TIMEOUT: the caller's own check then finds it not running)."""
        service = self._service_attrs(container_id)
        if service is None:
            return super().restart(container_id)
        before = {task["ID"] for task in self._tasks(service["ID"])}
        with _swarm_errors(f"restart service {service['Spec']['Name']}"):
            model = self.client.services.get(service["ID"])
            if service["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 1) == 0:
                model.scale(1)
            else:
                model.force_update()
        deadline = time.monotonic() + settings.PAAS_SWARM_TASK_TIMEOUT
        while time.monotonic() < deadline:
            task = self._running_task(service["ID"])
            if task is not None and task["ID"] not in before:
                return
            time.sleep(POLL_INTERVAL)

    def stats(self, container_id: str) -> dict:
        """The task's container's, read from its node's engine; {} when it runs nowhere or
        on a node Slipway cannot reach (PAAS_SWARM_NODE_ENGINES)."""
        if self._service_attrs(container_id) is None:
            return super().stats(container_id)
        try:
            node_engine, local_id = self._on_its_node(container_id)
        except RuntimeBackendError as exc:
            logger.info("no stats for %s: %s", container_id[:25], exc.message)
            return {}
        return node_engine.stats(local_id)

    # --- what only the task's own node can do: commands inside it (dumps, restores) ------

    def exec_to_stream(self, container_id, command, sink, env=None):
        node_engine, local_id = self._on_its_node(container_id)
        return node_engine.exec_to_stream(local_id, command, sink, env)

    def exec_from_stream(self, container_id, command, chunks, env=None):
        node_engine, local_id = self._on_its_node(container_id)
        return node_engine.exec_from_stream(local_id, command, chunks, env)

    def _on_its_node(self, ref: str) -> tuple[DockerRuntime, str]:
        """The Docker backend on the engine that runs `ref` (a container here, or a
        service's running task on whichever node), and the container's id there."""
        if self._service_attrs(ref) is None:
            return DockerRuntime(self.client), ref
        task = self._running_task(ref)
        container = ((task or {}).get("Status") or {}).get("ContainerStatus") or {}
        if not container.get("ContainerID"):
            raise EngineError(f"service {ref[:25]} has no running task")
        return self.nodes.engine_of(task["NodeID"]), container["ContainerID"]

    # --- volumes: each node's own ----------------------------------------------------

    def ensure_volume(self, name: str, labels: dict[str, str]) -> str:
        """An add-on's: nothing yet, the node that runs its task makes the volume from the
        service's mount (with these labels). An environment's: on the manager, as ever."""
        if ADDON_LABEL in labels:
            return name
        return super().ensure_volume(name, labels)

    def remove_volume(self, name: str) -> bool:
        """From every engine Slipway reaches (the manager's and PAAS_SWARM_NODE_ENGINES');
        False while a container on one still uses it. An engine that does not answer keeps
        its copy (logged): its node is down, and the data stays there."""
        removed = True
        for node_engine in self.nodes.every_engine():
            try:
                removed = node_engine.remove_volume(name) and removed
            except RuntimeBackendError as exc:
                logger.warning("volume %s left on an engine: %s", name, exc.message)
        return removed

    def remove_volumes_with_labels(self, labels: dict[str, str]) -> int:
        names = set()
        for node_engine in self.nodes.every_engine():
            try:
                names.update(
                    v.name
                    for v in node_engine.client.volumes.list(
                        filters={"label": engine._label_filter(labels)}
                    )
                )
            except (DockerException, requests.RequestException) as exc:
                logger.warning("could not list the volumes of an engine: %s", exc)
        for name in sorted(names):
            if not self.remove_volume(name):
                raise EngineError(f"volume {name} is still in use")
        return len(names)

    def logs(self, container_id: str, since_ns: int = 0, limit: int = 200) -> list[tuple[int, str]]:
        if self._service_attrs(container_id) is None:
            return super().logs(container_id, since_ns, limit)
        with _swarm_errors(f"read logs of {container_id[:12]}"):
            raw = self.client.api.service_logs(
                container_id,
                stdout=True,
                stderr=True,
                timestamps=True,
                since=int(since_ns // 1_000_000_000),
                tail=limit if since_ns <= 0 else "all",
            )
        lines = engine._parse_lines(_joined(raw).decode("utf-8", "replace").splitlines())
        if since_ns <= 0:
            return list(lines)[-limit:]
        return engine._take_after(lines, since_ns, limit)

    def follow_logs(self, container_id: str, stream: str, since_ns: int):
        """The tasks' lines of one stream from every node (Swarm's log broker), as they
        come, until the service goes."""
        if self._service_attrs(container_id) is None:
            yield from super().follow_logs(container_id, stream, since_ns)
            return
        params = {"stdout": int(stream == "stdout"), "stderr": int(stream == "stderr")}
        params.update(timestamps=1, follow=1)
        if since_ns > 1_000:
            params["since"] = f"{(since_ns - 1_000) / 1e9:.6f}"
        api = self.client.api
        with _swarm_errors(f"follow logs of {container_id[:12]}"):
            response = api._get(
                api._url("/services/{0}/logs", container_id), params=params, stream=True
            )
            api._raise_for_status(response)
        newest = since_ns
        try:
            for ns, text in engine._parse_lines(engine._frame_lines(response.raw)):
                if ns > newest:
                    newest = ns
                    yield ns, text
        except (requests.RequestException, urllib3.exceptions.HTTPError, DockerException, OSError):
            return
        finally:
            response.close()

    def containers_with_labels(self, labels: dict[str, str]) -> list[ContainerInfo]:
        """Plain containers and services; not a service's task containers (they carry the
        service's labels too: the log collector would read each line twice)."""
        found = [
            c for c in super().containers_with_labels(labels) if SWARM_TASK_LABEL not in c.labels
        ]
        with _swarm_errors("list services"):
            services = self.client.api.services(filters={"label": engine._label_filter(labels)})
        for service in services:
            running = self._running_task(service["ID"]) is not None
            found.append(
                ContainerInfo(
                    id=service["ID"],
                    name=service["Spec"]["Name"],
                    status="running" if running else "exited",
                    labels=service["Spec"].get("Labels") or {},
                )
            )
        return found

    def remove_by_labels(self, labels: dict[str, str]) -> int:
        found = self.containers_with_labels(labels)
        for item in found:
            self.remove(item.id)
        return len(found)

    # --- tasks ----------------------------------------------------------------------

    def _service_attrs(self, ref: str) -> dict | None:
        """The service `ref` names (an id or a name); None when it is a container's."""
        if len(ref) == CONTAINER_ID_LENGTH:
            return None
        with _swarm_errors(f"inspect service {ref[:25]}"):
            try:
                return self.client.api.inspect_service(ref)
            except NotFound:
                return None

    def _tasks(self, service_id: str) -> list[dict]:
        with _swarm_errors(f"list the tasks of {service_id[:25]}"):
            tasks = self.client.api.tasks(filters={"service": service_id})
        return sorted(tasks, key=lambda task: task.get("CreatedAt", ""))

    def _running_task(self, service_id: str) -> dict | None:
        running = [
            task
            for task in self._tasks(service_id)
            if task["Status"]["State"] == "running" and task.get("DesiredState") == "running"
        ]
        return running[-1] if running else None

    def _placed_task(self, service: dict) -> dict:
        """Its running task; else its newest once past the states before running (it has
        its address then: a crashed one's tells wait_healthy where it was). Waits up to
        PAAS_SWARM_TASK_TIMEOUT: a task no node takes, or whose image a node lacks, is an
        error that says so."""
        deadline = time.monotonic() + settings.PAAS_SWARM_TASK_TIMEOUT
        while True:
            running = self._running_task(service["ID"])
            if running is not None:  # the one that answers (a moved task's new address)
                return running
            tasks = self._tasks(service["ID"])
            newest = tasks[-1] if tasks else None
            state = newest["Status"]["State"] if newest else "new"
            if state == "rejected":
                raise self._rejected(service["ID"], newest)
            if state not in PENDING_STATES:
                return newest
            if time.monotonic() > deadline:
                raise self._not_ready(service["ID"], "was not placed")
            time.sleep(POLL_INTERVAL)

    def _rejected(self, service_id: str, task: dict) -> RuntimeBackendError:
        """A task its node refused before it started: the image missing there, or else."""
        error = task["Status"].get("Err", "")
        if "No such image" in error:
            name = ((self._service_attrs(service_id) or {}).get("Spec") or {}).get("Name")
            return ImageMissing(
                f"node {task.get('NodeID', '?')[:12]} has not got the image of {name} "
                f"({error}); set PAAS_REGISTRY_ADDRESS so that nodes pull it"
            )
        return self._not_ready(service_id, "was rejected")

    def _raise_if_task_crashed(self, service_id: str) -> None:
        crashed = [task for task in self._tasks(service_id) if _crashed(task)]
        if not crashed:
            return
        if crashed[-1]["Status"]["State"] == "rejected":  # it never ran: no exit code
            raise self._rejected(service_id, crashed[-1])
        code = (crashed[-1]["Status"].get("ContainerStatus") or {}).get("ExitCode")
        raise ContainerExited(
            f"the app exited with code {code} before it answered" + engine._exit_hint(code),
            logs_tail=self._service_tail(service_id),
            exit_code=code,
        )

    def _service_tail(self, service_id: str) -> str:
        with _swarm_errors(f"read logs of {service_id[:25]}"):
            try:
                raw = self.client.api.service_logs(
                    service_id, stdout=True, stderr=True, tail=engine.TAIL_LINES
                )
            except NotFound:
                return ""
        return _joined(raw).decode("utf-8", "replace")

    def _not_ready(self, service_id: str, what: str) -> ServiceNotReady:
        errors = self._task_errors(service_id)
        return ServiceNotReady(f"service {service_id[:25]}: its task {what}{errors}")

    # --- networks -------------------------------------------------------------------

    def ensure_overlay(self, name: str, labels: dict[str, str], subnet: str | None = None) -> str:
        """An attachable overlay (tasks on every node, and plain containers, join it); an
        existing one of that name is kept unless its labels name another app."""
        with _swarm_errors(f"ensure overlay {name}"):
            found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
            if found:
                refuse_foreign(f"network {name}", found[0].attrs.get("Labels"), labels)
                return found[0].id
            ipam = None
            if subnet:
                ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)])
            network = self.client.networks.create(
                name, driver="overlay", attachable=True, labels=labels, ipam=ipam
            )
            return network.id

    def _task_errors(self, name: str) -> str:
        tasks = self._tasks(name) if self._service_attrs(name) else []
        errors = {task["Status"].get("Err") for task in tasks} - {None, ""}
        return f" (tasks say: {'; '.join(sorted(errors))})" if errors else ""


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
        "stop_grace_period": settings.PAAS_STOP_GRACE_SECONDS * SECOND_NS,
        # Named volumes are the node's own: an environment with volumes belongs on one node
        # (a placement constraint), and an add-on stays on the node it was first put on.
        "mounts": [
            Mount(path, volume, type="volume", labels=spec.labels)
            for volume, path in spec.volumes.items()
        ],
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


def _crashed(task: dict) -> bool:
    """A task that ended on its own (a crash, an exit, a refusal), not one Swarm stopped."""
    return task["Status"]["State"] in CRASHED_STATES


def _seconds_in_state(task: dict) -> float:
    stamp = engine._rfc3339_ns(task["Status"]["Timestamp"].split("+")[0])
    return (time.time_ns() - stamp) / 1e9 if stamp else 0.0


def _joined(raw) -> bytes:
    """service_logs gives bytes, or a generator of them for some API versions."""
    return raw if isinstance(raw, bytes) else b"".join(raw)


def _login_kwargs(auth: dict) -> dict:
    return {
        "username": auth["username"],
        "password": auth["password"],
        "registry": auth["serveraddress"],
    }
