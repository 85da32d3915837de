"""The metrics sampler (Celery beat, every PAAS_METRICS_SECONDS): every live container's CPU,
memory and restart count, and the router's requests, 5xx and latency per environment; then
old rows are merged into 5-minute rows and the oldest deleted, a batch at a time.

The router's counters are totals since it started: each sample stores the difference from
the previous one (RouterCounters), so a row says what happened during its step.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.models import Environment
from deployments.adapters.router import ProxyError
from deployments.adapters.router.traefik_metrics import ServiceTotals, TraefikMetrics
from deployments.adapters.runtime import RuntimeBackend, RuntimeBackendError
from deployments.models import (
    DOWNSAMPLED_STEP,
    WEB,
    ContainerMetric,
    EnvironmentMetric,
    RouterCounters,
)

logger = logging.getLogger(__name__)

# Each stats call blocks about a second in the engine: one thread per container, bounded.
SAMPLE_THREADS = 16
DELETE_BATCH = 5000
# Downsampling works through an hour of old rows at a time, at most this many hours a run:
# a backlog (the sampler was off) is caught up over several runs, never in one long one.
MERGE_WINDOW = timedelta(hours=1)
MERGE_WINDOWS_PER_RUN = 24


@dataclass(frozen=True)
class Target:
    environment: Environment
    process: str
    replica: int
    container: str


def sample(runtime: RuntimeBackend, router_metrics: TraefikMetrics, now=None) -> dict:
    """One sampling round; returns how many rows of each kind it wrote."""
    now = now or timezone.now()
    envs = list(
        Environment.objects.filter(live_deployment__isnull=False).select_related(
            "app", "live_deployment"
        )
    )
    containers = sample_containers(envs, runtime, now)
    environments = sample_router(envs, router_metrics, now)
    return {"containers": containers, "environments": environments}


def sample_containers(envs: list[Environment], runtime: RuntimeBackend, now: datetime) -> int:
    targets = [t for env in envs if not env.stopped for t in _targets(env)]
    if not targets:
        return 0
    with ThreadPoolExecutor(max_workers=min(len(targets), SAMPLE_THREADS)) as pool:
        readings = list(pool.map(lambda t: _read(runtime, t.container), targets))
    rows = [
        _container_row(target, reading, now)
        for target, reading in zip(targets, readings, strict=True)
        if reading
    ]
    ContainerMetric.objects.bulk_create(rows)
    return len(rows)


def _targets(env: Environment) -> list[Target]:
    live = env.live_deployment
    kinds = {WEB: live.web_containers, **live.process_containers}
    return [
        Target(env, process, replica, container)
        for process, ids in kinds.items()
        for replica, container in enumerate(ids, start=1)
    ]


def _read(runtime: RuntimeBackend, container: str) -> dict:
    """Its stats and restart count; {} when it is gone or the engine did not answer."""
    try:
        usage = runtime.stats(container)
        if not usage.get("memory_limit_bytes"):  # gone or not running: nothing to measure
            return {}
        return {**usage, "restarts": runtime.restart_count(container)}
    except RuntimeBackendError as exc:
        logger.warning("metrics: no sample of %s: %s", container[:12], exc)
        return {}


def _container_row(target: Target, reading: dict, now: datetime) -> ContainerMetric:
    return ContainerMetric(
        environment=target.environment,
        container=target.container,
        process=target.process,
        replica=target.replica,
        at=now,
        step=settings.PAAS_METRICS_SECONDS,
        cpu_percent=reading.get("cpu_percent") or 0.0,
        memory_bytes=reading.get("memory_bytes") or 0,
        memory_limit_bytes=reading.get("memory_limit_bytes") or 0,
        restarts=reading.get("restarts") or 0,
    )


# --- the router's counters ----------------------------------------------------------------


def sample_router(envs: list[Environment], router_metrics: TraefikMetrics, now) -> int:
    try:
        totals = router_metrics.service_totals()
    except ProxyError as exc:
        logger.warning("metrics: no router counters: %s", exc)
        return 0
    written = 0
    for env in envs:
        # A service Traefik has not served since it started has no series yet: zero.
        if _record_delta(env, totals.get(env.route_id, ServiceTotals()), now):
            written += 1
    return written


def _record_delta(env: Environment, current: ServiceTotals, now: datetime) -> bool:
    """Store the difference from the previous totals; the first sample is only a baseline."""
    with transaction.atomic():
        previous = RouterCounters.objects.select_for_update().filter(environment=env).first()
        RouterCounters.objects.update_or_create(
            environment=env,
            defaults={
                "at": now,
                "requests": current.requests,
                "errors_5xx": current.errors_5xx,
                "duration_sum": current.duration_sum,
                "duration_count": current.duration_count,
            },
        )
        # A stopped environment or one in maintenance gets the router's 503 page by design:
        # not the app's answers, so no row (nor an error-rate alert) comes of them.
        if previous is None or previous.at >= now or env.stopped or env.maintenance:
            return False
        EnvironmentMetric.objects.create(
            environment=env,
            deployment=env.live_deployment.number,
            at=now,
            step=max(1, round((now - previous.at).total_seconds())),
            **_delta(previous, current),
        )
    return True


def _delta(previous: RouterCounters, current: ServiceTotals) -> dict:
    if current.requests < previous.requests:  # the router restarted: its totals began again
        base = ServiceTotals()
    else:
        base = ServiceTotals(
            previous.requests, previous.errors_5xx, previous.duration_sum, previous.duration_count
        )
    count = current.duration_count - base.duration_count
    seconds = current.duration_sum - base.duration_sum
    return {
        "requests": round(current.requests - base.requests),
        "errors_5xx": round(current.errors_5xx - base.errors_5xx),
        "latency_ms": round(1000 * seconds / count, 3) if count > 0 else None,
    }


# --- downsampling and retention -------------------------------------------------------------


def compact(now=None) -> dict:
    """Merge fine rows older than PAAS_METRICS_DOWNSAMPLE_HOURS into DOWNSAMPLED_STEP rows,
    then delete rows older than PAAS_METRICS_RETENTION_DAYS."""
    now = now or timezone.now()
    cutoff = _bucket_start(now - timedelta(hours=settings.PAAS_METRICS_DOWNSAMPLE_HOURS))
    merged = 0
    for _ in range(MERGE_WINDOWS_PER_RUN):
        done = _merge_next_window(cutoff)
        if done is None:
            break
        merged += done
    expired = now - timedelta(days=settings.PAAS_METRICS_RETENTION_DAYS)
    deleted = _delete_before(EnvironmentMetric, expired) + _delete_before(ContainerMetric, expired)
    return {"merged": merged, "deleted": deleted}


def _bucket_start(at: datetime) -> datetime:
    seconds = int(at.timestamp()) // DOWNSAMPLED_STEP * DOWNSAMPLED_STEP
    return datetime.fromtimestamp(seconds, tz=at.tzinfo or timezone.get_current_timezone())


def _fine(model, cutoff: datetime):
    return model.objects.filter(step__lt=DOWNSAMPLED_STEP, at__lt=cutoff)


def _merge_next_window(cutoff: datetime) -> int | None:
    """Merge the oldest hour of fine rows (every environment's); None when none are left."""
    oldest = [
        at
        for model in (EnvironmentMetric, ContainerMetric)
        if (at := _fine(model, cutoff).order_by("at").values_list("at", flat=True).first())
    ]
    if not oldest:
        return None
    start = _bucket_end(min(oldest)) - timedelta(seconds=DOWNSAMPLED_STEP)
    end = min(start + MERGE_WINDOW, cutoff)
    with transaction.atomic():
        merged = _merge_environment_rows(start, end) + _merge_container_rows(start, end)
    return merged


def _window(model, start, end):
    # at is a step's end: a row ending exactly on a boundary belongs to the bucket before it.
    return model.objects.filter(step__lt=DOWNSAMPLED_STEP, at__gt=start, at__lte=end)


def _bucket_end(at: datetime) -> datetime:
    start = _bucket_start(at)
    return start if start == at else start + timedelta(seconds=DOWNSAMPLED_STEP)


def _merge_environment_rows(start, end) -> int:
    rows = list(_window(EnvironmentMetric, start, end).select_for_update())
    groups = defaultdict(list)
    for row in rows:
        groups[(row.environment_id, _bucket_end(row.at))].append(row)
    EnvironmentMetric.objects.bulk_create(
        [_merged_environment(env_id, at, group) for (env_id, at), group in groups.items()]
    )
    EnvironmentMetric.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


def _merged_environment(env_id: int, at: datetime, rows: list[EnvironmentMetric]):
    timed = [(r.latency_ms, r.requests) for r in rows if r.latency_ms is not None and r.requests]
    weight = sum(n for _, n in timed)
    return EnvironmentMetric(
        environment_id=env_id,
        deployment=max(r.deployment for r in rows),
        at=at,
        step=DOWNSAMPLED_STEP,
        requests=sum(r.requests for r in rows),
        errors_5xx=sum(r.errors_5xx for r in rows),
        latency_ms=round(sum(ms * n for ms, n in timed) / weight, 3) if weight else None,
    )


def _merge_container_rows(start, end) -> int:
    rows = list(_window(ContainerMetric, start, end).select_for_update())
    groups = defaultdict(list)
    for row in rows:
        groups[(row.container, _bucket_end(row.at))].append(row)
    ContainerMetric.objects.bulk_create(
        [_merged_container(at, group) for (_, at), group in groups.items()]
    )
    ContainerMetric.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


def _merged_container(at: datetime, rows: list[ContainerMetric]) -> ContainerMetric:
    """CPU is the mean; memory the peak (what an out-of-memory question needs); restarts,
    a total, the last."""
    last = max(rows, key=lambda r: r.at)
    return ContainerMetric(
        environment_id=last.environment_id,
        container=last.container,
        process=last.process,
        replica=last.replica,
        at=at,
        step=DOWNSAMPLED_STEP,
        cpu_percent=round(sum(r.cpu_percent for r in rows) / len(rows), 2),
        memory_bytes=max(r.memory_bytes for r in rows),
        memory_limit_bytes=max(r.memory_limit_bytes for r in rows),
        restarts=max(r.restarts for r in rows),
    )


def _delete_before(model, cutoff: datetime) -> int:
    deleted = 0
    while ids := list(
        model.objects.filter(at__lt=cutoff).values_list("pk", flat=True)[:DELETE_BATCH]
    ):
        deleted += model.objects.filter(pk__in=ids).delete()[0]
    return deleted
