"""The Traefik router adapter against the real Traefik that scripts/test starts.

Upstreams are ThreadingHTTPServers on 127.0.0.1; requests go to Traefik's web entry point
with a Host header. Each test writes only files under its own route prefix,
"<instance>-t<8 hex>-", inside the test installation's ("slipwaytest-"), through a router
whose instance is that prefix: its sync() and ensure_platform() stay inside it too. Every
wait polls against a deadline.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from cryptography import x509
from django.conf import settings
from django.core.management import call_command
from requests.adapters import HTTPAdapter

from deployments.adapters.router import ProxyError, Route, managed_prefix
from deployments.adapters.router.default_certificate import NAME as DEFAULT_NAME
from deployments.adapters.router.traefik import (
    DEFAULT_CERTIFICATE,
    STAGING_DIR,
    TraefikRouter,
    render_static,
    route_of_file,
    static_config,
    write_atomically,
    write_static_config,
)
from tests import router_process

TRAEFIK = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "traefik"
HEALTH = "/health"  # the upstreams' health path: kept out of their request counts


# --- loopback servers -------------------------------------------------------------------------


class Upstream(ThreadingHTTPServer):
    """A web replica: answers its name, keeps connections alive, counts requests."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, name: str):
        self.name = name
        self.served = 0
        self.last_headers: dict[str, str] = {}
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.busy: set[socket.socket] = set()  # those between a request line and its answer
        self.stopping = False
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        """Go away like a replica told to stop: the port closes, idle keep-alive connections
        close at once, a response under way is finished and its connection closed."""
        self.stopping = True
        self.shutdown()
        self.server_close()
        with self.lock:
            idle = self.connections - self.busy
        for connection in idle:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address):
        pass  # a stopped replica's idle connections end mid-read; that is the point


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self):
        with self.server.lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def parse_request(self):
        with self.server.lock:
            self.server.busy.add(self.connection)
        return super().parse_request()

    def do_GET(self):
        if self.path != HEALTH:
            with self.server.lock:
                self.server.served += 1
                self.server.last_headers = dict(self.headers.items())
        self._answer(200, self.server.name.encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(200, f"{self.server.name} got {len(body)}".encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.server.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.busy.discard(self.connection)

    def log_message(self, *args):
        pass


class PagesServer(ThreadingHTTPServer):
    """Stands in for the dashboard's page view: /_slipway/page/<route_id>/ answers 503."""

    daemon_threads = True

    def __init__(self, texts: dict[str, str]):
        self.texts = texts
        self.requests: list[tuple[str, str]] = []  # (path, Host)
        super().__init__(("127.0.0.1", 0), _PagesHandler)
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _PagesHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = urlsplit(self.path).path
        self.server.requests.append((path, self.headers.get("Host", "")))
        route_id = path.removeprefix("/_slipway/page/").removesuffix("/")
        text = self.server.texts.get(route_id)
        status, body = (503, text.encode()) if text is not None else (404, b"no such page")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _traefik_is_up():
    assert router_process.ping(), (
        f"the test Traefik does not answer at {settings.PAAS_ROUTER_API_URL}/ping "
        "(scripts/test starts it with `scripts/services traefik`)"
    )


@pytest.fixture
def tag() -> str:
    """This test's instance name: "<instance>-t<8 hex>", so its prefix is inside ours."""
    return f"{managed_prefix()}t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def router(tag):
    router = TraefikRouter(instance=tag)
    yield router
    for leftover in router.dynamic_dir.glob(f"{tag}-*"):
        leftover.unlink(missing_ok=True)


@pytest.fixture
def upstreams():
    made: list[Upstream] = []

    def make(*names: str) -> list[Upstream]:
        new = [Upstream(name) for name in names]
        made.extend(new)
        return new

    yield make
    for upstream in made:
        if not upstream.stopping:
            upstream.stop()


def web_url(path: str = "/") -> str:
    return f"http://127.0.0.1:{settings.PAAS_ROUTER_HTTP_PORT}{path}"


def fetch(host: str, path: str = "/", method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, web_url(path), headers={"Host": host}, timeout=5, **kwargs)


def eventually(check, timeout: float = 10.0, interval: float = 0.02):
    """check()'s first truthy value within `timeout` seconds, else the test fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not true within {timeout} s: {check}"
        time.sleep(interval)


def route_for(tag: str, name: str, ups: list[Upstream], **fields) -> Route:
    return Route(
        route_id=f"{tag}-{name}",
        hosts=(f"{tag}-{name}.localhost",),
        upstreams=tuple(u.address for u in ups),
        health_path=HEALTH,
        **fields,
    )


def applied(router: TraefikRouter, route: Route) -> Route:
    router.apply(route)
    router.wait_applied(route, timeout=10)
    return route


def apr1(password: str) -> str:
    result = subprocess.run(
        ["openssl", "passwd", "-apr1", "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def service_status(router: TraefikRouter, route_id: str) -> dict:
    url = f"{router.api_url}/api/http/services/{route_id}@file"
    return requests.get(url, timeout=5).json().get("serverStatus", {})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_addresses() -> list[str]:
    """This host's non-loopback addresses (`hostname -I`)."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [a for a in out.split() if not ipaddress.ip_address(a).is_loopback]


def answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


# --- routing ----------------------------------------------------------------------------------


def test_routes_each_host_of_a_route_and_404s_an_unknown_host(router, tag, upstreams):
    (up,) = upstreams("one")
    route = applied(
        router,
        replace(route_for(tag, "web", [up]), hosts=(f"{tag}-a.localhost", f"{tag}-b.localhost")),
    )

    assert [fetch(host).text for host in route.hosts] == ["one", "one"]
    assert fetch(f"{tag}-unknown.localhost").status_code == 404


def test_apply_writes_one_whole_file_and_no_temp_file(router, tag, upstreams):
    (up,) = upstreams("one")
    route = route_for(tag, "web", [up])

    router.apply(route)

    files = sorted(p.name for p in router.dynamic_dir.iterdir() if p.name.startswith(tag))
    assert files == [f"{route.route_id}.yml"]
    text = (router.dynamic_dir / files[0]).read_text()
    config = yaml.safe_load(text)
    assert config["http"]["services"][route.route_id]["loadBalancer"]["servers"] == [
        {"url": up.url}
    ]
    assert route_of_file(text) == route == router.get(route.route_id)


def test_a_temp_file_is_written_outside_the_watched_directory(tmp_path):
    # Its creation there would be an event: a reload of the old configuration, which the
    # throttle then made the real change wait behind.
    staging = tmp_path / STAGING_DIR
    staging.mkdir()
    path = tmp_path / "route.yml"

    write_atomically(path, "new", staging=staging)

    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [STAGING_DIR, "route.yml"]
    assert list(staging.iterdir()) == []


def test_the_default_tls_store_gets_a_certificate_made_once(router, tag, upstreams):
    (up,) = upstreams("one")
    applied(router, route_for(tag, "web", [up]))
    path = router.dynamic_dir / DEFAULT_CERTIFICATE
    first = path.read_text()
    applied(router, route_for(tag, "other", [up]))

    assert path.read_text() == first
    pair = yaml.safe_load(first)["tls"]["stores"]["default"]["defaultCertificate"]
    certificate = x509.load_pem_x509_certificate(pair["certFile"].encode())
    assert certificate.subject.rfc4514_string() == f"CN={DEFAULT_NAME}"
    assert "PRIVATE KEY" in pair["keyFile"]
    assert router.route_ids() == [f"{tag}-other", f"{tag}-web"]  # no route of its own


def test_traefik_does_not_load_a_temp_file(router, tag, upstreams):
    (up,) = upstreams("one")
    half_written = route_for(tag, "temp", [up])
    temp = router.dynamic_dir / f"{half_written.route_id}.yml.0123abcd.tmp"
    temp.write_text(router.render(half_written))
    # A later file that Traefik does load: once it is served, the temp file was seen too.
    applied(router, route_for(tag, "web", [up]))

    assert fetch(half_written.hosts[0]).status_code == 404
    assert router.route_ids() == [f"{tag}-web"]


def test_every_upstream_receives_traffic(router, tag, upstreams):
    ups = upstreams("a", "b", "c")
    route = applied(router, route_for(tag, "web", ups))

    with requests.Session() as session:
        bodies = [
            session.get(web_url(), headers={"Host": route.hosts[0]}, timeout=5).text
            for _ in range(30)
        ]

    assert sorted(set(bodies)) == ["a", "b", "c"]
    assert all(up.served >= 5 for up in ups), [up.served for up in ups]


def test_upstream_sees_forwarded_headers_set_by_traefik_not_the_client(router, tag, upstreams):
    (up,) = upstreams("one")
    route = applied(router, route_for(tag, "web", [up]))
    spoofed = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "203.0.113.9",
        "X_Forwarded_Proto": "https",  # WSGI would read it as X-Forwarded-Proto
    }

    requests.get(web_url(), headers={"Host": route.hosts[0], **spoofed}, timeout=5)

    seen = up.last_headers
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert "X_Forwarded_Proto" not in seen
    assert seen["Host"] == route.hosts[0]  # passHostHeader


def test_a_stopped_upstream_leaves_the_pool_while_requests_keep_succeeding(router, tag, upstreams):
    a, b, doomed = upstreams("a", "b", "doomed")
    route = applied(router, route_for(tag, "web", [a, b, doomed]))
    outcomes: list[str] = []
    stop = threading.Event()

    def client():
        with requests.Session() as session:
            while not stop.is_set() and len(outcomes) < 5000:
                try:
                    response = session.get(web_url(), headers={"Host": route.hosts[0]}, timeout=5)
                    ok = response.status_code == 200
                    outcomes.append(response.text if ok else f"failed: {response.status_code}")
                except requests.RequestException as exc:
                    outcomes.append(f"failed: {exc!r}")

    thread = threading.Thread(target=client)
    thread.start()
    try:
        eventually(lambda: len(outcomes) >= 100)
        doomed.stop()
        stopped_at = len(outcomes)
        eventually(lambda: service_status(router, route.route_id).get(doomed.url) == "DOWN")
        down_at = len(outcomes)
        eventually(lambda: len(outcomes) >= down_at + 100)
    finally:
        stop.set()
        thread.join(timeout=10)

    assert [o for o in outcomes if o.startswith("failed")] == []
    assert len(outcomes) - stopped_at >= 100
    assert {"a", "b"} <= set(outcomes[down_at:])


def test_switching_upstreams_under_keepalive_clients_fails_no_request(
    router, tag, upstreams, capsys
):
    """10 keep-alive clients for ~5 s while the route's upstream changes every 0.3 s."""
    a, b = upstreams("A", "B")
    route_a = applied(router, route_for(tag, "web", [a]))
    route_b = replace(route_a, upstreams=(b.address,))
    clients = 10
    results = [{"ok": 0, "failed": 0, "connections": None} for _ in range(clients)]
    stop = threading.Event()

    def client(result: dict) -> None:
        with requests.Session() as session:
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("http://", adapter)
            while not stop.is_set() and result["ok"] + result["failed"] < 20000:
                try:
                    response = session.get(web_url(), headers={"Host": route_a.hosts[0]}, timeout=5)
                    good = response.status_code == 200 and response.text in ("A", "B")
                except requests.RequestException:
                    good = False
                result["ok" if good else "failed"] += 1
            # How many TCP connections it opened: 1 when Traefik never closed one.
            pools = adapter.poolmanager.pools
            result["connections"] = sum(pools[key].num_connections for key in pools.keys())

    threads = [threading.Thread(target=client, args=(r,)) for r in results]
    for thread in threads:
        thread.start()
    latencies: list[float] = []
    first_after: list[bool] = []  # did the first request after wait_applied reach the new one?
    current = route_a
    try:
        started = time.monotonic()
        next_switch = started
        while time.monotonic() - started < 5.0 and len(latencies) < 30:
            time.sleep(max(0.0, next_switch - time.monotonic()))
            current = route_b if current is route_a else route_a
            written = time.monotonic()
            router.apply(current)
            router.wait_applied(current, timeout=5)
            latencies.append(time.monotonic() - written)
            want = "B" if current is route_b else "A"
            first_after.append(fetch(current.hosts[0]).text == want)
            next_switch += 0.3
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)

    ok = sum(r["ok"] for r in results)
    failed = sum(r["failed"] for r in results)
    with capsys.disabled():
        print(
            f"\n[traefik switch] {len(latencies)} switches, write->applied median "
            f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
            f"{ok} requests ok, {failed} failed, from {clients} keep-alive clients; "
            f"connections per client {[r['connections'] for r in results]}; "
            f"first request after wait_applied on the new upstream {sum(first_after)}"
            f"/{len(first_after)}"
        )
    assert failed == 0
    assert len(latencies) >= 10
    assert ok > 10 * clients
    assert all(r["connections"] == 1 for r in results), [r["connections"] for r in results]
    assert a.served > 0 and b.served > 0
    assert all(first_after)


