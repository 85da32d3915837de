"""The host's way into the apps' overlay networks (PAAS_RUNTIME=swarm).

An overlay's addresses exist only inside the engines' network namespaces: the host, where
Traefik and the health checks run, has no route to a task's IP (checked on the lab). The
gateway is one idle container on the manager, on a bridge network of its own (which the
host reaches) and attached to every app's overlay. The host routes PAAS_NETWORK_POOL (the
overlays' subnets) through it; inside it, forwarding is on and what goes into the pool is
masqueraded, so a task on any node answers the gateway, which answers the host. Those two
settings are made from the host with `nsenter --net` into the container's namespace: the
container itself has no capability and no tool, and a restart (a new namespace) is healed
by the next ensure().

Measured on the lab: the host reaches tasks on both nodes by IP through it; Traefik then
balances and health-checks the task IPs itself (the service VIP did not answer).
"""

from __future__ import annotations

import ipaddress
import subprocess

from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool

from deployments.adapters.runtime import EngineError

ROLE_LABEL = "slipway.role"
ROLE = "overlay-gateway"
COMMAND_TIMEOUT = 10
FORWARD_RULES = [
    ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
    ["-i", "eth0", "-j", "ACCEPT"],
]


class OverlayGateway:
    def __init__(self, client, name: str, subnet: str, pool: str, image: str, labels: dict):
        self.client = client
        self.name = name
        self.subnet = ipaddress.ip_network(subnet)
        self.pool = str(ipaddress.ip_network(pool))
        self.image = image
        self.labels = {**labels, ROLE_LABEL: ROLE}

    def ensure(self) -> str:
        """The container running, forwarding and masquerading, and the host's route to the
        pool through it; returns the container's id."""
        self._ensure_bridge()
        container = self._ensure_container()
        self._configure(container)
        return container.id

    def attach(self, network: str) -> None:
        """Join an app's overlay (idempotent)."""
        container = self.client.containers.get(self.ensure())
        if network in (container.attrs["NetworkSettings"]["Networks"] or {}):
            return
        try:
            self.client.networks.get(network).connect(container)
        except APIError as exc:
            if "already exists" not in str(exc.explanation or ""):
                message = f"could not attach the overlay gateway to {network}: {exc}"
                raise EngineError(message) from exc

    def detach(self, network: str) -> None:
        """Leave an overlay before it is removed (an attached container keeps it alive)."""
        try:
            self.client.networks.get(network).disconnect(self.name, force=True)
        except (NotFound, APIError):
            pass

    def remove(self) -> None:
        """The container, its bridge and the host's route (tests, and a switch to docker)."""
        _run(["ip", "route", "del", self.pool], check=False)
        for remove in (
            lambda: self.client.api.remove_container(self.name, force=True),
            lambda: self.client.networks.get(self.name).remove(),
        ):
            try:
                remove()
            except NotFound:
                pass

    def _ensure_bridge(self) -> None:
        found = [n for n in self.client.networks.list(names=[self.name]) if n.name == self.name]
        if found:
            return
        gateway = str(next(self.subnet.hosts()))
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(self.subnet), gateway=gateway)])
        self.client.networks.create(self.name, driver="bridge", labels=self.labels, ipam=ipam)

    def _ensure_container(self):
        try:
            container = self.client.containers.get(self.name)
        except NotFound:
            container = self.client.containers.run(
                self.image,
                ["sleep", "2147483647"],
                name=self.name,
                labels=self.labels,
                network=self.name,
                detach=True,
                restart_policy={"Name": "unless-stopped"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mem_limit="32m",
            )
        if container.status != "running":
            container.start()
        container.reload()
        return container

    def _configure(self, container) -> None:
        pid = container.attrs["State"]["Pid"]
        address = container.attrs["NetworkSettings"]["Networks"][self.name]["IPAddress"]
        inside = ["nsenter", f"--net=/proc/{pid}/ns/net"]
        _run([*inside, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        masquerade = ["POSTROUTING", "-d", self.pool, "-j", "MASQUERADE"]
        if _run([*inside, "iptables", "-t", "nat", "-C", *masquerade], check=False) != 0:
            _run([*inside, "iptables", "-t", "nat", "-A", *masquerade])
        # Only the host's connections in (eth0: its own bridge) and their replies out: it
        # is on every app's overlay and must not carry one app's traffic to another's.
        for rule in FORWARD_RULES:
            if _run([*inside, "iptables", "-C", "FORWARD", *rule], check=False) != 0:
                _run([*inside, "iptables", "-A", "FORWARD", *rule])
        _run([*inside, "iptables", "-P", "FORWARD", "DROP"])
        _run(["ip", "route", "replace", self.pool, "via", address])


def _run(command: list[str], check: bool = True) -> int:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"overlay gateway: {command[0]} failed: {exc}") from exc
    if check and done.returncode != 0:
        raise EngineError(f"overlay gateway: {' '.join(command)}: {done.stderr.strip()[:200]}")
    return done.returncode
