"""Traefik 3 as Slipway's router: one file per route in its watched directory (tested with 3.7).

Traefik's file provider watches PAAS_ROUTER_DYNAMIC_DIR and applies a changed file within
PAAS_ROUTER_THROTTLE, without touching client connections: there is no reload, so idle
keep-alive connections survive a switch (every Caddy config load reset them).

Each route is `<route_id>.yml`: a router (Host rules, entry point, middlewares) and a
service (round-robin over the upstreams, an active health check, a retry). It is written
whole under a temporary name that Traefik does not load (its file provider reads only
.yml, .yaml and .toml files; ours end in .tmp), synced, and moved in place with
os.replace, so Traefik never reads half a file. Traefik's API (on loopback) tells when it
serves what a file says: wait_applied().

Two things keep a switch quick (about 10 ms from the write to the new upstreams served,
instead of 70 to 250 ms). The temporary file is written in a subdirectory (STAGING_DIR):
Traefik watches the directory itself, not its subdirectories, so only the move is an
event; a temp file's own creation in the watched directory was an event too, a reload
of the same configuration, and the throttle then held the real change back for
PAAS_ROUTER_THROTTLE. And the default TLS store has a certificate of ours
(DEFAULT_CERTIFICATE, see default_certificate.py), so Traefik makes no new key for one
at each change.

Traefik renders every file as a Go template before it parses the YAML, so nothing written
here may contain "{{": hosts, upstreams, paths and hashes are checked against strict
patterns, and the one free text (a page's) is JSON in a comment with "{" escaped.

The static configuration (entry points, API, ACME, the file provider) is static_config(),
written by `manage.py paas_router_config`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import requests
import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from deployments.adapters.router import ProxyError, Route, managed_prefix

SUFFIX = ".yml"  # a name Traefik loads
TEMP_SUFFIX = ".tmp"  # a name it does not: "<id>.yml.<random>.tmp"
STAGING_DIR = ".writing"  # where temp files are written: not watched (see above)
DEFAULT_CERTIFICATE = "_default-certificate.yml"  # no route id holds an underscore
STALE_TEMP_SECONDS = 60  # a temp file this old was left by a writer that died
API_TIMEOUT = (1, 5)  # connect, read; Traefik's API is on loopback
POLL_SECONDS = 0.01
HEALTH_INTERVAL = "1s"
HEALTH_TIMEOUT = "1s"
RETRY_ATTEMPTS = 3  # a request that reached a replica which just died goes to another one
RETRY_INITIAL_INTERVAL = "10ms"
DIAL_TIMEOUT = "1s"
RETRY_MAX_BODY_BYTES = 64 * 1024  # a larger body is streamed once, never kept for a retry
PAGE_PATH = "/_slipway/page/{route_id}/"
ROUTE_COMMENT = "# slipway-route: "
HEADER = "# Written by Slipway (deployments/adapters/router/traefik.py): edits are overwritten.\n"

ROUTE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,198}[a-z0-9])?")
LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST = re.compile(rf"(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*")
UPSTREAM = re.compile(r"(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\]):[0-9]{1,5}")
HEALTH_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")
# htpasswd lines whose hash Traefik checks as a hash: bcrypt ($2a$, $2b$, $2y$) or apr1.
# Anything else it would compare as plain text, so it is refused.
HTPASSWD = re.compile(
    r"[A-Za-z0-9._@+-]{1,64}:"
    r"(?:\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}|\$apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22})"
)
# An exact path a route may be limited to: plain URL characters, no backtick or space.
CHECK_PATH = re.compile(r"/[A-Za-z0-9._~/-]{1,200}")
DURATION = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h)|[0-9]+")


class TraefikRouter:
    def __init__(
        self,
        dynamic_dir: str | Path | None = None,
        api_url: str | None = None,
        instance: str | None = None,
        pages_upstream: str | None = None,
    ):
        self.dynamic_dir = Path(dynamic_dir or settings.PAAS_ROUTER_DYNAMIC_DIR)
        self.api_url = (api_url or settings.PAAS_ROUTER_API_URL).rstrip("/")
        self.instance = instance or settings.PAAS_INSTANCE
        self.pages_upstream = pages_upstream or settings.PAAS_ROUTER_PAGES_UPSTREAM
        self.platform_route_id = f"{self.instance}-platform"
        check_upstream(self.pages_upstream)

    # --- files ----------------------------------------------------------------------------

    def apply(self, route: Route) -> None:
        """Write the route's file (unless it already says exactly this)."""
        self._write(route.route_id, self.render(route))

    def remove(self, route_id: str) -> None:
        check_route_id(route_id)
        try:
            self._path(route_id).unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.dynamic_dir)

    def get(self, route_id: str) -> Route | None:
        check_route_id(route_id)
        try:
            text = self._path(route_id).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return route_of_file(text)

    def route_ids(self, prefix: str | None = None) -> list[str]:
        """Ids of the routes whose files start with `prefix` (default: this installation's)."""
        prefix = prefix or managed_prefix(self.instance)
        if not self.dynamic_dir.is_dir():
            return []
        names = (path.name[: -len(SUFFIX)] for path in self.dynamic_dir.glob(f"*{SUFFIX}"))
        return sorted(
            name for name in names if name.startswith(prefix) and ROUTE_ID.fullmatch(name)
        )

    def sync(self, routes: list[Route], prefix: str | None = None) -> None:
        """Make the files under `prefix` exactly `routes`: write the changed ones first, then
        remove the others (the platform's own route stays: ensure_platform() owns it)."""
        prefix = prefix or managed_prefix(self.instance)
        wanted: dict[str, str] = {}
        for route in routes:
            if route.route_id in wanted:
                raise ValueError(f"route {route.route_id} is given twice")
            wanted[route.route_id] = self.render(route)  # every route is checked before a write
        for route_id, content in wanted.items():
            self._write(route_id, content)
        for route_id in self.route_ids(prefix):
            if route_id not in wanted and route_id != self.platform_route_id:
                self.remove(route_id)
        self._remove_stale_temp_files(prefix)

    def ensure_platform(self, host: str, upstream: str) -> None:
        """The dashboard's own route: `host` to gunicorn. One upstream, so no active health
        check: there is no other replica to send requests to. Bodies over
        PAAS_MAX_REQUEST_BYTES get 413 here, so gunicorn never reads them."""
        self.apply(
            Route(
                route_id=self.platform_route_id,
                hosts=(host,),
                upstreams=(upstream,),
                health_path=None,
                tls=settings.PAAS_TLS,
                max_body_bytes=settings.PAAS_MAX_REQUEST_BYTES,
            )
        )

    def render(self, route: Route) -> str:
        """The file for `route`: its Route in a comment (get() reads it), then Traefik's part."""
        config = dynamic_config(route, self.pages_upstream)
        spec = json.dumps(asdict(route), ensure_ascii=True, separators=(",", ":"))
        # A flat object: "{{" can only come from inside a string, where "{\u007b" reads back
        # the same. Traefik's template engine then finds no "{{" to act on.
        spec = spec.replace("{{", "{\\u007b")
        body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, width=1000)
        return f"{HEADER}{ROUTE_COMMENT}{spec}\n{body}"

    def _path(self, route_id: str) -> Path:
        return self.dynamic_dir / f"{route_id}{SUFFIX}"

    def _write(self, route_id: str, content: str) -> None:
        path = self._path(route_id)
        try:
            if path.read_text(encoding="utf-8") == content:
                return  # unchanged: no write, so Traefik has nothing to apply
        except FileNotFoundError:
            pass
        staging = self._staging_dir()
        self._ensure_default_certificate(staging)
        write_atomically(path, content, staging=staging)

    def _staging_dir(self) -> Path:
        staging = self.dynamic_dir / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        return staging

    def _ensure_default_certificate(self, staging: Path) -> None:
        """Made once, before the first route: from then on Traefik reads it at each change
        instead of making a key (default_certificate.py)."""
        path = self.dynamic_dir / DEFAULT_CERTIFICATE
        if not path.exists():
            write_atomically(path, default_certificate_file(), staging=staging)

    def _remove_stale_temp_files(self, prefix: str) -> None:
        cutoff = time.time() - STALE_TEMP_SECONDS
        pattern = f"{prefix}*{SUFFIX}.*{TEMP_SUFFIX}"
        # In the directory itself: left there by a writer before STAGING_DIR.
        for folder in (self.dynamic_dir, self.dynamic_dir / STAGING_DIR):
            for temp in folder.glob(pattern):
                try:
                    if temp.stat().st_mtime < cutoff:
                        temp.unlink()
                except FileNotFoundError:
                    pass

    # --- Traefik's API ----------------------------------------------------------------------

    def ping(self) -> bool:
        try:
            response = requests.get(f"{self.api_url}/ping", timeout=API_TIMEOUT)
        except requests.RequestException:
            return False
        return response.status_code == 200

    def wait_applied(self, route: Route, timeout: float) -> float:
        """Poll Traefik's API until it serves this route's file: the router's rule, entry
        points and middlewares, and exactly its upstreams (or the pages service). Returns
        the seconds it took. What it does not see: a change inside a middleware alone (new
        basic-auth users, another body limit), which is applied within the same throttle."""
        check_route(route)
        want_router, want_servers = _wanted_api_view(route, self.pages_upstream)
        started = time.monotonic()
        deadline = started + timeout
        with requests.Session() as session:
            while True:
                unreachable = None
                try:
                    router = self._api_get(session, f"/api/http/routers/{route.route_id}@file")
                    service = self._api_get(session, f"/api/http/services/{route.route_id}@file")
                except ProxyError as exc:
                    router = service = None
                    unreachable = exc
                if router is not None and _router_view(router) == want_router:
                    if router.get("status") == "disabled":
                        raise ProxyError(
                            f"Traefik refused route {route.route_id}: {router.get('error')}",
                            code="router_rejected",
                        )
                    if service is not None and _servers_of(service) == want_servers:
                        return time.monotonic() - started
                if time.monotonic() >= deadline:
                    if unreachable is not None:
                        raise unreachable
                    raise ProxyError(
                        f"Traefik did not apply route {route.route_id} within {timeout:g} s",
                        code="router_not_applied",
                    )
                time.sleep(POLL_SECONDS)

    def _api_get(self, session: requests.Session, path: str) -> dict | None:
        url = self.api_url + path
        try:
            response = session.get(url, timeout=API_TIMEOUT)
        except requests.RequestException as exc:
            raise ProxyError(f"Traefik's API at {self.api_url} did not answer: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ProxyError(
                f"Traefik's API answered {response.status_code} to GET {path}",
                code="proxy_rejected",
            )
        return response.json()


