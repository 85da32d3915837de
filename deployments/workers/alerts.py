"""Alerts, checked after each metrics sample against the rows it just wrote.

Per app (to its notification targets with notify(), and the owner by e-mail): a container
the engine restarted PAAS_ALERT_CRASH_RESTARTS times within PAAS_ALERT_CRASH_MINUTES (a crash
loop), memory at PAAS_ALERT_MEMORY_FRACTION of its limit in every sample of
PAAS_ALERT_MEMORY_MINUTES, 5xx above PAAS_ALERT_ERROR_RATE over PAAS_ALERT_ERROR_MINUTES.
For the operators (staff, by e-mail): the data directory's disk above
PAAS_ALERT_DISK_FRACTION.

Each condition is an episode (AlertEpisode): claimed by the insert that makes its row, so it
notifies once however long it holds and however many workers check; when it clears the row
is deleted and the same event says it recovered.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, F, FloatField, Max, Min, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from apps.models import Environment
from apps.models.notifications import NotificationEvent
from deployments.models import AlertEpisode, ContainerMetric, EnvironmentMetric
from deployments.services.notifications import notify

logger = logging.getLogger(__name__)

CRASH_LOOP, MEMORY, ERROR_RATE, DISK = "crash_loop", "memory", "error_rate", "disk"
EVENTS = {
    CRASH_LOOP: NotificationEvent.ALERT_CRASH_LOOP,
    MEMORY: NotificationEvent.ALERT_MEMORY,
    ERROR_RATE: NotificationEvent.ALERT_ERROR_RATE,
}


@dataclass(frozen=True)
class Firing:
    subject: str
    environment_id: int | None
    message: str


def check(now: datetime | None = None, disk_usage: Callable = shutil.disk_usage) -> dict:
    """Open and close episodes; returns how many of each kind fired now."""
    now = now or timezone.now()
    found = {
        CRASH_LOOP: crash_loops(now),
        MEMORY: memory_pressure(now),
        ERROR_RATE: error_rates(now),
        DISK: disk_full(disk_usage),
    }
    return {kind: _settle(kind, firing) for kind, firing in found.items()}


def crash_loops(now: datetime) -> list[Firing]:
    since = now - timedelta(minutes=settings.PAAS_ALERT_CRASH_MINUTES)
    rows = (
        ContainerMetric.objects.filter(at__gte=since)
        .values("container", "environment_id", "process", "replica")
        .annotate(low=Min("restarts"), high=Max("restarts"))
    )
    limit, minutes = settings.PAAS_ALERT_CRASH_RESTARTS, settings.PAAS_ALERT_CRASH_MINUTES
    return [
        Firing(
            r["container"],
            r["environment_id"],
            f"{r['process']}.{r['replica']} restarted {r['high'] - r['low']} times "
            f"in {minutes} minutes (alert at {limit})",
        )
        for r in rows
        if r["high"] - r["low"] >= limit
    ]


def memory_pressure(now: datetime) -> list[Firing]:
    """Containers above the fraction in every sample of the window, which the samples span."""
    minutes = settings.PAAS_ALERT_MEMORY_MINUTES
    since = now - timedelta(minutes=minutes)
    threshold = settings.PAAS_ALERT_MEMORY_FRACTION
    ratio = Cast(F("memory_bytes"), FloatField()) / Cast(F("memory_limit_bytes"), FloatField())
    rows = (
        ContainerMetric.objects.filter(at__gte=since - timedelta(seconds=_slack()))
        .filter(memory_limit_bytes__gt=0)
        .values("container", "environment_id", "process", "replica")
        .annotate(lowest=Min(ratio), first=Min("at"), latest=Max("at"))
    )
    percent = round(100 * threshold)
    return [
        Firing(
            r["container"],
            r["environment_id"],
            f"{r['process']}.{r['replica']} used over {percent} % of its memory limit "
            f"for {minutes} minutes",
        )
        for r in rows
        if r["lowest"] >= threshold
        and r["first"] <= since + timedelta(seconds=_slack())
        and r["latest"] >= now - timedelta(seconds=_slack())
    ]


def _slack() -> float:
    # Samples land every PAAS_METRICS_SECONDS, a little late or early.
    return settings.PAAS_METRICS_SECONDS * 1.5


def error_rates(now: datetime) -> list[Firing]:
    minutes = settings.PAAS_ALERT_ERROR_MINUTES
    rows = (
        EnvironmentMetric.objects.filter(at__gt=now - timedelta(minutes=minutes))
        .values("environment_id")
        .annotate(requests=Sum("requests"), errors=Sum("errors_5xx"), n=Count("id"))
        .filter(~Q(requests=0))
    )
    rate = settings.PAAS_ALERT_ERROR_RATE
    return [
        Firing(
            str(r["environment_id"]),
            r["environment_id"],
            f"{r['errors']} of {r['requests']} requests answered 5xx in {minutes} minutes "
            f"({100 * r['errors'] / r['requests']:.1f} %, alert above {100 * rate:g} %)",
        )
        for r in rows
        if r["requests"] >= settings.PAAS_ALERT_MIN_REQUESTS and r["errors"] / r["requests"] > rate
    ]


def disk_full(disk_usage: Callable) -> list[Firing]:
    usage = disk_usage(settings.VAR_DIR)
    fraction = usage.used / usage.total if usage.total else 0
    if fraction <= settings.PAAS_ALERT_DISK_FRACTION:
        return []
    return [
        Firing(
            "disk",
            None,
            f"the disk of {settings.VAR_DIR} is {100 * fraction:.0f} % full "
            f"({usage.free // 2**20} MiB free)",
        )
    ]


# --- episodes ---------------------------------------------------------------------------------


def _settle(kind: str, firing: list[Firing]) -> int:
    opened = sum(1 for one in firing if _open(kind, one))
    current = {one.subject for one in firing}
    for episode in AlertEpisode.objects.filter(kind=kind).exclude(subject__in=current):
        _close(kind, episode)
    return opened


def _open(kind: str, firing: Firing) -> bool:
    try:
        with transaction.atomic():
            AlertEpisode.objects.create(
                kind=kind, subject=firing.subject, environment_id=firing.environment_id
            )
    except IntegrityError:
        return False  # already open: it was reported when it began
    _send(kind, firing.environment_id, (kind, firing.message))
    return True


def _close(kind: str, episode: AlertEpisode) -> None:
    deleted, _ = AlertEpisode.objects.filter(pk=episode.pk).delete()
    if deleted:  # another worker closing it at once sends nothing
        message = f"recovered: the {kind.replace('_', ' ')} alert has cleared"
        _send(kind, episode.environment_id, (f"{kind}_recovered", message))


def _send(kind: str, environment_id: int | None, error: tuple[str, str]) -> None:
    if kind == DISK:
        _email_staff(error[1])
        return
    env = Environment.objects.select_related("app").filter(pk=environment_id).first()
    if env is not None:
        notify(env.app, EVENTS[kind], environment=env, error=error)


def _email_staff(message: str) -> None:
    users = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    recipients = list(users.values_list("email", flat=True))
    if recipients:
        send_mail(f"[Slipway] {message}", f"Slipway alert: {message}.", None, recipients)
    logger.warning("alert: %s", message)
