"""The composition root: the one place where Slipway's adapters are chosen and built.

Tasks build what a worker needs here and hand it in; a worker never looks an adapter up
itself, so tests can pass others. Request-side use cases that read engine state (stats,
volume sizes, logs) take theirs from here too. seelf's infra/mod.go is the model.

The runtimes and the registry are imported when first built, not with this module: every
web process imports the use cases (and so this module) but builds neither unless a page
asks the engine, and the Docker SDK (with the runtimes), requests and bcrypt (with the
registry) would otherwise sit in each gunicorn worker's memory (bench/run --memory).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from deployments.adapters.egress import parse_allow
from deployments.adapters.firewall import Firewall, host_nameservers
from deployments.adapters.router import Router
from deployments.adapters.router.traefik import TraefikRouter
from deployments.adapters.router.traefik_metrics import TraefikMetrics
from deployments.adapters.runtime import RuntimeBackend
from deployments.adapters.syslog import SyslogClient

if TYPE_CHECKING:
    from deployments.adapters.registry import Registry


def runtime() -> RuntimeBackend:
    """The container runtime, PAAS_RUNTIME's: Docker Engine on this host, or Swarm. A new
    client each time: a cached one would hold pooled connections to an engine that may
    have restarted since."""
    if settings.PAAS_RUNTIME == "swarm":
        from deployments.adapters.runtime.swarm import SwarmRuntime  # local import: Docker SDK

        return SwarmRuntime(registry=registry())
    from deployments.adapters.runtime.docker import DockerRuntime  # local import: Docker SDK

    return DockerRuntime()


def build_runtime() -> RuntimeBackend:
    """Where a build node builds: the engine on its own host (PAAS_DOCKER_HOST), whatever
    runs the apps."""
    from deployments.adapters.runtime.docker import DockerRuntime  # local import: Docker SDK

    return DockerRuntime()


def registry() -> Registry | None:
    """Slipway's image registry for the swarm's nodes (PAAS_REGISTRY_ADDRESS), or none."""
    if not settings.PAAS_REGISTRY_ADDRESS:
        return None
    from deployments.adapters.registry import Registry  # local import: requests, bcrypt

    return Registry(settings.PAAS_REGISTRY_ADDRESS.strip(), Path(settings.PAAS_REGISTRY_DIR))


def router() -> Router:
    """The HTTP router in front of the apps and the dashboard (Traefik's file provider)."""
    return TraefikRouter()


def firewall() -> Firewall:
    """The egress rules for PAAS_NETWORK_POOL (every app network and the build network),
    with PAAS_EGRESS_ALLOW's holes and the host's nameservers for the containers' DNS."""
    return Firewall(
        instance=settings.PAAS_INSTANCE,
        pool=IPv4Network(settings.PAAS_NETWORK_POOL.strip()),
        allow=parse_allow(settings.PAAS_EGRESS_ALLOW),
        nameservers=host_nameservers(),
    )


def router_metrics() -> TraefikMetrics:
    """The router's request counters per route (Traefik's Prometheus endpoint)."""
    return TraefikMetrics()


def syslog() -> SyslogClient:
    """The log drains' syslog sender (RFC 5424 over TCP or TLS, the system's CAs)."""
    return SyslogClient(timeout=settings.PAAS_LOG_DRAIN_TIMEOUT)
