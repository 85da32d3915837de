"""Notifications: signed webhooks to the app's targets, and e-mail to its owner.

`notify()` records one delivery row per interested target when an event happens and
enqueues its first attempt once the transaction commits; `attempt_delivery()` (run by a
Celery task) makes one attempt and says when to try again.

Server-side request forgery is the risk here: a target URL is typed by a user, and the
request leaves from inside the platform's network. So a target's host must resolve to
public addresses only — every address it resolves to, checked when the target is added and
again at each attempt — and the request goes to the very address that was checked (the
connection is pinned to it), so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot redirect it. Redirects are never followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from apps.models import App
from apps.models.notifications import (
    DeliveryStatus,
    NotificationDelivery,
    NotificationEvent,
    NotificationTarget,
)
from deployments.services import Conflict, ServiceError

logger = logging.getLogger(__name__)

MAX_TARGETS = 10
EMAIL_EVENTS = frozenset({NotificationEvent.DEPLOYMENT_FAILED, NotificationEvent.APP_CRASHED})
SIGNATURE_HEADER = "X-Slipway-Signature"
# A pending delivery whose next attempt is this late had its message lost: the warden
# enqueues it again (the attempt number in the message makes a duplicate harmless).
LOST_AFTER = timedelta(seconds=60)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
USER_AGENT = "Slipway-Notifications/1"


class TargetRefused(ServiceError):
    """A target URL Slipway will not send to; the code says why."""


# --- targets ------------------------------------------------------------------------------


def add_target(app: App, url: str, events=None) -> tuple[NotificationTarget, str]:
    """Validate and store a target; returns it and its signing secret (shown once)."""
    url = (url or "").strip()
    allow_private = settings.PAAS_NOTIFY_ALLOW_PRIVATE
    check_url(url, allow_private)
    chosen = clean_events(events)
    if app.notification_targets.count() >= MAX_TARGETS:
        raise Conflict(
            f"An app may have at most {MAX_TARGETS} notification targets.", "too_many_targets"
        )
    raw_secret = secrets.token_urlsafe(32)
    target = NotificationTarget.objects.create(
        app=app, url=url, events=chosen, secret=raw_secret, allow_private=allow_private
    )
    return target, raw_secret


def remove_target(app: App, target_id: int) -> bool:
    deleted, _ = app.notification_targets.filter(pk=target_id).delete()
    return bool(deleted)


def clean_events(events) -> list[str]:
    """The events a target wants, known ones only; none given means all of them."""
    if events is None or events == "":
        return []
    if isinstance(events, str) or not isinstance(events, (list, tuple)):
        raise ServiceError("events: expected a list of event names.", "invalid_events")
    unknown = sorted({str(e) for e in events} - set(NotificationEvent.values))
    if unknown:
        known = ", ".join(NotificationEvent.values)
        message = f"Unknown events: {', '.join(unknown)} (known: {known})."
        raise ServiceError(message, "invalid_events")
    return [e for e in NotificationEvent.values if e in events]


# --- where a request may go ---------------------------------------------------------------


def check_url(url: str, allow_private: bool) -> list[str]:
    """Refuse anything but http(s) to public addresses; returns the addresses checked."""
    parts = _parse(url)
    addresses = resolve(parts.hostname, _port(parts))
    if not allow_private:
        for address in addresses:
            _refuse_internal(parts.hostname, address)
    return [str(a) for a in addresses]


def _parse(url: str):
    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetRefused("Enter a valid http:// or https:// URL.", "invalid_url")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise TargetRefused(
            "Only http:// and https:// URLs can receive notifications.", "url_scheme_refused"
        )
    if parts.username is not None or parts.password is not None:
        raise TargetRefused(
            "URLs with a user name or password are refused; authenticate the receiver with the "
            "signature header instead.",
            "url_credentials_refused",
        )
    try:
        _port(parts)
    except ValueError:
        parts = None
    # Names are not checked further: an internal one (allowed by the operator) may have no
    # dot, and a name that does not resolve is refused next.
    if parts is None or not parts.hostname:
        raise TargetRefused("Enter a valid http:// or https:// URL.", "invalid_url")
    return parts


def _port(parts) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def resolve(host: str, port: int) -> list:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused(f"The host {host} does not resolve.", "unresolvable_host") from None
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])  # drop an IPv6 zone id
        if address not in found:
            found.append(address)
    return found


def _refuse_internal(host: str, address) -> None:
    why = internal_reason(address)
    if why:
        raise TargetRefused(
            f"{host} resolves to {address}, a {why} address; notifications go to public "
            "addresses only.",
            "private_address_refused",
        )


def internal_reason(address) -> str | None:
    """Why an address is not a public one (None when it is)."""
    for embedded in _embedded_ipv4(address):
        why = internal_reason(embedded)
        if why:
            return why
    checks = [
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unique-local", address.version == 6 and address in UNIQUE_LOCAL),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    ]
    return next((name for name, hit in checks if hit), None)


def _embedded_ipv4(address) -> list:
    """IPv4 addresses an IPv6 one carries (mapped, 6to4, Teredo, NAT64): each is checked too."""
    if address.version != 6:
        return []
    found = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
    if address in NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


# --- events -------------------------------------------------------------------------------


def notify(app: App, event: str, deployment=None, environment=None, *, error=None) -> list:
    """Record this occurrence of an event for every interested target and the owner.

    Never raises: a notification that cannot be recorded must not fail a deployment or
    stop the warden (it is logged instead)."""
    try:
        with transaction.atomic():
            return _record_occurrence(app, event, deployment, environment, error)
    except Exception:  # noqa: BLE001 - see above
        logger.exception("could not record the %s notification for app %s", event, app.pk)
        return []


def _record_occurrence(app, event, deployment, environment, error) -> list:
    body = json.dumps(payload(app, event, deployment, environment, error), sort_keys=True)
    targets = [t for t in app.notification_targets.all() if t.wants(event)]
    now = timezone.now()
    deliveries = [
        NotificationDelivery.objects.create(target=t, event=event, body=body, next_attempt_at=now)
        for t in targets
    ]
    for delivery in deliveries:
        transaction.on_commit(partial(_enqueue_delivery, delivery.pk, 1))
    if event in EMAIL_EVENTS:
        transaction.on_commit(partial(_enqueue_email, app.pk, body))
    return deliveries


def payload(app: App, event: str, deployment=None, environment=None, error=None) -> dict:
    """The JSON body: for deployment.* events the deployment's status, else the app's."""
    env = environment or (deployment.environment if deployment else None)
    about_deployment = event.startswith("deployment.") and deployment is not None
    if about_deployment and error is None and deployment.error_code:
        error = (deployment.error_code, deployment.error_message)
    return {
        "event": event,
        "app": app.name,
        "environment": env.name if env else None,
        "deployment": deployment.number if deployment else None,
        "attempt": deployment.attempt + 1 if about_deployment else None,
        "status": deployment.status if about_deployment else _app_status(app),
        "error": {"code": error[0], "message": error[1]} if error else None,
        "url": env.url if env else None,
        "timestamp": timezone.now().isoformat(),
    }


def _app_status(app: App) -> str | None:
    return App.objects.filter(pk=app.pk).values_list("status", flat=True).first()


def _enqueue_delivery(delivery_id: int, attempt: int, countdown: float = 0) -> None:
    from deployments import tasks

    tasks.deliver_notification.apply_async((delivery_id, attempt), countdown=countdown)


def _enqueue_email(app_id: int, body: str) -> None:
    from deployments import tasks

    tasks.email_notification.delay(app_id, body)


# --- one attempt --------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def attempt_delivery(delivery_id: int, attempt: int) -> float | None:
    """Make attempt number `attempt`; the seconds until the next one, or None when the
    delivery is finished — or when this attempt was already made (a duplicate message)."""
    if not _claim(delivery_id, attempt):
        return None
    delivery = NotificationDelivery.objects.select_related("target").get(pk=delivery_id)
    code, error_code, message = send(delivery)
    return _record_attempt(delivery, code, error_code, message)


def _claim(delivery_id: int, attempt: int) -> bool:
    now = timezone.now()
    # While the attempt runs, the warden must not think its message was lost.
    busy_until = now + timedelta(seconds=2 * settings.PAAS_NOTIFY_TIMEOUT)
    return bool(
        NotificationDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, attempts=attempt - 1
        ).update(attempts=attempt, next_attempt_at=busy_until, updated_at=now)
    )


def _record_attempt(delivery, code, error_code, message) -> float | None:
    now = timezone.now()
    fields = {"last_response_code": code, "error_code": error_code, "last_error": message[:500]}
    if not error_code:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now, next_attempt_at=None)
        delay = None
    elif delivery.attempts >= settings.PAAS_NOTIFY_ATTEMPTS:
        fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
        delay = None
    else:
        delay = backoff(delivery.attempts)
        fields["next_attempt_at"] = now + timedelta(seconds=delay)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(updated_at=now, **fields)
    return delay


def backoff(attempts_made: int) -> float:
    return settings.PAAS_NOTIFY_BACKOFF_BASE * 2 ** (attempts_made - 1)


def send(delivery) -> tuple[int | None, str, str]:
    """POST the delivery once: (HTTP status or None, error code or "", message).

    Messages name the host at most: a target URL may carry a token in its path."""
    target = delivery.target
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Slipway-Event": delivery.event,
        "X-Slipway-Delivery": str(delivery.delivery_id),
        SIGNATURE_HEADER: sign(target.secret, body),
    }
    try:
        allow = target.allow_private or settings.PAAS_NOTIFY_ALLOW_PRIVATE
        addresses = check_url(target.url, allow)
        status = post(target.url, addresses, headers, body, settings.PAAS_NOTIFY_TIMEOUT)
    except TargetRefused as exc:
        return None, exc.code, exc.message
    except Exception as exc:  # noqa: BLE001 - any failure is this attempt's outcome
        return None, *_describe(exc, urlsplit(target.url).hostname)
    if 200 <= status < 300:
        return status, "", ""
    if 300 <= status < 400:
        message = f"The receiver answered HTTP {status}; redirects are not followed."
        return status, "http_error", message
    return status, "http_error", f"The receiver answered HTTP {status}."


def _describe(exc: Exception, host: str) -> tuple[str, str]:
    timeout = settings.PAAS_NOTIFY_TIMEOUT
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timeout", f"{host} did not answer within {timeout:g}s."
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "tls_error", f"The TLS handshake with {host} failed or its certificate is not valid."
    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
        return "connection_failed", f"Could not connect to {host} ({type(exc).__name__})."
    logger.exception("unexpected notification delivery error")
    return "delivery_error", f"Unexpected error: {type(exc).__name__}."


def post(url: str, addresses: list[str], headers: dict, body: bytes, timeout: float) -> int:
    """POST to the URL through one of the checked addresses, never through a new lookup."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {**headers, "Host": parts.netloc.rpartition("@")[2]}
    failure: Exception | None = None
    for address in addresses:
        pool = _pool(parts, address, timeout)
        try:
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:
            failure = exc  # this address is down: the next one may answer
            continue
        finally:
            pool.close()
        response.close()  # the status is all that matters; the body is not read
        return response.status
    raise failure or OSError("no address to connect to")


