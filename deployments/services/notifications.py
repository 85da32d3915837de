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

import ipaddress
import json
import logging
import secrets
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.models import App
from apps.models.notifications import (
    NotificationDelivery,
    NotificationEvent,
    NotificationTarget,
)
from deployments import jobs
from deployments.services import Conflict, ServiceError
from deployments.services.audit import audited

logger = logging.getLogger(__name__)

MAX_TARGETS = 10
# A scheduled job's run that failed (deployments/workers/runs.py) goes by e-mail too, as a
# failed deployment does.
JOB_FAILED = NotificationEvent.JOB_FAILED
# Alerts are e-mailed too: each is sent once per episode (deployments/workers/alerts.py).
EMAIL_EVENTS = frozenset(
    {
        NotificationEvent.DEPLOYMENT_FAILED,
        NotificationEvent.APP_CRASHED,
        JOB_FAILED,
        NotificationEvent.ALERT_CRASH_LOOP,
        NotificationEvent.ALERT_MEMORY,
        NotificationEvent.ALERT_ERROR_RATE,
    }
)
# A pending delivery whose next attempt is this late had its message lost: the warden
# enqueues it again (the attempt number in the message makes a duplicate harmless).
NAT64 = ipaddress.ip_network("64:ff9b::/96")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class TargetRefused(ServiceError):
    """A target URL Slipway will not send to; the code says why."""


# --- targets ------------------------------------------------------------------------------


@audited(
    "notifications.add_target", details=lambda r, app, url, events=None: {"events": r[0].events}
)
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


@audited("notifications.remove_target", target=lambda r, app, target_id: target_id)
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
    addresses = resolve(parts.hostname, port_of(parts))
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
        port_of(parts)
    except ValueError:
        parts = None
    # Names are not checked further: an internal one (allowed by the operator) may have no
    # dot, and a name that does not resolve is refused next.
    if parts is None or not parts.hostname:
        raise TargetRefused("Enter a valid http:// or https:// URL.", "invalid_url")
    return parts


def port_of(parts) -> int:
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


def notify(
    app: App, event: str, deployment=None, environment=None, *, error=None, promotion=None
) -> list:
    """Record this occurrence of an event for every interested target and the owner.
    promotion: for promotion.* events, who asked and what goes (added to the body).

    Never raises: a notification that cannot be recorded must not fail a deployment or
    stop the warden (it is logged instead)."""
    try:
        with transaction.atomic():
            body = payload(app, event, deployment, environment, error)
            if promotion is not None:
                body["promotion"] = promotion
            return _record_occurrence(app, event, body)
    except Exception:  # noqa: BLE001 - see above
        logger.exception("could not record the %s notification for app %s", event, app.pk)
        return []


def _record_occurrence(app, event, fields: dict) -> list:
    body = json.dumps(fields, sort_keys=True)
    targets = [t for t in app.notification_targets.all() if t.wants(event)]
    now = timezone.now()
    deliveries = [
        NotificationDelivery.objects.create(target=t, event=event, body=body, next_attempt_at=now)
        for t in targets
    ]
    for delivery in deliveries:
        jobs.deliver_notification(delivery.pk, 1)
    if event in EMAIL_EVENTS:
        jobs.email_notification(app.pk, body)
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


# --- one attempt --------------------------------------------------------------------------


# --- lost messages and e-mail ---------------------------------------------------------------