# --- route files ------------------------------------------------------------------------------


def check_route_id(route_id: str) -> None:
    if not isinstance(route_id, str) or not ROUTE_ID.fullmatch(route_id):
        raise ValueError(f"route id {route_id!r}: only a-z, 0-9 and inner hyphens")


def check_upstream(upstream: str) -> None:
    if not UPSTREAM.fullmatch(upstream) or not 0 < int(upstream.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"upstream {upstream!r}: expected ip:port")


def check_route(route: Route) -> None:
    """Refuse (ValueError) what Traefik could misread: every field goes into its YAML."""
    check_route_id(route.route_id)
    for name in ("hosts", "upstreams", "basic_auth"):
        if isinstance(getattr(route, name), str):
            raise ValueError(f"route {route.route_id}: {name} must be a tuple, not a string")
    if route.page is not None and not isinstance(route.page, str):
        raise ValueError(f"route {route.route_id}: page must be text")
    if not route.hosts:
        raise ValueError(f"route {route.route_id}: no host")
    for host in route.hosts:
        if not HOST.fullmatch(host):
            raise ValueError(f"route {route.route_id}: host {host!r} is not a lowercase name")
    for upstream in route.upstreams:
        check_upstream(upstream)
    if not route.upstreams and route.page is None:
        raise ValueError(f"route {route.route_id}: neither upstreams nor a page")
    if route.health_path is not None and not HEALTH_PATH.fullmatch(route.health_path):
        raise ValueError(f"route {route.route_id}: health path {route.health_path!r}")
    for line in route.basic_auth:
        if not HTPASSWD.fullmatch(line):
            # Never echo the line: it may be a plain password given by mistake.
            raise ValueError(f"route {route.route_id}: a basic-auth line is not user:<bcrypt|apr1>")
    if route.path is not None and not CHECK_PATH.fullmatch(route.path):
        raise ValueError(f"route {route.route_id}: path {route.path!r}")
    if route.max_body_bytes is not None and (
        isinstance(route.max_body_bytes, bool) or route.max_body_bytes < 1
    ):
        raise ValueError(f"route {route.route_id}: max_body_bytes must be a positive integer")


