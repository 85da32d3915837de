"""Log drains: every stored line reaches a real receiver on loopback exactly once, in order,
across a receiver restart — over signed HTTP JSON lines and over RFC 5424 syslog on TCP —
and drains to internal addresses or of odd shapes are refused."""

import hashlib
import hmac
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from django.db import connection, connections, transaction
from django.test import Client

from apps.models import App
from deployments import wiring
from deployments.adapters.self_signed import self_signed
from deployments.adapters.syslog import SyslogClient, SyslogLine, frame
from deployments.models import LogDrain, RuntimeLogLine
from deployments.services import log_drains
from deployments.services.log_drains import DrainRefused
from deployments.workers import log_drains as forwarder
from paas.celery import app as celery_app
from tests.support import wait_for

PUBLIC_HTTPS = "https://93.184.215.14/drain"  # literals: no DNS needed to check them
PUBLIC_SYSLOG = "syslog+tls://93.184.215.14:6514"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HttpReceiver:
    """An HTTP drain receiver on a fixed loopback port, so it can stop and come back."""

    def __init__(self, port: int):
        self.port, self.requests, self.server = port, [], None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/drain?team=ops"

    def start(self) -> "HttpReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def lines(self) -> list[dict]:
        with self.lock:
            bodies = [body for _, body in self.requests]
        return [json.loads(row) for body in bodies for row in body.decode().splitlines()]


