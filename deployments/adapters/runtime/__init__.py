"""Runtime backends: where an app's containers run.

The pipeline and the warden talk to a `RuntimeBackend`; deployments/wiring.py builds the
configured one (Docker on this host for now; a Swarm backend would implement the same
interface). Every error carries a stable `code` and says whether the user can fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


class RuntimeBackendError(Exception):
    code = "runtime_error"
    user_fault = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class EngineError(RuntimeBackendError):
    """The container engine is down, timed out or refused a request."""

    code = "engine_unreachable"


class ForeignObject(RuntimeBackendError):
    """A volume or network of the name asked for exists and its labels name another app (or
    another installation): it is never mounted or joined."""

    code = "engine_object_taken"


class NetworkPoolExhausted(RuntimeBackendError):
    """Every subnet of PAAS_NETWORK_POOL is held by an app or overlaps an engine network."""

    code = "network_pool_exhausted"


class SubnetTaken(RuntimeBackendError):
    """The engine refused a network's subnet: another network already overlaps it."""

    code = "network_subnet_taken"


class ImageMissing(RuntimeBackendError):
    """The image to run is gone (pruned or never built): a platform problem, not the app's."""

    code = "image_missing"


class ContainerExited(RuntimeBackendError):
    """The app's process stopped before it answered a health check."""

    code = "app_crashed"
    user_fault = True

    def __init__(self, message: str, logs_tail: str, exit_code: int | None):
        super().__init__(message)
        self.logs_tail = logs_tail
        self.exit_code = exit_code


class HealthCheckFailed(RuntimeBackendError):
    """The app kept running but never answered HTTP with a status below 500 in time."""

    code = "health_check_timeout"
    user_fault = True

    def __init__(self, message: str, logs_tail: str):
        super().__init__(message)
        self.logs_tail = logs_tail


@dataclass
class ContainerSpec:
    name: str
    image: str
    env: dict[str, str]
    port: int
    labels: dict[str, str]
    network: str
    memory: str
    cpus: float
    command: list[str] | None = None
    volumes: dict[str, str] = field(default_factory=dict)  # named volume -> mount path
    aliases: list[str] = field(default_factory=list)  # extra names on `network`
    restart: bool = True  # False: no restart policy (a container that runs to completion)
    # Swarm placement constraints of the app (App.placement); the Docker backend has one host.
    constraints: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        # Env values are secrets: a spec that ends up in a log or a traceback shows keys only.
        return (
            f"ContainerSpec(name={self.name!r}, image={self.image!r}, env_keys={sorted(self.env)},"
            f" port={self.port}, network={self.network!r})"
        )


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    status: str  # the engine's word: created, running, restarting, exited, dead…
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str  # stderr (and stdout, when it is not the payload), cut to its tail

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class RunOutcome:
    """How a container run to completion (`run_once`) ended."""

    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False


@dataclass
class ImageCleanup:
    removed: list[str] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)  # kept: a running container still uses them


class RuntimeBackend(Protocol):
    # An app's network: an existing one of that name is reused whatever its subnet; a new
    # one gets `subnet` (gateway: its first host address), or one the engine picks.
    def ensure_network(
        self, name: str, labels: dict[str, str], subnet: str | None = None
    ) -> str: ...

    def network_subnet(self, name: str) -> str | None: ...  # None: no network of that name

    def used_subnets(self) -> set[str]: ...  # the IPv4 subnets of every network the engine has

    def start(self, spec: ContainerSpec) -> str: ...

    def endpoint(self, container_id: str, network: str, port: int | None = None) -> Endpoint: ...

    # A container that runs to completion: its output lines go to on_line as they come;
    # killed after `timeout` seconds or once cancelled() says so; always removed at the end.
    def run_once(
        self,
        spec: ContainerSpec,
        on_line: Callable[[str], object],
        timeout: float,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> RunOutcome: ...

    def wait_healthy(
        self,
        container_id: str,
        endpoint: Endpoint,
        path: str = "/",
        timeout: float = 60,
        log: Callable[[str], object] = print,
        on_port: Callable[[Endpoint], object] | None = None,
    ) -> float: ...

    # Raises ContainerExited unless it runs for `seconds` since it started (a worker).
    def wait_running(self, container_id: str, seconds: float) -> None: ...

    # SIGTERM (to the app's whole process group), then SIGKILL after `timeout` seconds.
    def stop(self, container_id: str, timeout: int = 10) -> None: ...

    def stop_all(self, container_ids: list[str], timeout: int = 10) -> None: ...  # at once

    def remove(self, container_id: str) -> None: ...

    def is_running(self, container_id: str) -> bool: ...

    # The id of the Swarm node it is placed on; "" on one host (or not placed yet).
    def node_of(self, container_id: str) -> str: ...

    def restart_count(self, container_id: str) -> int: ...

    def restart(self, container_id: str) -> None: ...

    def stats(self, container_id: str) -> dict: ...

    def logs(
        self, container_id: str, since_ns: int = 0, limit: int = 200
    ) -> list[tuple[int, str]]: ...

    def containers_with_labels(self, labels: dict[str, str]) -> list[ContainerInfo]: ...

    def remove_by_labels(self, labels: dict[str, str]) -> int: ...

    def remove_network(self, name: str) -> bool: ...

    def remove_images_with_labels(self, labels: dict[str, str]) -> ImageCleanup: ...

    def image_exists(self, image: str) -> bool: ...

    def remove_image(self, image: str) -> bool: ...

    # Named volumes (add-on data) and commands run inside a container (dumps, restores).

    def ensure_volume(self, name: str, labels: dict[str, str]) -> str: ...

    def remove_volume(self, name: str) -> bool: ...

    def remove_volumes_with_labels(self, labels: dict[str, str]) -> int: ...

    def volume_sizes(self, names: list[str]) -> dict[str, int | None]: ...

    def follow_logs(
        self, container_id: str, stream: str, since_ns: int
    ) -> Iterator[tuple[int, str]]: ...

    def exec_to_stream(
        self,
        container_id: str,
        command: list[str],
        sink: Callable[[bytes], object],
        env: dict[str, str] | None = None,
    ) -> ExecResult: ...

    def exec_from_stream(
        self,
        container_id: str,
        command: list[str],
        chunks: Iterable[bytes],
        env: dict[str, str] | None = None,
    ) -> ExecResult: ...