def dynamic_config(route: Route, pages_upstream: str) -> dict:
    """Traefik's dynamic configuration for one route (names are the route id + a suffix)."""
    check_route(route)
    rid = route.route_id
    middlewares: dict[str, dict] = {}
    if route.basic_auth:
        middlewares[f"{rid}-auth"] = {
            "basicAuth": {"users": list(route.basic_auth), "removeHeader": True}
        }
    if route.max_body_bytes is not None and route.page is None:
        # Traefik's only body limit; it holds the response too until it is complete.
        middlewares[f"{rid}-body"] = {"buffering": {"maxRequestBodyBytes": route.max_body_bytes}}
    # The entry point already drops the client's X-Forwarded-* (it trusts no one); this
    # states the scheme the client used, whatever sits in front.
    proto = "https" if route.tls else "http"
    middlewares[f"{rid}-headers"] = {
        "headers": {"customRequestHeaders": {"X-Forwarded-Proto": proto}}
    }
    if route.page is not None:
        middlewares[f"{rid}-page"] = {"replacePath": {"path": PAGE_PATH.format(route_id=rid)}}
    # A request that could not be sent (the replica's port is closed) goes to another
    # replica; so does one that got a 502 (the replica took it and went away without an
    # answer), if its method is idempotent and its body small enough to keep for a retry.
    middlewares[f"{rid}-retry"] = {
        "retry": {
            "attempts": RETRY_ATTEMPTS,
            "initialInterval": RETRY_INITIAL_INTERVAL,
            "status": ["502"],
            "maxRequestBodyBytes": RETRY_MAX_BODY_BYTES,
        }
    }
    router: dict = {
        "rule": _rule(route.hosts, route.path),
        "entryPoints": ["websecure" if route.tls else "web"],
        "service": rid,
        "middlewares": list(middlewares),
    }
    if route.tls:
        router["tls"] = {"certResolver": "acme"} if route.acme else {}
    return {
        "http": {
            "routers": {rid: router},
            "middlewares": middlewares,
            "services": {rid: {"loadBalancer": _load_balancer(route, pages_upstream)}},
        }
    }


