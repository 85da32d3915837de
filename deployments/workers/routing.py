"""What the router serves for an environment, decided from the database in one place: the
pipeline's switch, the warden's rebuild, stop and start all ask route_for().

An internal environment has no route at all (only the app's own processes reach it, on
its network); a stopped or maintenance one answers 503 with a page; a protected one asks
for the password whose hash is stored; the rest go to the live deployment's web replicas.
"""

import http.client
import logging

from django.conf import settings

from apps.models import Domain, Environment, Visibility
from deployments.adapters.router import Route, Router
from deployments.adapters.runtime import RuntimeBackend
from deployments.services.routing import router_page

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 2.0


def route_for(
    env: Environment, upstreams: list[str], health_path: str | None = None
) -> Route | None:
    """The route for `env` with these web replicas; None: nothing is routed."""
    if not env.is_routed:
        return None
    page = router_page(env)
    if page is None and not upstreams:
        return None
    protected = env.visibility == Visibility.PROTECTED and env.basic_auth_hash
    return Route(
        route_id=env.route_id,
        hosts=tuple(env.hostnames),
        upstreams=() if page else tuple(upstreams),
        health_path=health_path,
        page=page,
        basic_auth=(f"{env.basic_auth_user}:{env.basic_auth_hash}",) if protected else (),
        max_body_bytes=env.body_limit,
        tls=settings.PAAS_TLS,
    )


def domain_check_routes() -> list[Route]:
    """For each custom domain not yet verified, a route that answers its check path (only
    that path, only that host) with its token, from the dashboard's router pages; the rest
    of the host is not routed, and no certificate is requested for it."""
    pending = Domain.objects.filter(
        verified_at__isnull=True,
        environment__app__cleanup_requested_at__isnull=True,
        environment__cleanup_requested_at__isnull=True,
    )
    return [
        Route(
            route_id=domain.check_route_id,
            hosts=(domain.hostname,),
            page="",
            path=domain.check_path,
            tls=settings.PAAS_TLS,
            acme=False,
        )
        for domain in pending
    ]


def apply(env: Environment, router: Router, upstreams: list[str], health_path=None) -> Route | None:
    """Write the environment's route (or remove it when nothing is to be routed)."""
    route = route_for(env, upstreams, health_path)
    if route is None:
        router.remove(env.route_id)
    else:
        router.apply(route)
    return route


# --- the live deployment's web replicas ----------------------------------------------------


def live_upstreams(env: Environment, runtime: RuntimeBackend) -> list[str]:
    """Where the live replicas answer now (addresses may change across restarts); a replica
    the engine cannot place keeps its last recorded address, and the router's health check
    and retry keep requests away from it while it is down."""
    live = env.live_deployment
    recorded = live.recorded_upstreams
    upstreams = []
    for index, container in enumerate(live.web_containers):
        try:
            upstreams.append(str(runtime.endpoint(container, env.app.network, live.web_port)))
        except Exception:  # noqa: BLE001 - a vanished container: the warden revives it
            if index < len(recorded):
                upstreams.append(recorded[index])
    return upstreams


def health_path_for(upstream: str, path: str) -> str | None:
    """The router's own health check uses the app's health path only if the app answers it
    with 2xx or 3xx (what the router counts as healthy); an app whose path answers 404
    would otherwise be taken out of its own pool. Without it, dead replicas are still
    skipped by the router's retry."""
    host, _, port = upstream.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", path, headers={"User-Agent": "Slipway-Router-Check"})
        status = connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()
    return path if 200 <= status < 400 else None
