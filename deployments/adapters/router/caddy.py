"""Caddy as Slipway's router, driven through its admin API (tested with Caddy 2.6).

An installation owns one HTTP server named after it (PAAS_INSTANCE, "slipway" by default)
and the routes whose `@id` starts with "<instance>-"; everything else in Caddy's config is
left alone, so a test suite can run beside a live platform on another port. Each change
makes Caddy reload; connections on the old config finish within `grace_period`.

Caddy accepts a second route with an `@id` it already has (and then addresses only the
last one), so appends and whole-list writes are conditional: `If-Match` with the ETag of
what was read, and a re-read on 412.
"""

from __future__ import annotations

import ipaddress
import random
import re
import time

import requests
from django.conf import settings

from deployments.adapters.router import ProxyError, RouteSpec, managed_prefix

HTTP_APP = "/config/apps/http"
TIMEOUT = (2, 15)  # connect, read: a reload that provisions TLS can take a few seconds
CONFLICT_RETRIES = 10
RESET_RETRY_DELAYS = (0.05, 0.2, 0.5)
SERVER_STEPS = 6  # the most requests ensure_server() may need when nothing races it
STOPPED_BODY = "This app is stopped."


class CaddyProxy:
    def __init__(
        self,
        admin_url: str | None = None,
        http_port: int | None = None,
        https_port: int | None = None,
        domain: str | None = None,
        instance: str | None = None,
    ):
        self.admin_url = (admin_url or settings.PAAS_CADDY_ADMIN_URL).rstrip("/")
        self.server_name = instance or settings.PAAS_INSTANCE
        self.server_path = f"{HTTP_APP}/servers/{self.server_name}"
        self.routes_path = f"{self.server_path}/routes"
        self.http_port = http_port or settings.PAAS_PROXY_HTTP_PORT
        self.https_port = https_port or settings.PAAS_PROXY_HTTPS_PORT
        self.domain = (domain or settings.PAAS_DOMAIN).lower()

    # --- the server -------------------------------------------------------------------

    def ensure_server(self) -> None:
        """Create or fix this installation's server, a difference per request; routes stay."""
        for _ in range(SERVER_STEPS + CONFLICT_RETRIES):
            config, etag = self._read("/config/")
            change = self._server_change(config or {})
            if change is None:
                return
            self._write(*change, if_match=etag)  # on a 412, the next read sees why
        raise _conflict("the server")

    def _server_change(self, config: dict) -> tuple[str, str, object] | None:
        """The first request that brings the config closer to what Slipway needs."""
        servers = {self.server_name: self._server()}
        http_app = {"grace_period": self._grace_period(), "servers": servers}
        apps = config.get("apps")
        if not config:  # a fresh Caddy: `null`
            return "POST", "/config/", {"apps": {"http": http_app}}
        if apps is None:
            return "POST", "/config/apps", {"http": http_app}
        if apps.get("http") is None:
            return "POST", HTTP_APP, http_app
        if as_seconds(apps["http"].get("grace_period")) < as_seconds(self._grace_period()):
            return "POST", f"{HTTP_APP}/grace_period", self._grace_period()
        if apps["http"].get("servers") is None:
            return "POST", f"{HTTP_APP}/servers", servers
        server = apps["http"]["servers"].get(self.server_name)
        if server is None:
            return "POST", self.server_path, self._server()
        return self._server_fix(server)

    def _server_fix(self, server: dict) -> tuple[str, str, object] | None:
        wanted = self._server()
        if server.get("listen") != wanted["listen"]:
            return "PATCH", f"{self.server_path}/listen", wanted["listen"]  # POST appends
        if server.get("automatic_https") != wanted.get("automatic_https"):
            if "automatic_https" not in wanted:
                return "DELETE", f"{self.server_path}/automatic_https", None
            return "POST", f"{self.server_path}/automatic_https", wanted["automatic_https"]
        if server.get("routes") is None:
            return "POST", self.routes_path, []
        return None

    def _server(self) -> dict:
        server: dict = {"listen": [f":{self.http_port}"], "routes": []}
        if _is_public(self.domain):
            # Left on, Caddy gets and renews a certificate for every routed hostname.
            server["listen"].append(f":{self.https_port}")
        else:
            server["automatic_https"] = {"disable": True}
        return server

    def _grace_period(self) -> str:
        # Connections on a replaced config get this long to finish, while the pipeline
        # keeps the old container for PAAS_DRAIN_SECONDS. The setting is Caddy-wide:
        # installations sharing a Caddy only ever raise it, so they never fight over it.
        return f"{settings.PAAS_DRAIN_SECONDS}s"

    # --- routes -----------------------------------------------------------------------

    def set_route(self, route_id: str, hosts: list[str], upstream: str) -> None:
        self._put_route(_proxy_route(route_id, hosts, upstream))

    def set_static_route(
        self, route_id: str, hosts: list[str], status: int = 503, body: str = STOPPED_BODY
    ) -> None:
        self._put_route(_static_route(route_id, hosts, status, body))

    def _put_route(self, wanted: dict) -> None:
        route_id = wanted["@id"]
        current = self.get_route(route_id)
        if current == wanted:
            return
        if current is None:
            return self._append(wanted)
        if _differ_only_in_upstreams(current, wanted):
            # One small request: the switch of a deployment.
            path, value = f"/id/{route_id}/handle/0/upstreams", wanted["handle"][0]["upstreams"]
        else:
            path, value = f"/id/{route_id}", wanted
        if self._request("PATCH", path, value, ok=(200, 404)).status_code == 404:
            self._append(wanted)  # removed since we looked: add it back

    def _append(self, route: dict) -> None:
        self.ensure_server()
        for _ in range(CONFLICT_RETRIES):
            routes, etag = self._read(self.routes_path)
            if any(r.get("@id") == route["@id"] for r in routes or []):
                return self._put_route(route)  # someone added it meanwhile
            if self._write("POST", self.routes_path, route, if_match=etag):
                return
        raise _conflict(f"route {route['@id']}")

    def remove_route(self, route_id: str) -> None:
        # Repeat: a twin left by an old race would take over the id once one is gone.
        for _ in range(CONFLICT_RETRIES):
            response = self._request("DELETE", f"/id/{route_id}", ok=(200, 404))
            if response.status_code == 404:
                return

    def get_route(self, route_id: str) -> dict | None:
        response = self._request("GET", f"/id/{route_id}", ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    def route_ids(self, prefix: str | None = None) -> list[str]:
        """Ids of this installation's routes (or of those under `prefix`), in route order."""
        prefix = prefix or managed_prefix(self.server_name)
        routes, _ = self._read(self.routes_path, missing_ok=True)
        return [r["@id"] for r in routes or [] if str(r.get("@id", "")).startswith(prefix)]

    def upstream_of(self, route_id: str) -> str | None:
        route = self.get_route(route_id)
        handler = (route or {}).get("handle", [{}])[0]
        if handler.get("handler") != "reverse_proxy":
            return None
        return (handler.get("upstreams") or [{}])[0].get("dial")

    def sync(self, routes: list[RouteSpec], prefix: str | None = None) -> None:
        """Make the routes under `prefix` ("<instance>-") exactly `routes`, in one reload.

        Routes not under it keep their place; missing ones are appended.
        """
        prefix = prefix or managed_prefix(self.server_name)
        wanted = [_route_of(spec) for spec in routes]
        self.ensure_server()
        for _ in range(CONFLICT_RETRIES):
            current, etag = self._read(self.routes_path)
            merged = _merge_routes(current or [], wanted, prefix)
            if merged == current or self._write("PATCH", self.routes_path, merged, if_match=etag):
                return
        raise _conflict("the route list")

    # --- HTTP to the admin API ----------------------------------------------------------

    def _read(self, path: str, missing_ok: bool = False) -> tuple[object, str]:
        """The JSON at path and its ETag, which Caddy sends only as a trailer."""
        ok = (200, 400) if missing_ok else (200,)
        response = self._request("GET", path, ok=ok)
        if response.status_code != 200:
            return None, ""  # 400: "invalid traversal path", a parent is missing
        return response.json(), etag_of(path, response.content)

    def _write(self, method: str, path: str, value: object, if_match: str) -> bool:
        """False when the config changed since it was read (HTTP 412)."""
        headers = {"If-Match": if_match}
        response = self._request(method, path, value, headers=headers, ok=(200, 412))
        if response.status_code == 412:
            time.sleep(random.uniform(0.005, 0.05))  # let a concurrent writer finish
        return response.status_code == 200

    def _request(
        self,
        method: str,
        path: str,
        value: object = None,
        headers: dict | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> requests.Response:
        url = self.admin_url + path
        body = {} if value is None and method in ("GET", "DELETE") else {"json": value}
        for delay in (*RESET_RETRY_DELAYS, None):
            try:
                response = requests.request(method, url, headers=headers, timeout=TIMEOUT, **body)
                break
            except requests.ConnectionError as exc:
                # Caddy restarts its admin listener on every config load: a request that
                # lands at that moment is reset. Every write here is idempotent or
                # conditional, so sending it again is safe.
                if delay is None:
                    raise _unreachable(self.admin_url, exc) from exc
                time.sleep(delay)
            except requests.RequestException as exc:
                raise _unreachable(self.admin_url, exc) from exc
        if response.status_code not in ok:
            raise ProxyError(
                f"Caddy refused {method} {path}: {response.status_code} {_caddy_error(response)}",
                code="proxy_rejected",
            )
        return response


# --- route shapes -----------------------------------------------------------------------


def _proxy_route(route_id: str, hosts: list[str], upstream: str) -> dict:
    handler = {"handler": "reverse_proxy", "upstreams": [{"dial": upstream}]}
    return _route(route_id, hosts, handler)


def _static_route(route_id: str, hosts: list[str], status: int, body: str) -> dict:
    handler = {
        "handler": "static_response",
        "status_code": status,
        "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
        "body": body,
    }
    return _route(route_id, hosts, handler)


def _route(route_id: str, hosts: list[str], handler: dict) -> dict:
    # Caddy hands back exactly this shape, so "unchanged" is plain dict equality.
    unique_hosts = list(dict.fromkeys(host.lower() for host in hosts))
    return {
        "@id": route_id,
        "match": [{"host": unique_hosts}],
        "handle": [handler],
        "terminal": True,
    }


def _route_of(spec: RouteSpec) -> dict:
    if spec.upstream is None:
        return _static_route(spec.route_id, spec.hosts, 503, STOPPED_BODY)
    return _proxy_route(spec.route_id, spec.hosts, spec.upstream)


def _differ_only_in_upstreams(current: dict, wanted: dict) -> bool:
    handlers = [route.get("handle") or [{}] for route in (current, wanted)]
    if any(h[0].get("handler") != "reverse_proxy" for h in handlers):
        return False
    swapped = {**current, "handle": [{**handlers[0][0], "upstreams": None}, *handlers[0][1:]]}
    target = {**wanted, "handle": [{**handlers[1][0], "upstreams": None}, *handlers[1][1:]]}
    return swapped == target


def _merge_routes(current: list[dict], wanted: list[dict], prefix: str) -> list[dict]:
    by_id = {route["@id"]: route for route in wanted}
    merged, placed = [], set()
    for route in current:
        route_id = route.get("@id")
        if route_id in by_id:
            if route_id not in placed:  # a twin is dropped
                merged.append(by_id[route_id])
                placed.add(route_id)
        elif not str(route_id or "").startswith(prefix):
            merged.append(route)
    return merged + [route for route in wanted if route["@id"] not in placed]


# --- small helpers ------------------------------------------------------------------------


def as_seconds(duration: object) -> float:
    """A Caddy duration ("10s", "1m30s", nanoseconds as a number) in seconds; 0 if unset."""
    if isinstance(duration, int | float):
        return duration / 1e9
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration or ""))
    return sum(float(number) * units[unit] for number, unit in parts)


def _is_public(domain: str) -> bool:
    """Whether Caddy can get certificates for the domain: not localhost, not an IP."""
    if domain == "localhost" or domain.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return True
    return False


def etag_of(path: str, body: bytes) -> str:
    """Caddy's ETag: the path and the FNV-1a 32-bit hash of the body it served."""
    value = 0x811C9DC5
    for byte in body:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f'"{path} {value:08x}"'  # Caddy prints the 4 hash bytes: leading zeros too


def _caddy_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("error", body) if isinstance(body, dict) else body)[:300]


def _unreachable(admin_url: str, exc: Exception) -> ProxyError:
    return ProxyError(f"Caddy's admin API at {admin_url} did not answer: {exc}")


def _conflict(what: str) -> ProxyError:
    return ProxyError(
        f"{what} kept changing under Slipway in Caddy; gave up after {CONFLICT_RETRIES} tries",
        code="proxy_conflict",
    )