def _pool(parts, address: str, timeout: float):
    kwargs = {"port": _port(parts), "timeout": urllib3.Timeout(connect=timeout, read=timeout)}
    if parts.scheme.lower() == "https":
        # TLS still checks the certificate against the host name, not the pinned address.
        return urllib3.HTTPSConnectionPool(
            address,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            **kwargs,
        )
    return urllib3.HTTPConnectionPool(address, **kwargs)


# --- lost messages and e-mail ---------------------------------------------------------------


def requeue_lost_deliveries() -> int:
    """Pending deliveries whose next attempt is long overdue lost their message: resend."""
    now = timezone.now()
    overdue = NotificationDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lt=now - LOST_AFTER
    ).values_list("pk", "attempts", "next_attempt_at")
    count = 0
    for pk, attempts, due in overdue:
        taken = NotificationDelivery.objects.filter(pk=pk, next_attempt_at=due).update(
            next_attempt_at=now
        )
        if taken:
            _enqueue_delivery(pk, attempts + 1)
            count += 1
    return count


def email_owner(app_id: int, body: str) -> bool:
    app = App.objects.select_related("owner").filter(pk=app_id).first()
    if app is None or not app.owner.email:
        return False
    subject, text = email_text(json.loads(body))
    send_mail(subject, text, None, [app.owner.email])
    return True


def email_text(data: dict) -> tuple[str, str]:
    where = f" ({data['environment']})" if data.get("environment") else ""
    if data["event"] == NotificationEvent.APP_CRASHED:
        subject = f"[Slipway] {data['app']} crashed{where}"
        lead = "The app's container stopped; Slipway is restarting it."
    else:
        subject = f"[Slipway] {data['app']}: deployment #{data['deployment']} failed{where}"
        lead = f"Deployment #{data['deployment']} of {data['app']} failed."
    lines = [lead]
    if data.get("error"):
        lines.append(f"\n{data['error']['code']}: {data['error']['message']}")
    if data.get("url"):
        lines.append(f"\nApp URL: {data['url']}")
    lines.append(f"\nAt {data['timestamp']}")
    return subject, "\n".join(lines)