def test_a_switch_is_served_within_a_few_milliseconds_of_its_write(router, tag, upstreams):
    """70 to 250 ms here while each write's temp file was an event of its own (the throttle
    then held the change back) and Traefik made a new default key at every change."""
    a, b = upstreams("A", "B")
    route_a = applied(router, route_for(tag, "web", [a]))
    route_b = replace(route_a, upstreams=(b.address,))
    current, latencies = route_a, []
    for _ in range(10):
        time.sleep(0.2)  # the previous change's throttle (50 ms) is over: each is a first
        current = route_b if current is route_a else route_a
        written = time.monotonic()
        router.apply(current)
        router.wait_applied(current, timeout=5)
        latencies.append(time.monotonic() - written)

    assert statistics.median(latencies) < 0.04, latencies


# --- pages, basic auth, body limit ------------------------------------------------------------


def test_a_page_route_answers_503_with_the_text(tag):
    route_id = f"{tag}-web"
    text = "This app is stopped."
    pages = PagesServer({route_id: text})
    router = TraefikRouter(instance=tag, pages_upstream=pages.address)
    try:
        route = applied(router, Route(route_id, hosts=(f"{tag}-web.localhost",), page=text))

        response = fetch(route.hosts[0], "/any/path?x=1")

        assert (response.status_code, response.text) == (503, text)
        assert pages.requests[-1] == (f"/_slipway/page/{route_id}/", pages.address)
    finally:
        router.remove(route_id)
        pages.shutdown()
        pages.server_close()


