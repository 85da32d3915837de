"""The Caddy proxy adapter against the real Caddy (admin API at 127.0.0.1:2019; none: fail).

The shared Caddy is never reloaded with an empty config. Tests touch only routes under
their own `<instance>_test_<uuid>-` prefix: outside the installation's "<instance>-", so
a warden syncing the same installation meanwhile leaves them alone. The restart test
runs a private Caddy.
"""

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import requests
from django.conf import settings

from deployments import wiring
from deployments.adapters.router import ProxyError, RouteSpec
from deployments.adapters.router.caddy import CaddyProxy, as_seconds, etag_of


class Upstream(ThreadingHTTPServer):
    daemon_threads = True

    request_queue_size = 128

    def __init__(self, body: str):
        self.body = body.encode()
        self.served, self.lock = 0, threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def dial(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with self.server.lock:
            self.server.served += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def upstreams():
    a, b = Upstream("A"), Upstream("B")
    yield SimpleNamespace(a=a.dial, b=b.dial, served=lambda: a.served + b.served)
    for server in (a, b):
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy():
    return wiring.router()


@pytest.fixture
def prefix(proxy):
    prefix = f"{settings.PAAS_INSTANCE}_test_{uuid.uuid4().hex[:12]}-"
    yield prefix
    for route_id in proxy.route_ids(prefix.rstrip("-")):  # the "_outside" one too
        proxy.remove_route(route_id)


def route(prefix, name):
    """A route id under the test's prefix and a hostname nobody else routes."""
    unique = prefix.rsplit("_", 1)[-1].rstrip("-")
    return prefix + name, f"{name}-{unique}.localhost"


def through_proxy(host, port=None):
    url = f"http://127.0.0.1:{port or settings.PAAS_PROXY_HTTP_PORT}/"
    return requests.get(url, headers={"Host": host}, timeout=5)


def count_writes(proxy, monkeypatch):
    writes = []
    real = proxy._request

    def spy(method, path, *args, **kwargs):
        if method != "GET":
            writes.append((method, path))
        return real(method, path, *args, **kwargs)

    monkeypatch.setattr(proxy, "_request", spy)
    return writes


def test_set_route_routes_the_host_then_swaps_only_the_upstream(
    proxy, prefix, upstreams, monkeypatch
):
    route_id, host = route(prefix, "web")
    proxy.set_route(route_id, [host], upstreams.a)
    assert through_proxy(host).text == "A"
    writes = count_writes(proxy, monkeypatch)
    proxy.set_route(route_id, [host], upstreams.b)
    assert through_proxy(host).text == "B"
    assert writes == [("PATCH", f"/id/{route_id}/handle/0/upstreams")]
    assert proxy.upstream_of(route_id) == upstreams.b
    proxy.set_route(route_id, [host.upper()], upstreams.b)  # same route: no request at all
    assert len(writes) == 1


def test_changing_the_hosts_replaces_the_route(proxy, prefix, upstreams):
    route_id, host = route(prefix, "web")
    proxy.set_route(route_id, [host], upstreams.a)
    proxy.set_route(route_id, [host, "www." + host], upstreams.a)
    assert through_proxy("www." + host).text == "A"
    assert proxy.get_route(route_id)["match"] == [{"host": [host, "www." + host]}]


def test_switching_upstreams_back_and_forth_drops_no_request(proxy, prefix, upstreams):
    """Every request gets its answer across 5 switches, a new connection each.

    Each change reloads Caddy 2.6, which binds a fresh SO_REUSEPORT socket and closes the
    old one: a connection still queued on the old socket is reset before Caddy reads its
    request. That reset is the retryable kind (the app never saw the request), and this
    test proves it: the app served exactly as many requests as got answers.
    """
    route_id, host = route(prefix, "zero-drop")
    proxy.set_route(route_id, [host], upstreams.a)
    served_before = upstreams.served()
    answers, resets, swap_seconds = [], [], []

    def client():
        for _ in range(300):  # a new connection each time: requests.get has no pool
            answers.append(answer_retrying_a_reset(host, resets))

    thread = threading.Thread(target=client)
    thread.start()
    for turn in range(5):
        time.sleep(0.08)
        started = time.monotonic()
        proxy.set_route(route_id, [host], upstreams.b if turn % 2 == 0 else upstreams.a)
        swap_seconds.append(time.monotonic() - started)
        answers.append(answer_retrying_a_reset(host, resets))
        assert answers[-1] == ("B" if turn % 2 == 0 else "A")  # switched at once
    swapped_while_busy = thread.is_alive()
    thread.join()
    failures = [answer for answer in answers if answer not in ("A", "B")]
    print(
        f"\nzero-drop: {len(answers)} requests, {len(failures)} failed, {len(resets)} reset "
        f"before Caddy read them (retried once); 5 swaps of "
        f"{', '.join(f'{s * 1000:.0f}' for s in swap_seconds)} ms"
    )
    assert swapped_while_busy and len(answers) == 305
    assert failures == []
    assert upstreams.served() - served_before == len(answers)  # no request lost in the app
    assert {"A", "B"} <= set(answers)


def answer_retrying_a_reset(host, resets):
    """The body, or why there is none; one retry after a connection error, as HTTP allows
    for a request the server did not process."""
    for attempt in range(2):
        try:
            response = through_proxy(host)
            return response.text if response.ok else f"HTTP {response.status_code}"
        except requests.ConnectionError as exc:
            if attempt:
                return repr(exc)
            resets.append(exc)
        except requests.RequestException as exc:
            return repr(exc)


def test_a_stopped_app_gets_the_static_page_and_comes_back(proxy, prefix, upstreams):
    route_id, host = route(prefix, "web")
    proxy.set_route(route_id, [host], upstreams.a)
    proxy.set_static_route(route_id, [host])
    response = through_proxy(host)
    assert response.status_code == 503 and response.text == "This app is stopped."
    assert proxy.upstream_of(route_id) is None
    proxy.set_route(route_id, [host], upstreams.b)  # a whole-route swap back
    assert through_proxy(host).text == "B"


def test_remove_route_stops_routing_and_tolerates_a_missing_route(proxy, prefix, upstreams):
    route_id, host = route(prefix, "web")
    proxy.set_route(route_id, [host], upstreams.a)
    assert proxy.route_ids(prefix) == [route_id]
    proxy.remove_route(route_id)
    proxy.remove_route(route_id)
    assert proxy.get_route(route_id) is None and proxy.route_ids(prefix) == []
    assert through_proxy(host).text != "A"  # Caddy answers an unmatched host with an empty 200
    assert proxy.upstream_of(route_id) is None


def test_concurrent_first_set_routes_make_a_single_route(proxy, prefix, upstreams):
    route_id, host = route(prefix, "race")
    errors = []

    def set_it(upstream):
        try:
            proxy.set_route(route_id, [host], upstream)
        except ProxyError as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=set_it, args=(u,)) for u in [upstreams.a] * 3 + [upstreams.b] * 3
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert proxy.route_ids(prefix) == [route_id]


