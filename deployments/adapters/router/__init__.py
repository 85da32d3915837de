"""The proxy that routes an app's hostnames to its live container.

The pipeline switches a route once the new container is healthy; the warden calls
`sync()` with what the database says so that a restarted proxy gets every route back.
deployments/wiring.py builds the configured implementation (Caddy, through its admin API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings


def managed_prefix(instance: str | None = None) -> str:
    """Route ids this installation owns start with it; the proxy leaves all others alone."""
    return f"{instance or settings.PAAS_INSTANCE}-"


class ProxyError(Exception):
    """The proxy could not be reached (`proxy_unreachable`) or refused a change."""

    user_fault = False

    def __init__(self, message: str, code: str = "proxy_unreachable"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class RouteSpec:
    route_id: str
    hosts: list[str] = field(default_factory=list)
    upstream: str | None = None  # "ip:port"; None serves the "app is stopped" page


class Proxy(Protocol):
    def ensure_server(self) -> None: ...

    def set_route(self, route_id: str, hosts: list[str], upstream: str) -> None: ...

    def set_static_route(
        self, route_id: str, hosts: list[str], status: int = 503, body: str = ...
    ) -> None: ...

    def remove_route(self, route_id: str) -> None: ...

    def get_route(self, route_id: str) -> dict | None: ...

    def route_ids(self, prefix: str | None = None) -> list[str]: ...

    def upstream_of(self, route_id: str) -> str | None: ...

    def sync(self, routes: list[RouteSpec], prefix: str | None = None) -> None: ...


# --- The router interface (Traefik, deployments/adapters/router/traefik.py) ------------------
# Beside the Proxy interface above until the pipeline and the warden move over to it.


@dataclass(frozen=True)
class Route:
    """What one app environment's hostnames lead to."""

    route_id: str  # "<instance>-<app>-<env>", only [a-z0-9-]; also the file name
    hosts: tuple[str, ...]
    upstreams: tuple[str, ...] = ()  # "ip:port" of each web replica, balanced round-robin
    # Traefik's active health check on each upstream. A replica that answers it with neither
    # 2xx nor 3xx leaves the pool until it does; None: no active check (a dead replica is
    # still skipped by the retry).
    health_path: str | None = "/"
    page: str | None = None  # set: answer every request 503 with this text (stopped, maintenance)
    basic_auth: tuple[str, ...] = ()  # htpasswd lines "user:<hash>", bcrypt or apr1 only
    max_body_bytes: int | None = None  # larger request bodies get 413
    tls: bool = False  # HTTPS with an ACME certificate (websecure, certResolver acme)


class Router(Protocol):
    def ping(self) -> bool: ...

    def apply(self, route: Route) -> None: ...

    def remove(self, route_id: str) -> None: ...

    def get(self, route_id: str) -> Route | None: ...

    def route_ids(self, prefix: str | None = None) -> list[str]: ...

    def sync(self, routes: list[Route], prefix: str | None = None) -> None: ...

    def wait_applied(self, route: Route, timeout: float) -> float: ...

    def ensure_platform(self, host: str, upstream: str) -> None: ...