def test_a_page_text_with_template_braces_reads_back_and_loads(router, tag, upstreams):
    (up,) = upstreams("one")
    route = replace(route_for(tag, "web", [up]), page='Back at {{ .Noon }}\n"soon" — {{{x}}}')

    applied(router, route)

    assert router.get(route.route_id) == route
    assert "{{" not in (router.dynamic_dir / f"{route.route_id}.yml").read_text()


def test_basic_auth_asks_for_credentials_and_stores_no_plain_password(router, tag, upstreams):
    (up,) = upstreams("one")
    password = f"pw-{uuid.uuid4().hex}"
    route = applied(router, route_for(tag, "web", [up], basic_auth=(f"alice:{apr1(password)}",)))

    assert fetch(route.hosts[0]).status_code == 401
    assert fetch(route.hosts[0], auth=("alice", "wrong")).status_code == 401
    assert fetch(route.hosts[0], auth=("alice", password)).status_code == 200
    assert "Authorization" not in up.last_headers  # removeHeader
    assert password not in (router.dynamic_dir / f"{route.route_id}.yml").read_text()


def test_a_plain_password_is_refused(router, tag, upstreams):
    (up,) = upstreams("one")
    route = route_for(tag, "web", [up], basic_auth=("alice:secret",))

    with pytest.raises(ValueError) as refused:
        router.apply(route)

    assert "secret" not in str(refused.value)
    assert router.route_ids() == []