def test_ensure_server_is_idempotent_and_keeps_routes(proxy, prefix, upstreams, monkeypatch):
    route_id, host = route(prefix, "web")
    proxy.set_route(route_id, [host], upstreams.a)
    writes = count_writes(proxy, monkeypatch)
    proxy.ensure_server()
    proxy.ensure_server()
    assert writes == []
    assert through_proxy(host).text == "A"
    server = requests.get(proxy.admin_url + proxy.server_path, timeout=5).json()
    assert proxy.server_path.endswith(f"/servers/{settings.PAAS_INSTANCE}")
    assert server["listen"] == [f":{settings.PAAS_PROXY_HTTP_PORT}"]
    assert server["automatic_https"] == {"disable": True}
    grace = requests.get(proxy.admin_url + "/config/apps/http/grace_period", timeout=5).json()
    assert as_seconds(grace) >= settings.PAAS_DRAIN_SECONDS


def test_sync_restores_missing_routes_and_removes_strays_under_its_prefix(
    proxy, prefix, upstreams, monkeypatch
):
    (web, web_host), (worker, worker_host) = route(prefix, "web"), route(prefix, "stopped")
    stray, stray_host = route(prefix, "stray")
    outside = prefix.rstrip("-") + "_outside"  # not under the prefix: sync leaves it be
    proxy.set_route(stray, [stray_host], upstreams.a)
    proxy.set_route(outside, [route(prefix, "outside")[1]], upstreams.a)
    proxy.set_route(web, [web_host], upstreams.a)
    wanted = [RouteSpec(web, [web_host], upstreams.b), RouteSpec(worker, [worker_host], None)]
    proxy.sync(wanted, prefix=prefix)
    assert through_proxy(web_host).text == "B"
    assert through_proxy(worker_host).status_code == 503
    assert proxy.get_route(stray) is None
    assert proxy.upstream_of(outside) == upstreams.a
    writes = count_writes(proxy, monkeypatch)
    proxy.sync(wanted, prefix=prefix)
    assert writes == []  # already in shape: no reload
    proxy.remove_route(outside)


def test_the_server_follows_the_domain_kind():
    local = CaddyProxy(admin_url="http://x", http_port=80, https_port=443, domain="localhost")
    assert local._server()["automatic_https"] == {"disable": True}
    for domain in ("apps.localhost", "127.0.0.1", "::1"):
        assert "automatic_https" in CaddyProxy("http://x", domain=domain)._server()
    public = CaddyProxy("http://x", http_port=80, https_port=443, domain="paas.example.com")
    assert public._server() == {"listen": [":80", ":443"], "routes": []}


def test_an_unreachable_caddy_raises_proxy_unreachable():
    with pytest.raises(ProxyError) as caught:
        CaddyProxy(admin_url="http://127.0.0.1:1").route_ids()
    assert caught.value.code == "proxy_unreachable" and not caught.value.user_fault