class SyslogReceiver:
    """A TCP (or TLS) syslog receiver reading octet-counted frames; closes once the sender
    has."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None):
        self.port, self.tls, self.messages, self.listener = port, tls, [], None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"syslog{'+tls' if self.tls else ''}://127.0.0.1:{self.port}"

    def start(self) -> "SyslogReceiver":
        self.listener = socket.create_server(("127.0.0.1", self.port))
        # A close does not wake a thread blocked in accept(): it polls and sees the close.
        self.listener.settimeout(0.05)
        threading.Thread(target=self._serve, args=(self.listener,), daemon=True).start()
        return self

    def _serve(self, listener):
        while listener is self.listener:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # stopped
            conn.settimeout(5)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()
        listener.close()

    def _read(self, conn):
        data = b""
        if self.tls:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except ssl.SSLError:
                conn.close()  # the sender did not trust the certificate
                return
        with conn:
            while chunk := conn.recv(65536):
                data += chunk
        with self.lock:
            self.messages.extend(_unframe(data))

    def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener:
            listener.close()

    def texts(self) -> list[str]:
        with self.lock:
            return [m.split(" - ", 1)[1] for m in self.messages]


def _self_signed(directory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A certificate for 127.0.0.1: the receiver's context, and a client's that trusts it."""
    address = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    cert, key = self_signed("127.0.0.1", address, timedelta(days=1))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_text(cert)
    key_path.write_text(key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    return server, ssl.create_default_context(cafile=str(cert_path))


def _unframe(data: bytes) -> list[str]:
    messages = []
    while data:
        length, _, rest = data.partition(b" ")
        messages.append(rest[: int(length)].decode())
        data = rest[int(length) :]
    return messages


def _store(app: App, first: int, count: int, stream="stdout") -> list[int]:
    environment = app.environment("production")
    rows = [
        RuntimeLogLine(
            app=app,
            environment=environment,
            deployment=3,
            process="web",
            replica=2,
            container="c-web-2",
            stream=stream,
            ns=1_780_000_000_123_456_789 + n,
            text=f"line {n}",
        )
        for n in range(first, first + count)
    ]
    return [row.pk for row in RuntimeLogLine.objects.bulk_create(rows)]


def _pump(until, rounds: int = 200):
    """Run the forwarder's beat pass until `until()` holds (each pass is what beat runs)."""
    syslog = wiring.syslog()
    for _ in range(rounds):
        forwarder.forward_all(syslog)
        if until():
            return
        time.sleep(0.02)
    raise AssertionError("the drain did not catch up")


@pytest.fixture
def fast_drains(settings):
    settings.PAAS_LOG_DRAIN_BATCH = 25
    settings.PAAS_LOG_DRAIN_BACKOFF_BASE = 0.05
    settings.PAAS_LOG_DRAIN_BACKOFF_MAX = 0.2
    settings.PAAS_LOG_DRAIN_TIMEOUT = 2.0


def loopback_drain(settings, app, url) -> LogDrain:
    """Loopback receivers need the operator's permission, stamped on the drain when it is
    added (as for notification targets); the forwarder's own setting stays off."""
    settings.PAAS_NOTIFY_ALLOW_PRIVATE = True
    drain = log_drains.add_drain(app, url)
    settings.PAAS_NOTIFY_ALLOW_PRIVATE = False
    assert drain.allow_private
    return drain


def _verifies(secret: str, headers: dict, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Slipway-Signature"], expected)


# --- exactly once, in order, across a restart ------------------------------------------------


@pytest.mark.django_db
def test_an_http_receiver_gets_every_line_once_in_order_across_a_restart(
    make_app, settings, fast_drains
):
    app = make_app("drained")
    _store(app, 0, 5)  # printed before the drain existed: not forwarded
    receiver = HttpReceiver(_free_port()).start()
    drain = loopback_drain(settings, app, receiver.url)
    try:
        sent = _store(app, 100, 60)
        _pump(lambda: len(receiver.lines()) >= 60)

        receiver.stop()
        sent += _store(app, 200, 70)
        _pump(lambda: LogDrain.objects.get(pk=drain.pk).failures >= 2)
        failing = LogDrain.objects.get(pk=drain.pk)
        assert failing.error_code == "connection_failed"
        assert "127.0.0.1" in failing.last_error and failing.secret not in failing.last_error
        assert "team=ops" not in failing.last_error and failing.backoff_until

        receiver.start()
        sent += _store(app, 300, 40)
        _pump(lambda: len(receiver.lines()) >= len(sent))
        time.sleep(0.1)
        forwarder.forward_all(wiring.syslog())  # nothing more to send
    finally:
        receiver.stop()

    got = receiver.lines()
    assert [line["id"] for line in got] == sent  # every line once, in order, no gaps
    assert got[0] == {
        "id": sent[0],
        "ts": "2026-05-28T20:26:40.123456889Z",
        "app": "drained",
        "environment": "production",
        "process": "web",
        "replica": 2,
        "deployment": 3,
        "stream": "stdout",
        "text": "line 100",
    }
    for headers, body in receiver.requests:
        assert _verifies(drain.secret, headers, body)
        ids = [json.loads(row)["id"] for row in body.decode().splitlines()]
        assert headers["X-Slipway-Batch"] == f"{ids[0]}..{ids[-1]}"
        assert headers["Content-Type"] == "application/x-ndjson"
    healed = LogDrain.objects.get(pk=drain.pk)
    assert healed.cursor == sent[-1] and healed.failures == 0 and not healed.last_error
    assert healed.last_delivered_at and healed.backoff_until is None


@pytest.mark.django_db
def test_a_syslog_receiver_gets_every_line_once_in_order_across_a_restart(
    make_app, settings, fast_drains
):
    app = make_app("sysdrained")
    receiver = SyslogReceiver(_free_port()).start()
    drain = loopback_drain(settings, app, receiver.url)
    try:
        expected = [f"line {n}" for n in range(50)]
        _store(app, 0, 50)
        _pump(lambda: len(receiver.texts()) >= 50)

        receiver.stop()
        _store(app, 50, 30, stream="stderr")
        expected += [f"line {n}" for n in range(50, 80)]
        _pump(lambda: LogDrain.objects.get(pk=drain.pk).failures >= 2)
        assert LogDrain.objects.get(pk=drain.pk).error_code == "connection_failed"

        receiver.start()
        _pump(lambda: len(receiver.texts()) >= 80)
        time.sleep(0.1)
        forwarder.forward_all(wiring.syslog())
    finally:
        receiver.stop()

    assert receiver.texts() == expected
    first, last = receiver.messages[0], receiver.messages[-1]
    header = r"1 2026-05-28T20:26:40\.123456Z localhost sysdrained web\.2 production - "
    assert re.fullmatch(r"<14>" + header + "line 0", first)
    assert re.fullmatch(r"<11>" + header + "line 79", last)


@pytest.mark.django_db
def test_a_tls_syslog_receiver_gets_the_lines_and_an_untrusted_one_none(
    make_app, settings, fast_drains, tmp_path
):
    server_tls, trusting = _self_signed(tmp_path)
    app = make_app("tlsdrained")
    receiver = SyslogReceiver(_free_port(), tls=server_tls).start()
    drain = loopback_drain(settings, app, receiver.url)
    _store(app, 0, 40)
    try:
        # The system's CAs do not know this certificate: refused, nothing sent.
        _pump(lambda: LogDrain.objects.get(pk=drain.pk).failures >= 1)
        assert LogDrain.objects.get(pk=drain.pk).error_code == "tls_error"
        assert receiver.texts() == []

        LogDrain.objects.filter(pk=drain.pk).update(backoff_until=None)
        trusted = SyslogClient(timeout=2.0, tls_context=trusting)
        for _ in range(3):
            forwarder.forward_all(trusted)
    finally:
        receiver.stop()
    assert receiver.texts() == [f"line {n}" for n in range(40)]
    assert LogDrain.objects.get(pk=drain.pk).failures == 0


def test_a_syslog_frame_counts_octets_of_utf8_text():
    line = SyslogLine(
        ns=0, hostname="h", app_name="a b", procid="web.1", msgid="", stream="stderr", text="é"
    )
    assert frame(line) == b"52 <11>1 1970-01-01T00:00:00.000000Z h a_b web.1 - - \xc3\xa9"


@pytest.mark.django_db(transaction=True)
def test_a_drain_another_worker_holds_is_skipped_not_sent_twice(make_app, settings, fast_drains):
    """The drain row is locked for each batch: a second forwarder skips it, never waits
    for it and never sends the batch the first one is sending."""
    app = make_app("locked")
    receiver = HttpReceiver(_free_port()).start()
    drain = loopback_drain(settings, app, receiver.url)
    LogDrain.objects.filter(pk=drain.pk).update(horizon=10**12)
    _store(app, 0, 10)
    held, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            LogDrain.objects.select_for_update().get(pk=drain.pk)
            held.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=other_worker)
    holder.start()
    try:
        assert held.wait(10)
        assert forwarder.forward(drain.pk, wiring.syslog()) == 0
        release.set()
        holder.join()
        assert forwarder.forward(drain.pk, wiring.syslog()) == 10
        assert forwarder.forward(drain.pk, wiring.syslog()) == 0
    finally:
        release.set()
        receiver.stop()
    assert len(receiver.lines()) == 10


def test_backoff_doubles_up_to_the_cap(settings):
    settings.PAAS_LOG_DRAIN_BACKOFF_BASE, settings.PAAS_LOG_DRAIN_BACKOFF_MAX = 1.0, 300.0
    assert [forwarder.backoff(n) for n in (1, 2, 3, 4, 10, 1000)] == [1, 2, 4, 8, 300, 300]


# --- through the real Celery worker ----------------------------------------------------------


def test_the_beat_task_forwards_through_the_real_worker(platform, make_app, settings):
    app = make_app("beatdrain")
    receiver = HttpReceiver(_free_port()).start()
    try:
        loopback_drain(settings, app, receiver.url)
        sent = _store(app, 0, 30)

        def arrived():
            celery_app.send_task("deployments.tasks.forward_log_drains")
            return len(receiver.lines()) >= 30

        wait_for(arrived, timeout=30, every=1, message="the lines to reach the receiver")
        time.sleep(2)
    finally:
        receiver.stop()
    assert [line["id"] for line in receiver.lines()] == sent


# --- where a drain may point ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://127.0.0.1/in", "private_address_refused"),
        ("https://169.254.169.254/latest/meta-data", "private_address_refused"),
        ("syslog://127.0.0.1:514", "private_address_refused"),
        ("syslog+tls://10.0.0.5:6514", "private_address_refused"),
        ("https://[::ffff:127.0.0.1]/in", "private_address_refused"),
        ("http://93.184.215.14/in", "url_scheme_refused"),
        ("ftp://93.184.215.14/in", "url_scheme_refused"),
        ("syslog://93.184.215.14", "invalid_url"),
        ("syslog://93.184.215.14:514/path", "invalid_url"),
        ("syslog://93.184.215.14:99999", "invalid_url"),
        ("https://user:pw@93.184.215.14/in", "url_credentials_refused"),
        ("not a url", "invalid_url"),
        ("", "invalid_url"),
    ],
)
def test_internal_and_odd_drains_are_refused(make_app, url, code):
    with pytest.raises(DrainRefused) as refused:
        log_drains.add_drain(make_app("guarded"), url)
    assert refused.value.code == code and refused.value.fields == {"url": [refused.value.message]}
    assert not LogDrain.objects.exists()


