"""A syslog sender: RFC 5424 messages, octet-counted (RFC 6587), over TCP or TLS.

One connection per batch. Success means more than "written": after the last frame the
sender half-closes the connection and waits for the receiver to close its side, which a
receiver does only once it has read everything before the close — so a receiver that died
mid-batch is a failure (the batch goes again), not a silent loss.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

import certifi

FACILITY_USER = 1
SEVERITY = {"stdout": 6, "stderr": 3}  # informational, error
NIL = "-"


@dataclass(frozen=True)
class SyslogLine:
    ns: int
    hostname: str
    app_name: str
    procid: str
    msgid: str
    stream: str
    text: str


def frame(line: SyslogLine) -> bytes:
    """`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`, prefixed by its length."""
    pri = FACILITY_USER * 8 + SEVERITY.get(line.stream, 6)
    header = " ".join(
        [
            f"<{pri}>1",
            timestamp(line.ns),
            _field(line.hostname, 255),
            _field(line.app_name, 48),
            _field(line.procid, 128),
            _field(line.msgid, 32),
            NIL,  # no structured data
        ]
    )
    message = f"{header} {line.text}".encode()
    return str(len(message)).encode() + b" " + message


def timestamp(ns: int, digits: int = 6) -> str:
    """RFC 3339 in UTC; RFC 5424 allows six digits of a second (microseconds)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{f'{rest:09d}'[:digits]}Z"


def _field(value: str, limit: int) -> str:
    # Header fields are printable US-ASCII without spaces; anything else becomes "_".
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return cleaned or NIL


class SyslogClient:
    """Sends one batch of frames to the first of the checked addresses that answers."""

    def __init__(self, timeout: float, tls_context: ssl.SSLContext | None = None):
        self.timeout = timeout
        self.tls_context = tls_context or ssl.create_default_context(cafile=certifi.where())

    def send(self, host: str, port: int, addresses: list[str], tls: bool, payload: bytes):
        """Raises OSError (ssl.SSLError, TimeoutError, ConnectionError) when not accepted."""
        failure: OSError | None = None
        for address in addresses:
            try:
                raw = socket.create_connection((address, port), timeout=self.timeout)
            except OSError as exc:
                failure = exc  # this address is down: the next one may answer
                continue
            with raw:
                self._deliver(raw, host, tls, payload)
            return
        raise failure or OSError("no address to connect to")

    def _deliver(self, raw: socket.socket, host: str, tls: bool, payload: bytes) -> None:
        if not tls:
            raw.sendall(payload)
            raw.shutdown(socket.SHUT_WR)
            _wait_for_close(raw)
            return
        # The certificate is checked against the drain's host name, not the pinned address.
        with self.tls_context.wrap_socket(raw, server_hostname=host) as secure:
            secure.sendall(payload)
            try:
                plain = secure.unwrap()  # close_notify: nothing after it, as SHUT_WR says
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return  # the receiver closed after reading everything: accepted
            plain.shutdown(socket.SHUT_WR)
            _wait_for_close(plain)


def _wait_for_close(sock: socket.socket) -> None:
    """The receiver closes once it has read every byte before our half-close."""
    while sock.recv(4096):
        pass  # a syslog receiver sends nothing back; anything it does is ignored