def _load_balancer(route: Route, pages_upstream: str) -> dict:
    if route.page is not None:
        # Django's ALLOWED_HOSTS knows the dashboard's own address, not the app's host.
        return {"servers": [{"url": f"http://{pages_upstream}"}], "passHostHeader": False}
    balancer: dict = {
        "servers": [{"url": f"http://{upstream}"} for upstream in route.upstreams],
        "passHostHeader": True,
    }
    if route.health_path is not None:
        balancer["healthCheck"] = {
            "path": route.health_path,
            "interval": HEALTH_INTERVAL,
            "timeout": HEALTH_TIMEOUT,
        }
    return balancer


def _rule(hosts: tuple[str, ...], path: str | None = None) -> str:
    rule = " || ".join(f"Host(`{host}`)" for host in dict.fromkeys(hosts))
    return f"({rule}) && Path(`{path}`)" if path else rule


def route_of_file(text: str) -> Route | None:
    """The Route a file was rendered from (its comment line); None for a file not ours."""
    for line in text.splitlines():
        if line.startswith(ROUTE_COMMENT):
            try:
                fields = json.loads(line[len(ROUTE_COMMENT) :])
                return Route(
                    **{
                        name: tuple(value) if isinstance(value, list) else value
                        for name, value in fields.items()
                    }
                )
            except (ValueError, TypeError):
                return None
    return None


