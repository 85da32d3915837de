"""The Docker Engine runtime backend (Docker SDK for Python), for apps on this host.

Caddy runs on the host and reaches each container by its IP on the app's user-defined
bridge network, so containers publish no ports. Env values travel only in API request
bodies and are never logged.
"""

from __future__ import annotations

import fcntl
import http.client
import ipaddress
import logging
import queue
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import docker
import requests
import urllib3
from django.conf import settings
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import EndpointConfig, IPAMConfig, IPAMPool, LogConfig
from docker.utils.socket import frames_iter

from deployments.adapters.runtime import (
    ContainerExited,
    ContainerInfo,
    ContainerSpec,
    Endpoint,
    EngineError,
    ExecResult,
    ForeignObject,
    HealthCheckFailed,
    ImageCleanup,
    ImageMissing,
    RunOutcome,
    RuntimeBackendError,
    SubnetTaken,
)
from deployments.adapters.runtime.listening import Listener, hint, other_port, parse_proc_net

logger = logging.getLogger(__name__)

PORT_LABEL = "slipway.port"  # lets endpoint() find the port without the spec
RETRY_DELAYS = (0.2, 0.5, 1.0)  # seconds before the 2nd, 3rd and 4th attempt
POLL_INTERVAL = 0.12
# The health check's first seconds poll faster: most apps answer within them, and each
# probe later than needed delays the switch (a refused connect and an inspect cost ~5 ms).
HEALTH_POLL_FAST = 0.025
HEALTH_FAST_SECONDS = 2.0
CONNECT_TIMEOUT = 0.5
MAX_READ_TIMEOUT = 5.0
TAIL_LINES = 50
# How long a crashed run's output may take to reach its log (seconds).
CRASH_LOG_WAIT = 2.0
# Docker's default set minus what no web app needs and an attacker on a shared bridge
# would like: NET_RAW (raw sockets: ARP/DNS spoofing of neighbours), MKNOD, AUDIT_WRITE.
# CHOWN/SETUID/SETGID stay: many images start as root and drop to a user (gosu, nginx).
# Binding ports >= 1024 needs no capability, and NET_BIND_SERVICE stays for the rest.
CAP_DROP = ["NET_RAW", "MKNOD", "AUDIT_WRITE"]
PIDS_LIMIT = 4096  # stops a fork bomb from taking the host; generous for threaded servers
# json-file explicitly: logs() needs a driver Docker can read back, and the size cap keeps
# a chatty app from filling the disk.
LOG_CONFIG = LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"})
CRASHED_STATES = frozenset({"exited", "dead", "restarting"})
EXEC_OUTPUT_TAIL = 8000  # characters of a command's messages kept for the caller
SEND_CHUNK = 64 * 1024
SEND_STALL = 2.0  # seconds a full socket waits before we ask whether the command still runs
READER_GRACE = 2.0
STOP_THREADS = 8
# Refused this long, the health check looks which port the app does listen on (and then
# again every PORT_SNIFF_EVERY seconds).
PORT_SNIFF_AFTER = 1.0
PORT_SNIFF_EVERY = 1.0
DOCKER_DNS = "127.0.0.11"