def test_a_body_over_the_limit_gets_413(router, tag, upstreams):
    (up,) = upstreams("one")
    route = applied(router, route_for(tag, "web", [up], max_body_bytes=1000))

    assert fetch(route.hosts[0], method="POST", data=b"x" * 1001).status_code == 413
    below = fetch(route.hosts[0], method="POST", data=b"x" * 1000)
    assert (below.status_code, below.text) == (200, "one got 1000")


# --- files: sync, remove, ids -----------------------------------------------------------------


def test_sync_removes_stale_files_of_this_instance_only(router, tag, upstreams):
    (up,) = upstreams("one")
    kept = route_for(tag, "kept", [up])
    stale = route_for(tag, "stale", [up])
    router.apply(kept)
    router.apply(stale)
    other = router.dynamic_dir / f"other{tag.removeprefix(managed_prefix())}-web.yml"
    other.write_text(router.render(route_for(tag, "other", [up])))
    sibling = tag + "x-web"  # another prefix of this installation, not this router's
    (router.dynamic_dir / f"{sibling}.yml").write_text(router.render(route_for(tag, "s", [up])))
    inode = (router.dynamic_dir / f"{kept.route_id}.yml").stat().st_ino
    added = route_for(tag, "added", [up])
    try:
        router.sync([kept, added])

        assert router.route_ids() == [added.route_id, kept.route_id]
        assert other.exists() and router.route_ids(prefix=sibling) == [sibling]
        # An unchanged file is not rewritten (Traefik gets nothing to apply for it).
        assert (router.dynamic_dir / f"{kept.route_id}.yml").stat().st_ino == inode
    finally:
        other.unlink(missing_ok=True)
        (router.dynamic_dir / f"{sibling}.yml").unlink(missing_ok=True)