def _wanted_api_view(route: Route, pages_upstream: str) -> tuple[dict, list[str]]:
    config = dynamic_config(route, pages_upstream)["http"]
    router = config["routers"][route.route_id]
    servers = config["services"][route.route_id]["loadBalancer"]["servers"]
    view = {
        "rule": router["rule"],
        "entryPoints": router["entryPoints"],
        "middlewares": [f"{name}@file" for name in router["middlewares"]],
        "service": router["service"],
    }
    return view, sorted(server["url"] for server in servers)


def default_certificate_file() -> str:
    """The dynamic configuration that gives the default TLS store its certificate, inline
    (Traefik takes PEM text where it takes a path): one file, written atomically."""
    # Only the first route write of an installation needs it, and every web process
    # imports this module: x509 stays out of their memory.
    from deployments.adapters.router.default_certificate import self_signed  # local import: x509

    certificate, key = self_signed()
    pair = {"certFile": certificate, "keyFile": key}
    config = {"tls": {"stores": {"default": {"defaultCertificate": pair}}}}
    return HEADER + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _router_view(router: dict) -> dict:
    return {key: router.get(key) for key in ("rule", "entryPoints", "middlewares", "service")}


def _servers_of(service: dict) -> list[str]:
    servers = (service.get("loadBalancer") or {}).get("servers") or []
    return sorted(server.get("url", "") for server in servers)


def write_atomically(
    path: Path, content: str, mode: int = 0o600, staging: Path | None = None
) -> None:
    """Write `content` to `path` so that a reader sees the old file or the new, never part:
    a temp file of a unique name in `staging` (a directory on the same filesystem; by
    default path's own), fsync, os.replace, fsync the dir."""
    temp = (staging or path.parent) / f"{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the static configuration -----------------------------------------------------------------


