"""PAAS_MAX_REQUEST_BYTES: the router refuses a larger body to the dashboard's host with 413
before gunicorn reads it, and the middleware refuses it for a request that reaches Django
another way, from its Content-Length alone (JSON for the API, text for the dashboard)."""

import http.client
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.conf import settings as django_settings

from deployments.adapters.router import managed_prefix
from deployments.adapters.router.traefik import TraefikRouter
from tests import router_process

MIB = 1024 * 1024
CAP = 4096


class Recorder(ThreadingHTTPServer):
    """Stands for gunicorn: answers every request, remembers the ones that got here."""

    daemon_threads = True

    def __init__(self):
        self.seen: list[dict] = []
        super().__init__(("127.0.0.1", 0), _RecorderHandler)
        threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _RecorderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append({**dict(self.headers.items()), "body": len(body)})
        answer = f"got {len(body)}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def tag() -> str:
    return f"{managed_prefix()}t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def platform_route(tag, settings):
    """The dashboard's route, as the warden writes it, under this test's own prefix and
    host, with a small cap; yields a function that points it at an upstream."""
    assert router_process.ping(), "the test Traefik does not answer (scripts/test starts it)"
    settings.PAAS_MAX_REQUEST_BYTES = CAP
    router = TraefikRouter(instance=tag)
    host = f"{tag}-paas.localhost"

    def to(upstream: str) -> str:
        router.ensure_platform(host, upstream)
        router.wait_applied(router.get(router.platform_route_id), timeout=10)
        return host

    yield to
    for leftover in router.dynamic_dir.glob(f"{tag}-*"):
        leftover.unlink(missing_ok=True)


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.shutdown()
    server.server_close()


def through_router(host: str, body, path: str = "/accounts/login/") -> requests.Response:
    url = f"http://127.0.0.1:{django_settings.PAAS_ROUTER_HTTP_PORT}{path}"
    return requests.post(url, data=body, headers={"Host": host}, timeout=10)


# --- at the router ----------------------------------------------------------------------------


def test_the_router_refuses_a_body_over_the_cap_before_the_upstream_sees_it(
    platform_route, recorder
):
    host = platform_route(recorder.address)

    refused = through_router(host, b"x" * (CAP + 1))
    passed = through_router(host, b"x" * CAP)

    assert refused.status_code == 413
    assert (passed.status_code, passed.text) == (200, f"got {CAP}")
    assert [seen["body"] for seen in recorder.seen] == [CAP]  # only the one under the cap


def test_a_chunked_body_reaches_the_upstream_with_a_length_or_not_at_all(platform_route, recorder):
    host = platform_route(recorder.address)

    def chunks(total):
        yield from (b"y" * 512 for _ in range(total // 512))

    assert through_router(host, chunks(CAP * 2)).status_code == 413
    assert through_router(host, chunks(CAP)).status_code == 200

    # The router buffered it: gunicorn gets a Content-Length, never a chunked body.
    (seen,) = recorder.seen
    assert seen["Content-Length"] == str(CAP) and "Transfer-Encoding" not in seen


def test_the_router_answers_413_for_the_real_dashboard_and_passes_a_small_body_to_django(
    platform_route, dashboard
):
    host = platform_route(django_settings.PAAS_DASHBOARD_UPSTREAM)

    refused = through_router(host, b"x" * (CAP + 1))
    answered = through_router(host, b"x" * 10)

    assert refused.status_code == 413
    assert "PAAS_MAX_REQUEST_BYTES" not in refused.text  # Traefik's answer, not Django's
    # Django answered this one: the test host is not in its ALLOWED_HOSTS.
    assert answered.status_code == 400


# --- in Django, at the real gunicorn ----------------------------------------------------------


def raw_post(path: str, headers: dict, body: bytes = b"") -> http.client.HTTPResponse:
    host, _, port = django_settings.PAAS_DASHBOARD_UPSTREAM.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", path)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    if body:
        connection.send(body)
    return connection.getresponse()


def test_gunicorn_refuses_a_declared_length_over_the_cap_without_reading_the_body(dashboard):
    declared = django_settings.PAAS_MAX_REQUEST_BYTES + MIB
    # Only the headers are sent: an answer proves Django did not wait for the body.
    response = raw_post("/accounts/login/", {"Content-Length": str(declared)})

    assert response.status == 413
    assert "PAAS_MAX_REQUEST_BYTES" in response.read().decode()


def test_gunicorn_refuses_an_api_body_over_the_cap_with_a_json_error(dashboard):
    declared = django_settings.PAAS_MAX_REQUEST_BYTES + MIB
    response = raw_post(
        "/api/v1/apps", {"Content-Length": str(declared), "Content-Type": "application/json"}
    )

    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "request_too_large"


def test_gunicorn_refuses_a_chunked_body_that_bypassed_the_router(dashboard):
    response = raw_post(
        "/api/v1/apps",
        {"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        b"2\r\n{}\r\n0\r\n\r\n",
    )

    assert response.status == 411
    assert json.loads(response.read())["error"]["code"] == "length_required"


# --- the middleware alone ---------------------------------------------------------------------


def test_the_middleware_answers_413_in_text_for_the_dashboard(client, settings):
    settings.PAAS_MAX_REQUEST_BYTES = CAP

    response = client.post(
        "/accounts/login/", data=b"x" * (CAP + 1), content_type="application/octet-stream"
    )

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "PAAS_MAX_REQUEST_BYTES" in text and "archive may be up to" in text


@pytest.mark.django_db
def test_the_middleware_answers_413_in_json_for_the_api_and_lets_a_smaller_body_through(
    client, settings
):
    settings.PAAS_MAX_REQUEST_BYTES = CAP
    body = json.dumps({"name": "x" * CAP})

    refused = client.post("/api/v1/apps", data=body, content_type="application/json")
    passed = client.post("/api/v1/apps", data="{}", content_type="application/json")

    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "request_too_large"
    assert passed.status_code == 401  # reached the API, which wants a token


def test_the_default_cap_leaves_room_for_an_archive_upload_at_its_limit():
    # The largest archive plus multipart framing and the form's other fields.
    assert django_settings.PAAS_MAX_REQUEST_BYTES >= django_settings.PAAS_ARCHIVE_MAX_BYTES + MIB
    assert django_settings.FILE_UPLOAD_MAX_MEMORY_SIZE < django_settings.PAAS_ARCHIVE_MAX_BYTES