def test_sync_keeps_the_platform_route(router, tag, upstreams):
    (dashboard,) = upstreams("dashboard")
    router.ensure_platform(f"{tag}-paas.localhost", dashboard.address)

    router.sync([])

    assert router.route_ids() == [router.platform_route_id]
    route = router.get(router.platform_route_id)
    router.wait_applied(route, timeout=10)
    assert fetch(f"{tag}-paas.localhost").text == "dashboard"


def test_removing_a_missing_route_is_fine(router, tag):
    router.remove(f"{tag}-never-there")

    assert router.get(f"{tag}-never-there") is None


def test_remove_takes_the_route_out_of_traefik(router, tag, upstreams):
    (up,) = upstreams("one")
    route = applied(router, route_for(tag, "web", [up]))

    router.remove(route.route_id)

    eventually(lambda: fetch(route.hosts[0]).status_code == 404)
    assert router.route_ids() == []


@pytest.mark.parametrize(
    "route_id", ["Slipwaytest-web", "a_b", "a/b", "../etc", "a.b", "", "-a", "a-", "a b", "é"]
)
def test_a_route_id_with_other_characters_is_refused(router, route_id):
    with pytest.raises(ValueError):
        router.apply(Route(route_id, hosts=("x.localhost",), upstreams=("127.0.0.1:1",)))
    with pytest.raises(ValueError):
        router.remove(route_id)
    with pytest.raises(ValueError):
        router.get(route_id)


@pytest.mark.parametrize(
    "hosts", [("Web.localhost",), ("a.localhost`) || Host(`b",), ("{{x}}.localhost",), ()]
)
def test_a_host_that_is_not_a_lowercase_name_is_refused(router, tag, hosts):
    with pytest.raises(ValueError):
        router.apply(Route(f"{tag}-web", hosts=hosts, upstreams=("127.0.0.1:1",)))


# --- Traefik's API ----------------------------------------------------------------------------


def test_wait_applied_gives_up_with_router_not_applied(router, tag):
    route = Route(f"{tag}-never-written", hosts=(f"{tag}.localhost",), upstreams=("127.0.0.1:1",))

    with pytest.raises(ProxyError) as error:
        router.wait_applied(route, timeout=0.3)

    assert error.value.code == "router_not_applied"


def test_an_unreachable_api_is_proxy_unreachable(tag):
    router = TraefikRouter(instance=tag, api_url=f"http://127.0.0.1:{free_port()}")
    route = Route(f"{tag}-web", hosts=(f"{tag}.localhost",), upstreams=("127.0.0.1:1",))

    assert router.ping() is False
    with pytest.raises(ProxyError) as error:
        router.wait_applied(route, timeout=0.2)
    assert error.value.code == "proxy_unreachable"


# --- the static configuration -----------------------------------------------------------------


def test_the_api_listens_on_loopback_only():
    running = yaml.safe_load(router_process.config_path().read_text())
    api_port = int(running["entryPoints"]["traefik"]["address"].rsplit(":", 1)[1])
    web_port = settings.PAAS_ROUTER_HTTP_PORT

    assert running["entryPoints"]["traefik"]["address"] == f"127.0.0.1:{api_port}"
    assert answers("127.0.0.1", api_port)
    for address in host_addresses():
        assert answers(address, web_port), f"{address} is not reachable: no proof"
        assert not answers(address, api_port), f"Traefik's API answers on {address}"


