"""What the notification tasks do: one signed POST attempt per delivery row, the delivery
log, the resend of deliveries whose message was lost, and e-mail to the app's owner.

The SSRF rules (public addresses only, the connection pinned to the checked address, no
redirects) are in deployments/services/notifications.py, which records the deliveries.
"""

import hashlib
import hmac
import json
import logging
from datetime import timedelta
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from apps.models import App
from apps.models.notifications import DeliveryStatus, NotificationDelivery, NotificationEvent
from deployments import jobs
from deployments.services.notifications import TargetRefused, check_url, port_of

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Slipway-Signature"
USER_AGENT = "Slipway-Notifications/1"
# A pending delivery whose next attempt is this late had its message lost: the warden
# enqueues it again (the attempt number in the message makes a duplicate harmless).
LOST_AFTER = timedelta(seconds=60)


SIGNATURE_HEADER = "X-Slipway-Signature"


LOST_AFTER = timedelta(seconds=60)


USER_AGENT = "Slipway-Notifications/1"


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
    kwargs = {"port": port_of(parts), "timeout": urllib3.Timeout(connect=timeout, read=timeout)}
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
            jobs.deliver_notification(pk, attempts + 1)
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
    if data["event"].startswith("alert.") and data.get("error"):
        subject = f"[Slipway] {data['app']}{where}: {data['error']['message']}"
        lead = f"Slipway alert for {data['app']}{where}."
    elif data["event"] == NotificationEvent.APP_CRASHED:
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