@pytest.mark.django_db
def test_the_reason_names_the_kind_of_address(make_app):
    with pytest.raises(DrainRefused) as refused:
        log_drains.add_drain(make_app("why"), "syslog://169.254.169.254:514")
    assert "link-local" in refused.value.message


@pytest.mark.django_db
def test_the_forwarder_checks_the_address_again(make_app, settings, fast_drains):
    """A drain added while private addresses were allowed keeps that permission; one added
    without it is refused at every batch, whatever its host resolves to by then."""
    app = make_app("recheck")
    drain = log_drains.add_drain(app, PUBLIC_HTTPS)
    LogDrain.objects.filter(pk=drain.pk).update(url="https://127.0.0.1:9/in", horizon=10**12)
    _store(app, 0, 3)
    forwarder.forward_all(wiring.syslog())
    refused = LogDrain.objects.get(pk=drain.pk)
    assert refused.error_code == "private_address_refused" and refused.cursor == drain.cursor


@pytest.mark.django_db
def test_a_drain_is_stored_with_its_secret_encrypted_and_a_cap_per_app(make_app, settings):
    app = make_app("capped")
    drain = log_drains.add_drain(app, PUBLIC_HTTPS)
    assert drain.kind == "https" and len(drain.secret) > 30
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM deployments_logdrain WHERE id = %s", [drain.pk])
        assert drain.secret not in cursor.fetchone()[0]
    assert log_drains.add_drain(app, PUBLIC_SYSLOG).secret == ""
    settings.PAAS_LOG_DRAINS_PER_APP = 2
    with pytest.raises(log_drains.Conflict) as refused:
        log_drains.add_drain(app, PUBLIC_SYSLOG)
    assert refused.value.code == "too_many_drains"