def test_static_config_with_tls_has_the_acme_resolver_and_the_redirect(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.PAAS_ROUTER_DYNAMIC_DIR = tmp_path / "dynamic"
    settings.PAAS_TLS = True
    settings.PAAS_ACME_EMAIL = "ops@example.com"
    path = tmp_path / "traefik.yml"

    call_command("paas_router_config", str(path))

    config = yaml.safe_load(path.read_text())
    acme = config["certificatesResolvers"]["acme"]["acme"]
    assert acme["httpChallenge"] == {"entryPoint": "web"}
    assert acme["email"] == "ops@example.com"
    assert Path(acme["storage"]).is_relative_to(tmp_path / "var" / "traefik")
    assert config["entryPoints"]["websecure"]["address"] == f":{settings.PAAS_ROUTER_HTTPS_PORT}"
    redirect = config["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]
    assert (redirect["to"], redirect["scheme"]) == ("websecure", "https")
    assert (tmp_path / "dynamic").is_dir()


def test_static_config_without_tls_has_neither(settings, tmp_path):
    settings.PAAS_TLS = False

    config = static_config()

    assert "certificatesResolvers" not in config and "websecure" not in config["entryPoints"]
    assert "redirections" not in config["entryPoints"]["web"]["http"]
    assert config["providers"]["file"] == {
        "directory": str(settings.PAAS_ROUTER_DYNAMIC_DIR),
        "watch": True,
    }
    assert config["providers"]["providersThrottleDuration"] == settings.PAAS_ROUTER_THROTTLE
    assert config["entryPoints"]["web"]["forwardedHeaders"] == {"insecure": False}
    assert "accessLog" not in config


@contextlib.contextmanager
def tls_traefik(settings, tmp_path):
    """A Traefik of its own with PAAS_TLS, on free loopback ports: (web, websecure)."""
    web, websecure, api = free_port(), free_port(), free_port()
    settings.VAR_DIR = tmp_path / "var"
    settings.PAAS_ROUTER_DYNAMIC_DIR = tmp_path / "dynamic"
    settings.PAAS_TLS = True
    settings.PAAS_ROUTER_HTTP_PORT, settings.PAAS_ROUTER_HTTPS_PORT = web, websecure
    settings.PAAS_ROUTER_API_URL = f"http://127.0.0.1:{api}"
    path = tmp_path / "traefik.yml"
    # As the command writes it (it also makes the ACME storage's directory, without which
    # Traefik drops the resolver), plus a CA that is never reached.
    config = write_static_config(path)
    config["certificatesResolvers"]["acme"]["acme"]["caServer"] = "https://127.0.0.1:9/dir"
    # On loopback: free_port() knows only that the port is free there.
    for name, port in (("web", web), ("websecure", websecure)):
        config["entryPoints"][name]["address"] = f"127.0.0.1:{port}"
    path.write_text(render_static(config))
    process = subprocess.Popen(
        [str(TRAEFIK), f"--configFile={path}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        eventually(lambda: TraefikRouter(api_url=settings.PAAS_ROUTER_API_URL).ping())
        yield web, websecure
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_tls_traefik_redirects_http_but_still_answers_acme_challenges(settings, tmp_path):
    with tls_traefik(settings, tmp_path) as (web, websecure):
        base = f"http://127.0.0.1:{web}"
        headers = {"Host": "app.example.com"}

        def get(path: str) -> requests.Response:
            return requests.get(base + path, headers=headers, allow_redirects=False, timeout=5)

        def challenge_status() -> int | None:
            status = get("/.well-known/acme-challenge/token").status_code
            return None if status in (301, 308) else status

        # The challenge's router comes a moment after the redirect's: wait for it.
        status = eventually(challenge_status)
        page = get("/x?y=1")

    assert status == 404  # no such token: answered by the ACME handler, not redirected
    assert page.status_code in (301, 308)
    assert page.headers["Location"].startswith(f"https://app.example.com:{websecure}/x")


def test_a_host_without_a_certificate_gets_the_default_one_of_ours(settings, tmp_path):
    with tls_traefik(settings, tmp_path) as (_, websecure):
        router = TraefikRouter()
        # Not verified yet, so no certificate is asked for: the default store's answers.
        host = "unverified.example.com"
        route = Route(f"{settings.PAAS_INSTANCE}-check", (host,), page="", tls=True, acme=False)
        applied(router, route)

        def served_name() -> str:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            with (
                socket.create_connection(("127.0.0.1", websecure), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                der = tls.getpeercert(binary_form=True)
            return x509.load_der_x509_certificate(der).subject.rfc4514_string()

        assert eventually(lambda: served_name() == f"CN={DEFAULT_NAME}")


# --- Traefik restarts -------------------------------------------------------------------------


def test_after_a_sigkill_and_a_restart_traefik_serves_the_routes_again(router, tag, upstreams):
    (up,) = upstreams("one")
    before = applied(router, route_for(tag, "before", [up]))

    router_process.kill()
    assert not router.ping()
    during = route_for(tag, "during", [up])
    router.apply(during)  # written while Traefik is down
    router_process.start()

    for route in (before, during):
        router.wait_applied(route, timeout=10)
        assert eventually(lambda r=route: fetch(r.hosts[0]).status_code == 200)