def static_config() -> dict:
    """Traefik's static configuration from the settings (PAAS_ROUTER_*, PAAS_TLS, ACME)."""
    api_address = _loopback_address(settings.PAAS_ROUTER_API_URL)
    throttle = settings.PAAS_ROUTER_THROTTLE
    if not DURATION.fullmatch(throttle):
        raise ImproperlyConfigured(
            f"PAAS_ROUTER_THROTTLE must be a duration like 50ms: {throttle!r}"
        )
    instance = settings.PAAS_INSTANCE
    log_dir = Path(settings.VAR_DIR) / "log"
    # No trustedIPs and not insecure: Traefik drops every X-Forwarded-* a client sends and
    # sets its own. Header names that only alias one (X_Forwarded_Proto, which WSGI reads as
    # X-Forwarded-Proto) are dropped too.
    web: dict = {
        "address": f":{settings.PAAS_ROUTER_HTTP_PORT}",
        "forwardedHeaders": {"insecure": False},
        "http": {"aliasHeadersStrategy": "delete"},
    }
    entry_points: dict = {"web": web}
    config: dict = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": entry_points,
        "api": {"insecure": True, "dashboard": False},
        "ping": {"entryPoint": "traefik"},
        "providers": {
            "providersThrottleDuration": throttle,
            "file": {"directory": str(settings.PAAS_ROUTER_DYNAMIC_DIR), "watch": True},
        },
        "log": {"level": "INFO", "filePath": str(log_dir / f"traefik-{instance}.log")},
        # Connections to replicas are pooled (a fresh one per request runs the host out of
        # ephemeral ports under load: measured, 40 % of requests failed). A replica that
        # dies closes its sockets, so pooled connections to it are reset and the retry
        # middleware sends the request elsewhere; a new connection to one whose address is
        # gone would wait 30 s, so connecting gets DIAL_TIMEOUT, then the retry.
        "serversTransport": {"forwardingTimeouts": {"dialTimeout": DIAL_TIMEOUT}},
    }
    if settings.PAAS_TLS:
        web["http"]["redirections"] = {
            "entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}
        }
        entry_points["websecure"] = {
            "address": f":{settings.PAAS_ROUTER_HTTPS_PORT}",
            "forwardedHeaders": {"insecure": False},
            "http": {"aliasHeadersStrategy": "delete"},
        }
        acme: dict = {
            "storage": str(acme_storage()),
            "httpChallenge": {"entryPoint": "web"},
        }
        if settings.PAAS_ACME_EMAIL:
            acme = {"email": settings.PAAS_ACME_EMAIL, **acme}
        config["certificatesResolvers"] = {"acme": {"acme": acme}}
    entry_points["traefik"] = {
        "address": api_address,
        "http": {"aliasHeadersStrategy": "delete"},
    }
    # Request counters per service (route id) for Slipway's metrics sampler, on the same
    # loopback entry point as the API; entry point and router labels would only repeat them.
    config["metrics"] = {
        "prometheus": {
            "entryPoint": "traefik",
            "addServicesLabels": True,
            "addEntryPointsLabels": False,
            "addRoutersLabels": False,
        }
    }
    if settings.PAAS_ROUTER_ACCESS_LOG:
        config["accessLog"] = {"filePath": str(log_dir / f"traefik-{instance}-access.log")}
    return config


STATIC_COMMENTS = {
    "api": (
        "# insecure: the API answers without authentication, on the `traefik` entry point,\n"
        "# which listens on loopback only (PAAS_ROUTER_API_URL must be a loopback address).\n"
    ),
    "entryPoints": (
        "# web and websecure trust no client's X-Forwarded-* (no trustedIPs): Traefik sets them.\n"
    ),
}


def render_static(config: dict) -> str:
    parts = ["# Traefik's static configuration, written by `manage.py paas_router_config`\n"]
    parts.append("# from Slipway's settings; it is rewritten on every start.\n")
    for key, value in config.items():
        parts.append(STATIC_COMMENTS.get(key, ""))
        parts.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False))
    return "".join(parts)


def write_static_config(path: Path) -> dict:
    """Write the static configuration to `path`, creating the directories it names."""
    config = static_config()
    Path(settings.PAAS_ROUTER_DYNAMIC_DIR).mkdir(parents=True, exist_ok=True)
    Path(config["log"]["filePath"]).parent.mkdir(parents=True, exist_ok=True)
    if "certificatesResolvers" in config:
        acme_storage().parent.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, render_static(config), mode=0o644)
    return config


def acme_storage() -> Path:
    return Path(settings.VAR_DIR) / "traefik" / settings.PAAS_INSTANCE / "acme.json"


def ping_url() -> str:
    return f"{settings.PAAS_ROUTER_API_URL.rstrip('/')}/ping"


def _loopback_address(api_url: str) -> str:
    """'127.0.0.1:8089' from 'http://127.0.0.1:8089'; anything but a loopback IP is refused."""
    parts = urlsplit(api_url)
    try:
        loopback = parts.hostname is not None and ipaddress.ip_address(parts.hostname).is_loopback
        port = parts.port
    except ValueError:
        loopback, port = False, None
    if parts.scheme != "http" or not loopback or port is None or parts.path not in ("", "/"):
        raise ImproperlyConfigured(
            f"PAAS_ROUTER_API_URL must be http://<loopback IP>:<port>, not {api_url!r}: "
            "Traefik's API has no authentication"
        )
    host = parts.hostname
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
