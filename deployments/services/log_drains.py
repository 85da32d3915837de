"""Log drains: add and remove an app's drains, and the one rule for where a drain may point.

A drain receives every line the app prints — secrets included — and its URL is typed by a
user while the connection leaves from inside the platform's network, so the notification
targets' SSRF rules apply unchanged (deployments/services/notifications.py): every address
the host resolves to must be public, checked when the drain is added and again before each
batch, and the connection goes to a checked address, never through a new lookup. Plain
http:// (and loopback) only when the operator allows private addresses
(PAAS_NOTIFY_ALLOW_PRIVATE), stamped on the drain as it is on a target.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from apps.models import App
from deployments.models import RuntimeLogLine
from deployments.models.log_drains import DrainKind, LogDrain
from deployments.services import Conflict, ServiceError
from deployments.services.audit import audited
from deployments.services.notifications import (
    TargetRefused,
    check_url,
    internal_reason,
    resolve,
)

SYSLOG_SCHEMES = {"syslog": False, "syslog+tls": True}  # scheme -> over TLS
URL_HELP = "Enter syslog+tls://host:port, syslog://host:port or https://host/path."


class DrainRefused(ServiceError):
    """A drain URL Slipway will not send to; the API names the field."""

    fields = None

    def __init__(self, message: str, code: str = "invalid_url"):
        super().__init__(message, code)
        self.fields = {"url": [message]}


@dataclass(frozen=True)
class Endpoint:
    """Where one batch goes: the addresses checked just now, and what TLS must verify."""

    kind: str
    host: str
    port: int
    addresses: list[str]
    tls: bool


# --- drains -------------------------------------------------------------------------------


@audited("log_drains.add", details=lambda drain, app, url: {"kind": drain.kind})
def add_drain(app: App, url: str) -> LogDrain:
    """Validate and store a drain; it forwards the lines printed from now on."""
    url = (url or "").strip()
    allow_private = settings.PAAS_NOTIFY_ALLOW_PRIVATE
    kind = endpoint(url, allow_private).kind
    cap = settings.PAAS_LOG_DRAINS_PER_APP
    if app.log_drains.count() >= cap:
        raise Conflict(f"An app may have at most {cap} log drains.", "too_many_drains")
    newest = _newest_line(app.pk)
    return LogDrain.objects.create(
        app=app,
        kind=kind,
        url=url,
        secret=secrets.token_urlsafe(32) if kind == DrainKind.HTTPS else "",
        allow_private=allow_private,
        cursor=newest,
        horizon=newest,
    )


@audited("log_drains.remove", target=lambda r, app, drain_id: drain_id)
def remove_drain(app: App, drain_id: int) -> bool:
    deleted, _ = app.log_drains.filter(pk=drain_id).delete()
    return bool(deleted)


def _newest_line(app_id: int) -> int:
    newest = RuntimeLogLine.objects.filter(app_id=app_id).order_by("-id").first()
    return newest.pk if newest else 0


# --- where a drain may point --------------------------------------------------------------


def endpoint(url: str, allow_private: bool) -> Endpoint:
    """Check a drain URL now (scheme, form, every resolved address); raises DrainRefused."""
    if not url or len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise DrainRefused(URL_HELP)
    scheme = urlsplit(url).scheme.lower()
    if scheme in SYSLOG_SCHEMES:
        found = _syslog_endpoint(url, SYSLOG_SCHEMES[scheme])
    elif scheme == "https" or (scheme == "http" and allow_private):
        found = _https_endpoint(url)
    else:
        raise DrainRefused(f"Unsupported scheme. {URL_HELP}", "url_scheme_refused")
    if not allow_private:
        for address in found.addresses:
            _refuse_internal(found.host, address)
    return found


def _https_endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    try:
        # Private addresses are judged below, in a drain's words; this checks the form.
        addresses = check_url(url, allow_private=True)
    except TargetRefused as exc:
        raise DrainRefused(exc.message, exc.code) from None
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    tls = parts.scheme.lower() == "https"
    return Endpoint(DrainKind.HTTPS, parts.hostname, port, addresses, tls)


def _syslog_endpoint(url: str, tls: bool) -> Endpoint:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    extra = parts.path not in ("", "/") or parts.query or parts.fragment
    if not parts.hostname or not port or extra:
        raise DrainRefused(f"A syslog drain needs a host and a port, nothing else. {URL_HELP}")
    if parts.username is not None or parts.password is not None:
        raise DrainRefused(
            "URLs with a user name or password are refused.", "url_credentials_refused"
        )
    try:
        addresses = [str(a) for a in resolve(parts.hostname, port)]
    except TargetRefused as exc:
        raise DrainRefused(exc.message, exc.code) from None
    return Endpoint(DrainKind.SYSLOG, parts.hostname, port, addresses, tls)


def _refuse_internal(host: str, address: str) -> None:
    why = internal_reason(ipaddress.ip_address(address))
    if why:
        raise DrainRefused(
            f"{host} resolves to {address}, a {why} address; log drains go to public "
            "addresses only.",
            "private_address_refused",
        )
