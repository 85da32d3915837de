"""The router that sends an app environment's hostnames to its live web replicas.

The pipeline switches a route once every new replica is healthy (one atomic write, then
wait_applied); the warden calls `sync()` with what the database says, so that a router
that lost its files gets every route back. deployments/wiring.py builds the configured
implementation (Traefik, through its file provider: traefik.py).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    # Set: only requests for exactly this path match (a domain's ownership check).
    path: str | None = None
    # False: HTTPS with the default store's certificate (traefik.py gives it one), none
    # requested (a host not yet verified must not make Slipway ask a CA for one).
    acme: bool = True


class Router(Protocol):
    def ping(self) -> bool: ...

    def apply(self, route: Route) -> None: ...

    def remove(self, route_id: str) -> None: ...

    def get(self, route_id: str) -> Route | None: ...

    def route_ids(self, prefix: str | None = None) -> list[str]: ...

    def sync(self, routes: list[Route], prefix: str | None = None) -> None: ...

    def wait_applied(self, route: Route, timeout: float) -> float: ...

    def ensure_platform(self, host: str, upstream: str) -> None: ...
