"""What the log drain task does: every few seconds, each drain that is due gets the app's
next lines after its cursor — as signed JSON lines over HTTPS or RFC 5424 syslog — and its
cursor moves only once the receiver accepted the whole batch.

Exactly once, in order, as far as the receiver can tell: the drain row is locked for the
batch (SELECT … FOR UPDATE SKIP LOCKED), so two workers never send the same lines; a
refused batch is sent again, the same lines, after a backoff that doubles up to a cap; and
each HTTPS batch carries its first..last line ids, so a receiver that accepted a batch
whose answer was lost can drop the repeat. The destination is checked again before every
batch with the notifications' SSRF rules (deployments/services/log_drains.py).
"""

from __future__ import annotations

import json
import logging
import ssl

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployments.adapters.syslog import SyslogClient, SyslogLine, frame, timestamp
from deployments.models import RuntimeLogLine
from deployments.models.log_drains import DrainKind, LogDrain
from deployments.services.log_drains import DrainRefused, endpoint
from deployments.workers.deliveries import SIGNATURE_HEADER, post, sign

logger = logging.getLogger(__name__)

USER_AGENT = "Slipway-LogDrain/1"
BATCH_HEADER = "X-Slipway-Batch"
LINE_FIELDS = ("id", "ns", "process", "replica", "deployment", "stream", "text")


class BatchRefused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def forward_all(syslog: SyslogClient) -> int:
    """One pass over the drains that are due; the number of lines delivered."""
    now = timezone.now()
    due = LogDrain.objects.filter(enabled=True).filter(
        Q(backoff_until__isnull=True) | Q(backoff_until__lte=now)
    )
    return sum(forward(pk, syslog) for pk in due.values_list("pk", flat=True))


def forward(drain_id: int, syslog: SyslogClient) -> int:
    """Batches for one drain until it is caught up, fails, or had its share of this tick."""
    app_id = LogDrain.objects.filter(pk=drain_id).values_list("app_id", flat=True).first()
    if app_id is None:
        return 0
    newest = _newest_line(app_id)  # the next tick's horizon: see LogDrain.horizon
    delivered = 0
    for _ in range(settings.PAAS_LOG_DRAIN_BATCHES_PER_TICK):
        sent = _one_batch(drain_id, syslog)
        delivered += sent
        if sent < settings.PAAS_LOG_DRAIN_BATCH:
            break
    LogDrain.objects.filter(pk=drain_id, horizon__lt=newest).update(horizon=newest)
    return delivered


def _newest_line(app_id: int) -> int:
    newest = RuntimeLogLine.objects.filter(app_id=app_id).order_by("-id").values("id").first()
    return newest["id"] if newest else 0


def _one_batch(drain_id: int, syslog: SyslogClient) -> int:
    now = timezone.now()
    with transaction.atomic():
        drain = _claim(drain_id, now)
        lines = _next_lines(drain) if drain else []
        if not lines:
            return 0
        try:
            _send(drain, lines, syslog)
        except BatchRefused as exc:
            drain.failed(exc.code, exc.message, now, backoff(drain.failures + 1))
            return 0
        drain.delivered(lines[-1]["id"], timezone.now())
        return len(lines)


def _claim(drain_id: int, now) -> LogDrain | None:
    """The drain, locked for this batch; None when another worker has it or it is not due."""
    drain = LogDrain.objects.select_for_update(skip_locked=True).filter(pk=drain_id).first()
    if drain is None or not drain.enabled:
        return None
    if drain.backoff_until and drain.backoff_until > now:
        return None
    return drain


def _next_lines(drain: LogDrain) -> list[dict]:
    window = RuntimeLogLine.objects.filter(
        app_id=drain.app_id, id__gt=drain.cursor, id__lte=drain.horizon
    )
    rows = window.order_by("id").values(*LINE_FIELDS, "environment__name", "app__name")
    return list(rows[: settings.PAAS_LOG_DRAIN_BATCH])


def backoff(failures: int) -> float:
    """Seconds before the batch goes again: doubling from the base, up to the cap."""
    base, cap = settings.PAAS_LOG_DRAIN_BACKOFF_BASE, settings.PAAS_LOG_DRAIN_BACKOFF_MAX
    return min(cap, base * 2 ** min(failures - 1, 32))


# --- sending ------------------------------------------------------------------------------


def _send(drain: LogDrain, lines: list[dict], syslog: SyslogClient) -> None:
    """Raises BatchRefused, whose message names the host at most (never the URL's path,
    which may hold a token, nor the secret)."""
    allow = drain.allow_private or settings.PAAS_NOTIFY_ALLOW_PRIVATE
    try:
        target = endpoint(drain.url, allow)
    except DrainRefused as exc:
        raise BatchRefused(exc.code, exc.message) from None
    try:
        if drain.kind == DrainKind.SYSLOG:
            payload = b"".join(frame(_syslog_line(line)) for line in lines)
            syslog.send(target.host, target.port, target.addresses, target.tls, payload)
        else:
            _post(drain, target.addresses, lines)
    except BatchRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure is this batch's outcome
        raise BatchRefused(*describe(exc, target.host)) from None


def _post(drain: LogDrain, addresses: list[str], lines: list[dict]) -> None:
    body = "".join(json.dumps(json_line(line), sort_keys=True) + "\n" for line in lines).encode()
    headers = {
        "Content-Type": "application/x-ndjson",
        "User-Agent": USER_AGENT,
        "X-Slipway-Drain": str(drain.pk),
        BATCH_HEADER: f"{lines[0]['id']}..{lines[-1]['id']}",
        SIGNATURE_HEADER: sign(drain.secret, body),
    }
    status = post(drain.url, addresses, headers, body, settings.PAAS_LOG_DRAIN_TIMEOUT)
    if not 200 <= status < 300:
        raise BatchRefused("http_error", f"The receiver answered HTTP {status}.")


def json_line(line: dict) -> dict:
    return {
        "id": line["id"],
        "ts": rfc3339(line["ns"]),
        "app": line["app__name"],
        "environment": line["environment__name"],
        "process": line["process"],
        "replica": line["replica"],
        "deployment": line["deployment"],
        "stream": line["stream"],
        "text": line["text"],
    }


def rfc3339(ns: int) -> str:
    return timestamp(ns, digits=9)  # the engine's nanoseconds, all of them


def _syslog_line(line: dict) -> SyslogLine:
    return SyslogLine(
        ns=line["ns"],
        hostname=settings.PAAS_DOMAIN,
        app_name=line["app__name"],
        procid=f"{line['process']}.{line['replica']}",
        msgid=line["environment__name"],
        stream=line["stream"],
        text=line["text"],
    )


def describe(exc: Exception, host: str) -> tuple[str, str]:
    timeout = settings.PAAS_LOG_DRAIN_TIMEOUT
    if isinstance(exc, (ConnectionError, urllib3.exceptions.NewConnectionError)):
        return "connection_failed", f"Could not connect to {host} ({type(exc).__name__})."
    if isinstance(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
        return "timeout", f"{host} did not answer within {timeout:g}s."
    if isinstance(exc, (urllib3.exceptions.SSLError, ssl.SSLError)):
        return "tls_error", f"The TLS handshake with {host} failed or its certificate is not valid."
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return "connection_failed", f"Could not deliver to {host} ({type(exc).__name__})."
    logger.exception("unexpected log drain error")
    return "drain_error", f"Unexpected error: {type(exc).__name__}."