class DockerRuntime:
    def __init__(self, client: docker.DockerClient | None = None):
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            with _engine_errors("connect to the Docker engine"):
                self._client = docker.DockerClient(base_url=settings.PAAS_DOCKER_HOST)
        return self._client

    # --- networks -------------------------------------------------------------------

    def ensure_network(self, name: str, labels: dict[str, str], subnet: str | None = None) -> str:
        # Docker 20.10 checks network names racily (CheckDuplicate included): two
        # concurrent creates make twins, and a container then fails on an "ambiguous"
        # name. A host-wide lock serializes Slipway's creators; twins made by anyone
        # else are healed below. An existing network is kept whatever its subnet.
        with _engine_errors(f"ensure network {name}"), _host_lock("docker-networks"):
            twins = self._networks_named(name)
            if not twins:
                return self._create_network(name, labels, subnet)
            keep, *extra = sorted(twins, key=_keep_first)
            refuse_foreign(f"network {name}", keep.attrs.get("Labels"), labels)
            for network in extra:
                self._remove_if_empty(network)
            return keep.id

    def _create_network(self, name: str, labels: dict[str, str], subnet: str | None) -> str:
        # A plain bridge (not internal): Caddy on the host reaches the containers by IP.
        ipam = None
        if subnet:
            gateway = next(ipaddress.ip_network(subnet).hosts())
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=subnet, gateway=str(gateway))])
        try:
            return self.client.networks.create(name, driver="bridge", labels=labels, ipam=ipam).id
        except APIError as exc:
            if subnet and "overlaps" in str(exc.explanation or ""):
                raise SubnetTaken(
                    f"could not create network {name} on {subnet}: another network overlaps it"
                ) from exc
            raise

    def network_subnet(self, name: str) -> str | None:
        """The IPv4 subnet of the network `name`: None if there is none, "" if it has no IPv4."""
        with _engine_errors(f"inspect network {name}"):
            twins = self._networks_named(name)
        if not twins:
            return None
        subnets = _ipv4_subnets(min(twins, key=_keep_first).attrs)
        return subnets[0] if subnets else ""

    def used_subnets(self) -> set[str]:
        """The IPv4 subnets of every network on the engine, whoever made it."""
        with _engine_errors("list networks"):
            networks = self.client.api.networks()
        return {subnet for attrs in networks for subnet in _ipv4_subnets(attrs)}

    def remove_network(self, name: str) -> bool:
        """Remove the network; False when containers are still attached (remove them first)."""
        with _engine_errors(f"remove network {name}"):
            for network in self._networks_named(name):
                try:
                    network.remove()
                except NotFound:
                    pass
                except APIError as exc:
                    if exc.status_code in (403, 409):  # "has active endpoints"
                        return False
                    raise
        return True

    def _networks_named(self, name: str) -> list:
        # The names filter matches substrings: keep only the exact name.
        found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
        if len(found) > 1:
            for network in found:  # twins: inspect each to see which has containers
                network.reload()
        return found

    def _remove_if_empty(self, network) -> None:
        try:
            network.remove()
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code not in (403, 409):  # containers attached: keep it
                raise

    # --- containers -----------------------------------------------------------------

    def start(self, spec: ContainerSpec) -> str:
        attempts = len(RETRY_DELAYS) + 1
        for attempt in range(attempts):
            try:
                return self._create_and_start(spec)
            except ImageNotFound as exc:
                raise ImageMissing(f"image {spec.image} is not on this host") from exc
            except APIError as exc:
                if exc.status_code == 409:
                    with _engine_errors(f"remove a stale {spec.name}"):
                        self._remove_stale(spec)
                elif not _transient(exc) or attempt == attempts - 1:
                    raise EngineError(f"could not start {spec.name}: {_describe(exc)}") from exc
            except (DockerException, requests.RequestException) as exc:
                if attempt == attempts - 1:
                    raise EngineError(f"could not start {spec.name}: {_describe(exc)}") from exc
            if attempt < len(RETRY_DELAYS):
                logger.warning("retrying start of %s (attempt %d)", spec.name, attempt + 2)
                time.sleep(RETRY_DELAYS[attempt])
        raise EngineError(f"could not start {spec.name}: its name stayed taken")

    def _create_and_start(self, spec: ContainerSpec) -> str:
        kwargs = _create_kwargs(spec, self.client.api._version)
        container = self.client.containers.create(**kwargs)
        try:
            container.start()
        except Exception:
            # A created-but-not-started container would make the retry's create hit 409.
            self._force_remove(container.id)
            raise
        return container.id

    def _remove_stale(self, spec: ContainerSpec) -> None:
        """A 409 on create: a previous attempt left a container with this name behind."""
        try:
            stale = self.client.containers.get(spec.name)
        except NotFound:
            return  # removed meanwhile; the retry will do
        if any(stale.labels.get(k) != v for k, v in spec.labels.items()):
            raise EngineError(f"the name {spec.name} belongs to a container Slipway did not make")
        self._force_remove(stale.id)

    def _force_remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: a removal is already in progress
                raise

    def endpoint(self, container_id: str, network: str, port: int | None = None) -> Endpoint:
        """Its address on `network`, at `port` or the port it was started for."""
        with _engine_errors(f"inspect container {container_id[:12]}"):
            container = self.client.containers.get(container_id)
        networks = container.attrs["NetworkSettings"]["Networks"] or {}
        ip = (networks.get(network) or {}).get("IPAddress")
        port = port or container.labels.get(PORT_LABEL)
        if not ip or not port:
            raise EngineError(f"container {container.name} has no address on network {network}")
        return Endpoint(ip, int(port))

    def wait_healthy(
        self,
        container_id: str,
        endpoint: Endpoint,
        path: str = "/",
        timeout: float = 60,
        log: Callable[[str], object] = print,
        on_port: Callable[[Endpoint], object] | None = None,
    ) -> float:
        """Poll until the app answers HTTP below 500; returns the seconds it took.

        With `on_port`, an app that refuses connections on its port but listens on exactly
        one other port on all interfaces is probed there instead, and on_port is told. A
        timeout says what the container does listen on. A crashed container is left as it
        is (its restart policy keeps trying): the caller removes it once it has its logs.
        """
        started = time.monotonic()
        deadline = started + timeout
        log(f"Waiting for the app to answer on http://{endpoint}{path} (up to {timeout:g}s)")
        sniff_at = started + PORT_SNIFF_AFTER
        while True:
            self._raise_if_crashed(container_id)
            answer = _probe(endpoint, path, deadline - time.monotonic())
            if isinstance(answer, int) and answer < 500:
                elapsed = time.monotonic() - started
                log(f"The app answered HTTP {answer} after {elapsed:.2f}s")
                return elapsed
            if on_port and answer == "ConnectionRefusedError" and time.monotonic() > sniff_at:
                sniff_at = time.monotonic() + PORT_SNIFF_EVERY
                found = other_port(self.listening(container_id) or [], endpoint.port)
                if found:
                    log(
                        f"The app listens on port {found}, not on $PORT ({endpoint.port}): "
                        f"routing to {found}. Set the app's port to {found} to say so."
                    )
                    endpoint = Endpoint(endpoint.host, found)
                    on_port(endpoint)
                    continue
            pause = health_pause(time.monotonic() - started)
            if time.monotonic() + pause > deadline:
                raise self._timed_out(container_id, endpoint, timeout, answer)
            time.sleep(pause)

    def _timed_out(self, container_id, endpoint: Endpoint, timeout: float, answer):
        message = f"the app did not answer on port {endpoint.port} within {timeout:g}s"
        listeners = self.listening(container_id)
        if listeners is not None:
            message = f"{message}. {hint(listeners, endpoint.port)}"
        return HealthCheckFailed(f"{message} (last: {answer})", logs_tail=self._tail(container_id))

    def listening(self, container_id: str) -> list[Listener] | None:
        """The TCP sockets listening in the container, from its /proc/net/tcp{,6}; None when
        they cannot be read (an image without cat, a container gone)."""
        command = ["cat", "/proc/net/tcp", "/proc/net/tcp6"]
        try:
            exec_id = self.client.api.exec_create(container_id, command, stderr=False)["Id"]
            output = self.client.api.exec_start(exec_id)
        except (DockerException, requests.RequestException):
            return None
        listeners = parse_proc_net(output.decode("ascii", "replace"))
        # Docker's own DNS resolver listens inside every container on a user network.
        return [item for item in listeners if item.host != DOCKER_DNS]

    def _raise_if_crashed(self, container_id: str) -> None:
        with _engine_errors(f"inspect container {container_id[:12]}"):
            attrs = self.client.api.inspect_container(container_id)
        state = attrs["State"]
        # With a restart policy a crash shows as "restarting" or a new run: count both.
        if state["Status"] in CRASHED_STATES or attrs.get("RestartCount", 0) > 0:
            code = self._crash_exit_code(container_id, attrs)
            raise ContainerExited(
                f"the app exited with code {code} before it answered" + _exit_hint(code),
                logs_tail=self._crash_tail(container_id),
                exit_code=code,
            )

    def _crash_exit_code(self, container_id: str, attrs: dict) -> int | None:
        """The exit code of the run that crashed. Once the restart policy has started the
        next run, inspect shows that run's 0; the engine's `die` event keeps the real one."""
        state = attrs["State"]
        if state["Status"] != "running":
            return state.get("ExitCode")
        created = datetime.fromisoformat(attrs["Created"][:26].rstrip("Z")).replace(tzinfo=UTC)
        with _engine_errors(f"read events of {container_id[:12]}"):
            events = self.client.api.events(
                since=int(created.timestamp()) - 1,
                until=int(time.time()) + 1,
                filters={"container": container_id, "event": "die"},
                decode=True,
            )
            codes = [event["Actor"]["Attributes"].get("exitCode") for event in events]
        return int(codes[0]) if codes and codes[0] is not None else state.get("ExitCode")

    def _crash_tail(self, container_id: str) -> str:
        """The log tail of a crashed run. The engine copies a container's output to its log
        a moment after the process ends, so an empty tail is read again for a short while."""
        deadline = time.monotonic() + CRASH_LOG_WAIT
        while not (tail := self._tail(container_id)) and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        return tail

    def _tail(self, container_id: str) -> str:
        with _engine_errors(f"read logs of {container_id[:12]}"):
            raw = self.client.api.logs(container_id, stdout=True, stderr=True, tail=TAIL_LINES)
        return raw.decode("utf-8", "replace")

    def wait_running(self, container_id: str, seconds: float) -> None:
        """Return once the container has run `seconds` since it started; a crash before then
        raises ContainerExited with its output (what a worker process must pass)."""
        with _engine_errors(f"inspect container {container_id[:12]}"):
            started = self.client.api.inspect_container(container_id)["State"]["StartedAt"]
        began = _rfc3339_ns(started.split("+")[0]) or time.time_ns()
        while True:
            self._raise_if_crashed(container_id)
            left = seconds - (time.time_ns() - began) / 1e9
            if left <= 0:
                return
            time.sleep(min(POLL_INTERVAL, left))

    def stop(self, container_id: str, timeout: int = 10) -> None:
        """SIGTERM to the app (through the init), SIGKILL after `timeout` seconds."""
        with _engine_errors(f"stop container {container_id[:12]}"):
            try:
                self.client.api.stop(container_id, timeout=timeout)
            except NotFound:
                pass

    def stop_all(self, container_ids: list[str], timeout: int = 10) -> None:
        """Stop them all at once, so a retirement waits one grace period, not one each."""
        with ThreadPoolExecutor(max_workers=STOP_THREADS) as pool:
            for future in [pool.submit(self.stop, c, timeout) for c in container_ids]:
                future.result()

    def remove(self, container_id: str) -> None:
        with _engine_errors(f"remove container {container_id[:12]}"):
            self._force_remove(container_id)

    def is_running(self, container_id: str) -> bool:
        with _engine_errors(f"inspect container {container_id[:12]}"):
            try:
                state = self.client.api.inspect_container(container_id)["State"]
            except NotFound:
                return False
        return state["Status"] == "running"

    def restart_count(self, container_id: str) -> int:
        """How often the engine's restart policy restarted it since it was created (0 when
        it is gone)."""
        with _engine_errors(f"inspect container {container_id[:12]}"):
            try:
                return int(self.client.api.inspect_container(container_id).get("RestartCount", 0))
            except NotFound:
                return 0

    def restart(self, container_id: str) -> None:
        with _engine_errors(f"restart container {container_id[:12]}"):
            self.client.api.restart(container_id, timeout=10)

    def node_of(self, container_id: str) -> str:
        """The Swarm node it runs on: none, one host runs everything."""
        return ""

    def stats(self, container_id: str) -> dict:
        """CPU and memory now, as `docker stats` counts them; {} when the container is gone.
        Takes about a second: the engine samples CPU twice to get a rate."""
        with _engine_errors(f"read stats of {container_id[:12]}"):
            try:
                raw = self.client.api.stats(container_id, stream=False)
            except NotFound:
                return {}
        return container_usage(raw)

    # --- logs -----------------------------------------------------------------------

    def logs(self, container_id: str, since_ns: int = 0, limit: int = 200) -> list[tuple[int, str]]:
        """Log lines as (ns since epoch, text), oldest first, all newer than since_ns.

        Without a cursor: the last `limit` lines. With one: the first `limit` lines after
        it, so a caller paging with the last ns it saw never skips nor repeats a line.
        """
        with _engine_errors(f"read logs of {container_id[:12]}"):
            if since_ns <= 0:
                raw = self.client.api.logs(
                    container_id, stdout=True, stderr=True, timestamps=True, tail=limit
                )
                return list(_parse_lines(raw.decode("utf-8", "replace").splitlines()))[-limit:]
            return self._logs_after(container_id, since_ns, limit)

    def _logs_after(self, container_id: str, since_ns: int, limit: int) -> list[tuple[int, str]]:
        # A float of seconds cannot hold nanoseconds exactly (±0.25 µs today): ask from a
        # microsecond earlier and drop what is not strictly newer here.
        stream = self.client.api.logs(
            container_id,
            stdout=True,
            stderr=True,
            timestamps=True,
            stream=True,
            follow=False,
            since=max(since_ns - 1_000, 1) / 1e9,
        )
        try:
            return _take_after(_parse_lines(_split_lines(stream)), since_ns, limit)
        finally:
            stream.close()

    def follow_logs(
        self, container_id: str, stream: str, since_ns: int
    ) -> Iterator[tuple[int, str]]:
        """Every line of one stream ("stdout" or "stderr") printed after since_ns, as it is
        printed, until the container stops (then the iterator ends)."""
        params = {"stdout": int(stream == "stdout"), "stderr": int(stream == "stderr")}
        params.update(timestamps=1, follow=1)
        if since_ns > 1_000:  # from a microsecond earlier (seconds), then strictly newer here
            params["since"] = f"{(since_ns - 1_000) / 1e9:.6f}"
        api = self.client.api
        with _engine_errors(f"follow logs of {container_id[:12]}"):
            response = api._get(
                api._url("/containers/{0}/logs", container_id), params=params, stream=True
            )
            api._raise_for_status(response)
        newest = since_ns
        try:
            for ns, text in _parse_lines(_frame_lines(response.raw)):
                # Strictly newer than the last one: the engine replays lines when its json
                # log file rotates under a reader (seen here: 6,638 extra in a million).
                if ns > newest:
                    newest = ns
                    yield ns, text
        except (requests.RequestException, urllib3.exceptions.HTTPError, DockerException, OSError):
            return  # the engine went away: the collector follows again once it is back
        finally:
            response.close()

    # --- cleanup by labels --------------------------------------------------------------

    def containers_with_labels(self, labels: dict[str, str]) -> list[ContainerInfo]:
        with _engine_errors("list containers"):
            found = self.client.containers.list(
                all=True, sparse=True, filters={"label": _label_filter(labels)}
            )
        return [_container_info(c.attrs) for c in found]

    def remove_by_labels(self, labels: dict[str, str]) -> int:
        containers = self.containers_with_labels(labels)
        with _engine_errors("remove containers"):
            for container in containers:
                self._force_remove(container.id)
        return len(containers)

    def image_exists(self, image: str) -> bool:
        with _engine_errors("inspect image"):
            try:
                self.client.images.get(image)
                return True
            except ImageNotFound:
                return False

    def remove_image(self, image: str) -> bool:
        """Untag/remove one image; False when a container still uses it (kept for later)."""
        with _engine_errors("remove image"):
            try:
                self.client.images.remove(image)
            except NotFound:
                pass
            except APIError as exc:
                if exc.status_code != 409:
                    raise
                return False
        return True

    def remove_images_with_labels(self, labels: dict[str, str]) -> ImageCleanup:
        result = ImageCleanup()
        with _engine_errors("remove images"):
            for image in self.client.images.list(filters={"label": _label_filter(labels)}):
                try:
                    self.client.images.remove(image.id, force=True)
                    result.removed.append(image.id)
                except NotFound:
                    result.removed.append(image.id)
                except APIError as exc:
                    if exc.status_code != 409:  # 409: a running container uses it
                        raise
                    result.in_use.append(image.id)
        return result

    # --- volumes --------------------------------------------------------------------------

    def ensure_volume(self, name: str, labels: dict[str, str]) -> str:
        with _engine_errors(f"ensure volume {name}"):
            try:
                volume = self.client.volumes.get(name)
            except NotFound:
                return self.client.volumes.create(name=name, labels=labels).name
        refuse_foreign(f"volume {name}", volume.attrs.get("Labels"), labels)
        return volume.name

    def remove_volume(self, name: str) -> bool:
        """Delete a volume and its data; False while a container still uses it."""
        with _engine_errors(f"remove volume {name}"):
            try:
                self.client.api.remove_volume(name)
            except NotFound:
                pass
            except APIError as exc:
                if exc.status_code != 409:
                    raise
                return False
        return True

    def remove_volumes_with_labels(self, labels: dict[str, str]) -> int:
        with _engine_errors("list volumes"):
            volumes = self.client.volumes.list(filters={"label": _label_filter(labels)})
        removed = 0
        for volume in volumes:
            if not self.remove_volume(volume.name):
                raise EngineError(f"volume {volume.name} is still in use")
            removed += 1
        return removed

    def volume_sizes(self, names: list[str]) -> dict[str, int | None]:
        """Bytes on disk per volume name, from one disk usage report (each report walks
        every volume, so one per page, not one per volume); None when it has no figure."""
        with _engine_errors("read disk usage"):
            volumes = self.client.api.df().get("Volumes") or []
        reported = {v.get("Name"): (v.get("UsageData") or {}).get("Size", -1) for v in volumes}
        return {name: _size_or_none(reported.get(name, -1)) for name in names}

    # --- commands inside a container --------------------------------------------------------

    def exec_to_stream(
        self,
        container_id: str,
        command: list[str],
        sink: Callable[[bytes], object],
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run a command; its stdout goes to sink chunk by chunk (never whole in memory)."""
        messages = _Tail()
        with _engine_errors(f"run a command in {container_id[:12]}"):
            exec_id = self.client.api.exec_create(
                container_id, command, stdout=True, stderr=True, environment=env or {}
            )["Id"]
            for out, err in self.client.api.exec_start(exec_id, stream=True, demux=True):
                if out:
                    sink(out)
                if err:
                    messages.add(err)
            return ExecResult(self._exit_code(exec_id), messages.text())

    def exec_from_stream(
        self,
        container_id: str,
        command: list[str],
        chunks: Iterable[bytes],
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run a command fed chunks on its stdin; its output is read meanwhile, so a chatty
        command never blocks on a full pipe while we are still writing."""
        messages = _Tail()
        with _engine_errors(f"run a command in {container_id[:12]}"):
            exec_id = self.client.api.exec_create(
                container_id, command, stdin=True, stdout=True, stderr=True, environment=env or {}
            )["Id"]
            stream = self.client.api.exec_start(exec_id, socket=True)
            raw = getattr(stream, "_sock", stream)
            reader = threading.Thread(target=_drain_frames, args=(stream, messages), daemon=True)
            reader.start()
            try:
                if not _send_all(raw, chunks, lambda: self._exec_running(exec_id)):
                    # The command stopped reading (it failed early). The engine keeps the
                    # connection open all the same: give the reader a moment for the last
                    # messages, then wake it up.
                    reader.join(READER_GRACE)
                    _shutdown(raw)
                reader.join()
            finally:
                stream.close()
            return ExecResult(self._exit_code(exec_id), messages.text())

    def _exec_running(self, exec_id: str) -> bool:
        return bool(self.client.api.exec_inspect(exec_id).get("Running"))

    def _exit_code(self, exec_id: str) -> int:
        # The stream can end a moment before the engine records the exit code.
        for _ in range(50):
            state = self.client.api.exec_inspect(exec_id)
            if not state.get("Running"):
                return int(state.get("ExitCode") or 0)
            time.sleep(0.1)
        raise EngineError("a command inside the container did not finish")

    # --- containers that run to completion ---------------------------------------------------

    def run_once(
        self,
        spec: ContainerSpec,
        on_line: Callable[[str], object],
        timeout: float,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> RunOutcome:
        """Start a container from spec, hand its output lines to on_line (in this thread) as
        they come, kill it at the deadline or once cancelled() is true, and return its exit
        code. The container is removed whatever happens."""
        container_id = self.start(replace(spec, restart=False))
        try:
            with _engine_errors(f"run {spec.name}"):
                killed = self._follow_run(container_id, on_line, timeout, cancelled)
                code = self.client.api.wait(container_id, timeout=RUN_WAIT)["StatusCode"]
            return RunOutcome(code, timed_out=killed == "timeout", cancelled=killed == "cancel")
        finally:
            self.remove(container_id)

    def _follow_run(self, container_id, on_line, timeout, cancelled) -> str | None:
        """Pump the log stream until it ends (the process exited); "timeout" or "cancel"
        when it was killed for that reason."""
        lines: queue.Queue = queue.Queue()
        stream = self.client.api.logs(
            container_id, stdout=True, stderr=True, stream=True, follow=True
        )
        threading.Thread(target=_pump_lines, args=(stream, lines), daemon=True).start()
        watch = _RunWatch(timeout, cancelled)
        try:
            while (line := _next_line(lines)) is not _END:
                if line is not None:
                    on_line(line)
                if watch.killed is None and watch.should_kill():
                    self._kill(container_id)
        finally:
            stream.close()
        return watch.killed

    def _kill(self, container_id: str) -> None:
        try:
            self.client.api.kill(container_id)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: it is not running (it just ended)
                raise


# --- helpers -------------------------------------------------------------------------


_END = object()  # the log stream of a run ended: its process exited
RUN_WAIT = 60  # seconds the engine may take to report the exit code once the output ended
RUN_LINE_MAX = 16 * 1024  # a longer line without a newline is passed on in pieces
CANCEL_POLL = 1.0  # seconds between two looks at cancelled()


class _RunWatch:
    """Decides when a run_once container is to be killed: its deadline passed, or the
    caller's cancelled() (looked at about once a second) says so."""

    def __init__(self, timeout: float, cancelled: Callable[[], bool]):
        self.deadline = time.monotonic() + timeout
        self.cancelled = cancelled
        self.next_look = time.monotonic()
        self.killed: str | None = None

    def should_kill(self) -> bool:
        now = time.monotonic()
        if now >= self.deadline:
            self.killed = "timeout"
        elif now >= self.next_look:
            self.next_look = now + CANCEL_POLL
            if self.cancelled():
                self.killed = "cancel"
        return self.killed is not None


def _next_line(lines: queue.Queue):
    try:
        return lines.get(timeout=0.2)
    except queue.Empty:
        return None


def _pump_lines(stream, lines: queue.Queue) -> None:
    """The reader thread: whole lines of the stream into the queue, then _END."""
    try:
        buffer = b""
        for chunk in stream:
            buffer += chunk
            *whole, buffer = buffer.split(b"\n")
            for line in whole:
                lines.put(line.decode("utf-8", "replace").rstrip("\r"))
            while len(buffer) > RUN_LINE_MAX:
                lines.put(buffer[:RUN_LINE_MAX].decode("utf-8", "replace"))
                buffer = buffer[RUN_LINE_MAX:]
        if buffer:
            lines.put(buffer.decode("utf-8", "replace").rstrip("\r"))
    except (DockerException, requests.RequestException, OSError):
        pass  # the stream broke (the container was removed): the exit code tells the rest
    finally:
        lines.put(_END)


class _Tail:
    """The last EXEC_OUTPUT_TAIL characters of a command's messages (thread-safe enough:
    one writer)."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        while self.size > EXEC_OUTPUT_TAIL and len(self.parts) > 1:
            self.size -= len(self.parts.pop(0))

    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8", "replace")[-EXEC_OUTPUT_TAIL:]


def _send_all(raw, chunks: Iterable[bytes], still_running: Callable[[], bool]) -> bool:
    """Write everything, then EOF; False when the command stopped reading first.

    A command that exits early leaves its stdin unread while the engine holds the connection
    open, so a plain sendall would block for ever: wait for room with select, send without
    blocking, and look whether the command still runs whenever the socket stays full.
    """
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            _, writable, _ = select.select([], [raw], [], SEND_STALL)
            if not writable:
                if still_running():
                    continue
                return False
            try:
                sent = raw.send(view[:SEND_CHUNK], socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return False
            view = view[sent:]
    raw.shutdown(socket.SHUT_WR)  # end of input: the command sees EOF
    return True


def _shutdown(raw) -> None:
    try:
        raw.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _drain_frames(stream, messages: _Tail) -> None:
    try:
        for _stream_id, data in frames_iter(stream, tty=False):
            messages.add(data)
    except OSError:
        pass  # the connection closed under us: the exit code tells the outcome


def health_pause(elapsed: float) -> float:
    return HEALTH_POLL_FAST if elapsed < HEALTH_FAST_SECONDS else POLL_INTERVAL


def _create_kwargs(spec: ContainerSpec, api_version: str = "1.41") -> dict:
    kwargs = {
        "image": spec.image,
        "name": spec.name,
        "command": spec.command,
        # Sent in the JSON body, never on a command line. The init signals the app's whole
        # process group, so a stop reaches the app even when a shell runs it.
        "environment": {**spec.env, "TINI_KILL_PROCESS_GROUP": "1"},
        "labels": {**spec.labels, PORT_LABEL: str(spec.port)},
        "network": spec.network,
        "mem_limit": spec.memory,
        "nano_cpus": int(spec.cpus * 1e9),
        "pids_limit": PIDS_LIMIT,
        "restart_policy": {"Name": "unless-stopped"} if spec.restart else None,
        "privileged": False,
        "security_opt": ["no-new-privileges"],
        "cap_drop": CAP_DROP,
        # An init as PID 1 forwards SIGTERM (most servers ignore it as PID 1, so a stop
        # would wait out its timeout) and reaps zombies.
        "init": True,
        "log_config": LOG_CONFIG,
    }
    if spec.volumes:
        kwargs["volumes"] = {
            name: {"bind": path, "mode": "rw"} for name, path in spec.volumes.items()
        }
    if spec.aliases:
        endpoint = EndpointConfig(api_version, aliases=list(spec.aliases))
        kwargs["networking_config"] = {spec.network: endpoint}
    return kwargs


@contextmanager
def _host_lock(name: str) -> Iterator[None]:
    """An exclusive lock shared by every Slipway process on this host (and its threads)."""
    path = Path(settings.VAR_DIR) / "run" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _engine_errors(action: str) -> Iterator[None]:
    try:
        yield
    except RuntimeBackendError:
        raise
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(f"could not {action}: {_describe(exc)}") from exc


def _exit_hint(code: int | None) -> str:
    if code != 0:
        return ""
    return (
        ": its command finished at once and left nothing listening. Set the app's start "
        "command (or a Procfile web: line) to one that runs a server in the foreground"
    )


def _transient(exc: APIError) -> bool:
    return exc.status_code is None or exc.status_code >= 500


def _describe(exc: Exception) -> str:
    if isinstance(exc, APIError) and exc.explanation:
        return f"{exc.status_code} {exc.explanation}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def _probe(endpoint: Endpoint, path: str, remaining: float) -> int | str:
    """One GET; the HTTP status, or why there was none."""
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=CONNECT_TIMEOUT)
    try:
        conn.connect()
        conn.sock.settimeout(max(CONNECT_TIMEOUT, min(MAX_READ_TIMEOUT, remaining)))
        conn.request("GET", path, headers={"User-Agent": "slipway-health-check"})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()


FRAME_HEADER = 8  # the engine's multiplexed stream: 1 byte stream, 3 zero, 4 bytes length


def _frame_lines(raw) -> Iterator[str]:
    """The lines of a non-TTY container's multiplexed log stream, read in large pieces
    (docker-py's own reader makes two small reads per line: half the collector's time)."""
    buffer = b""
    while chunk := raw.read1(1 << 16):
        buffer += chunk
        position, end = 0, len(buffer)
        while end - position >= FRAME_HEADER:
            size = int.from_bytes(buffer[position + 4 : position + 8], "big")
            if end - position - FRAME_HEADER < size:
                break
            start = position + FRAME_HEADER
            yield buffer[start : start + size].decode("utf-8", "replace").rstrip("\n")
            position = start + size
        buffer = buffer[position:]


def _split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from (line.decode("utf-8", "replace") for line in lines)
    if buffer:
        yield buffer.decode("utf-8", "replace")


def _parse_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for line in lines:
        stamp, _, text = line.partition(" ")
        ns = _rfc3339_ns(stamp)
        if ns is not None:
            yield ns, text.rstrip("\r")


def _rfc3339_ns(stamp: str) -> int | None:
    """Docker's RFC 3339 nano timestamps (UTC, trailing zeros trimmed) to ns since epoch."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        return _epoch_seconds(whole) * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])
    except ValueError:
        return None


@lru_cache(maxsize=1024)
def _epoch_seconds(whole: str) -> int:
    # Thousands of lines share a second: parse each second once (the collector's hot path).
    return int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


def _take_after(
    lines: Iterable[tuple[int, str]], since_ns: int, limit: int
) -> list[tuple[int, str]]:
    taken: list[tuple[int, str]] = []
    for ns, text in lines:
        if ns <= since_ns:
            continue
        # Past the limit, keep lines sharing the last timestamp: the caller's next
        # cursor is that timestamp, so cutting between them would lose one for good.
        if len(taken) >= limit and ns != taken[-1][0]:
            break
        taken.append((ns, text))
    return taken


def _keep_first(network) -> tuple:
    """Of twin networks, keep one in use, then the oldest: any fixed order would do."""
    created = _rfc3339_ns(network.attrs.get("Created", "").split("+")[0]) or 0
    return (not network.attrs.get("Containers"), created, network.id)


def _ipv4_subnets(attrs: dict) -> list[str]:
    found = []
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        try:
            network = ipaddress.ip_network(config.get("Subnet") or "", strict=False)
        except ValueError:
            continue
        if network.version == 4:
            found.append(str(network))
    return found


def _label_filter(labels: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in labels.items()]


def _container_info(attrs: dict) -> ContainerInfo:
    names = attrs.get("Names") or [""]
    return ContainerInfo(
        id=attrs["Id"],
        name=names[0].lstrip("/"),
        status=attrs.get("State", ""),
        labels=attrs.get("Labels") or {},
    )


def container_usage(raw: dict) -> dict:
    """CPU % (100 = one core busy) from the two samples' deltas; memory without page cache."""
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    used = _cpu_total(cpu) - _cpu_total(pre)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    per_cpu = (cpu.get("cpu_usage") or {}).get("percpu_usage") or []
    cores = cpu.get("online_cpus") or len(per_cpu) or 1
    memory = raw.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    # Page cache can be dropped at any time: cgroup v1 reports it as total_inactive_file,
    # v2 as inactive_file (what `docker stats` subtracts too).
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    usage = memory.get("usage", 0)
    usage = usage - cache if cache < usage else usage
    limit = memory.get("limit", 0)
    return {
        "cpu_percent": round(used / system * cores * 100, 2) if used > 0 and system > 0 else 0.0,
        "memory_bytes": usage,
        "memory_limit_bytes": limit,
        "memory_percent": round(usage / limit * 100, 2) if limit else 0.0,
    }


def _cpu_total(sample: dict) -> int:
    return (sample.get("cpu_usage") or {}).get("total_usage", 0)


# The labels that say whose an engine object is: another app's volume must never be mounted
# (nor its network joined) because a name happens to match.
OWNER_LABELS = ("slipway.instance", "slipway.app")


def refuse_foreign(what: str, found: dict | None, wanted: dict[str, str]) -> None:
    found = found or {}
    for key in OWNER_LABELS:
        if key in wanted and key in found and found[key] != wanted[key]:
            raise ForeignObject(
                f"{what} already exists and belongs to {key.split('.')[1]} “{found[key]}”, "
                f"not “{wanted[key]}”; it is not reused"
            )


def _size_or_none(size) -> int | None:
    return size if isinstance(size, int) and size >= 0 else None