# --- a private Caddy, for what must not happen to the shared one --------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateCaddy:
    """A `caddy run` of our own, started like scripts/services starts it: no http app."""

    def __init__(self, home):
        self.home, self.admin_port, self.http_port = home, free_port(), free_port()
        self.config = home / "caddy.json"
        config = {
            "admin": {"listen": f"127.0.0.1:{self.admin_port}"},
            # Certificates for *.localhost under a public domain come from Caddy's own CA:
            # keep it out of this host's trust store.
            "apps": {"pki": {"certificate_authorities": {"local": {"install_trust": False}}}},
        }
        self.config.write_text(json.dumps(config))
        self.process = None

    @property
    def admin_url(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self):
        env = {
            **os.environ,
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
        }
        log = open(self.home / "caddy.log", "a")
        self.process = subprocess.Popen(
            ["caddy", "run", "--config", str(self.config)], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 10
        while not self._up():
            assert time.monotonic() < deadline, (self.home / "caddy.log").read_text()[-2000:]
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)

    def _up(self):
        try:
            return requests.get(self.admin_url + "/config/", timeout=1).ok
        except requests.RequestException:
            return False


@pytest.fixture
def private_caddy(tmp_path):
    caddy = PrivateCaddy(tmp_path)
    caddy.start()
    yield caddy
    if caddy.process.poll() is None:
        caddy.stop()


def test_after_a_caddy_restart_sync_brings_every_route_back(private_caddy, upstreams):
    proxy = CaddyProxy(
        private_caddy.admin_url, http_port=private_caddy.http_port, instance="slipway"
    )
    wanted = [
        RouteSpec("slipway-one", ["one.localhost"], upstreams.a),
        RouteSpec("slipway-two", ["two.localhost", "www.two.localhost"], upstreams.b),
        RouteSpec("slipway-three", ["three.localhost"], None),
    ]
    proxy.sync(wanted)
    private_caddy.stop()
    private_caddy.start()  # back to its admin-only config: no server, no routes
    assert proxy.route_ids() == []
    proxy.sync(wanted)
    assert proxy.route_ids() == ["slipway-one", "slipway-two", "slipway-three"]
    port = private_caddy.http_port
    assert through_proxy("one.localhost", port).text == "A"
    assert through_proxy("www.two.localhost", port).text == "B"
    assert through_proxy("three.localhost", port).status_code == 503


def test_ensure_server_follows_a_domain_change_and_keeps_routes(private_caddy, upstreams):
    https_port = free_port()
    local = CaddyProxy(
        private_caddy.admin_url, http_port=private_caddy.http_port, instance="slipway"
    )
    local.set_route("slipway-one", ["one.localhost"], upstreams.a)
    public = CaddyProxy(
        private_caddy.admin_url,
        private_caddy.http_port,
        https_port,
        domain="paas.example.com",
        instance="slipway",
    )
    public.ensure_server()
    server = requests.get(private_caddy.admin_url + public.server_path, timeout=5).json()
    assert server["listen"] == [f":{private_caddy.http_port}", f":{https_port}"]
    assert "automatic_https" not in server
    local.ensure_server()
    assert local.route_ids() == ["slipway-one"]
    assert through_proxy("one.localhost", private_caddy.http_port).text == "A"


def test_installations_sharing_a_caddy_only_ever_raise_the_grace_period(private_caddy, settings):
    proxy = CaddyProxy(private_caddy.admin_url, http_port=private_caddy.http_port)
    grace_url = private_caddy.admin_url + "/config/apps/http/grace_period"
    settings.PAAS_DRAIN_SECONDS = 10
    proxy.ensure_server()
    settings.PAAS_DRAIN_SECONDS = 1
    proxy.ensure_server()
    assert requests.get(grace_url, timeout=5).json() == "10s"
    settings.PAAS_DRAIN_SECONDS = 30
    proxy.ensure_server()
    assert requests.get(grace_url, timeout=5).json() == "30s"


def test_the_etag_is_caddys_including_leading_zeros(private_caddy):
    # Caddy sends the ETag only as a trailer, which requests drops: the adapter computes it.
    for path in ("/config/", "/config/apps", "/config/admin/listen"):
        body, trailer = raw_get_with_trailer(private_caddy.admin_port, path)
        assert etag_of(path, body) == trailer
    assert etag_of("/config/apps", b"null\n") == '"/config/apps 0e7c22ea"'  # seen from Caddy


def raw_get_with_trailer(port, path):
    """The body and ETag trailer of a chunked GET, read off the socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    rest = raw.split(b"\r\n\r\n", 1)[1]
    body = b""
    while True:
        size, rest = rest.split(b"\r\n", 1)
        if int(size, 16) == 0:
            break
        body, rest = body + rest[: int(size, 16)], rest[int(size, 16) + 2 :]
    trailer = rest.decode().split("Etag: ")[1].split("\r\n")[0]
    return body, trailer