# --- API and dashboard ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_adds_lists_and_removes_drains_for_the_owner_only(make_app, api, outsider_api):
    make_app("apidrains")
    base = "/apps/apidrains/drains"

    created = api.post(base, {"url": PUBLIC_HTTPS})
    assert created.status_code == 201
    body = created.json()
    assert body["kind"] == "https" and body["secret"] and body["error"] is None
    listed = api.get(base).json()["drains"]
    assert [d["id"] for d in listed] == [body["id"]] and "secret" not in listed[0]

    assert outsider_api.get(base).status_code == 404
    assert outsider_api.post(base, {"url": PUBLIC_HTTPS}).status_code == 404
    assert outsider_api.delete(f"{base}/{body['id']}").status_code == 404
    assert api.delete(f"{base}/{body['id']}").status_code == 204
    assert api.delete(f"{base}/{body['id']}").status_code == 404
    assert api.get(base).json() == {"drains": []}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/", "syslog://127.0.0.1:514", "gopher://x", "syslog://h"]
)
def test_the_api_refuses_bad_drains_with_a_field_error(make_app, api, url):
    make_app("apiguard")
    refused = api.post("/apps/apiguard/drains", {"url": url})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["fields"]["url"] == [error["message"]]
    assert api.post("/apps/apiguard/drains", {}).json()["error"]["fields"]["url"]
    assert not LogDrain.objects.exists()


@pytest.mark.django_db
def test_the_settings_card_adds_shows_and_removes_drains_for_the_owner_only(
    make_app, owner, outsider, staff
):
    app = make_app("carded")
    client = Client(headers={"HX-Request": "true"})
    client.force_login(owner)
    url = "/apps/carded/drains/"

    assert 'hx-get="/apps/carded/drains/"' in client.get("/apps/carded/settings/").content.decode()
    refused = client.post(url, {"url": "syslog://127.0.0.1:514"})
    assert refused.status_code == 400 and "loopback" in refused.content.decode()
    added = client.post(url, {"url": PUBLIC_HTTPS})
    drain = LogDrain.objects.get()
    assert added.status_code == 200 and drain.secret in added.content.decode()
    drain.failed("connection_failed", "Could not deliver to 93.184.215.14.", drain.created_at, 1)
    shown = client.get(url).content.decode()
    assert drain.secret not in shown and "Could not deliver to 93.184.215.14." in shown

    for user in (outsider, staff):
        other = Client(headers={"HX-Request": "true"})
        other.force_login(user)
        assert other.get(url).status_code == 404
        assert other.post(f"{url}{drain.pk}/delete/").status_code == 404
    assert client.post(f"{url}{drain.pk}/delete/").status_code == 200
    assert not LogDrain.objects.filter(app=app).exists()
