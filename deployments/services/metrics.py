"""Metrics history for the charts and the API, and the latest samples for Prometheus."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from apps.models import App, Environment, EnvironmentName
from deployments.models import ContainerMetric, EnvironmentMetric
from deployments.services import ServiceError, environment_named

DEFAULT_SPAN = timedelta(hours=1)
MAX_POINTS = 2000  # a chart shows no more; a finer step over a longer span is refused
MAX_STEP = 86400


def series(
    app: App, environment: str = EnvironmentName.PRODUCTION, since=None, step=None, now=None
) -> dict:
    """Columns for the charts: one time axis (bucket ends, epoch seconds) and, per bucket, the
    environment's requests, 5xx, error rate and mean latency, and each container's CPU,
    memory and restart count."""
    now = now or timezone.now()
    env = _environment(app, environment)
    since = _since(since, now)
    step = _step(step, since, now)
    times = _axis(since, now, step)
    return {
        "app": app.name,
        "environment": env.name,
        "since": since,
        "step": step,
        "times": times,
        **_router_columns(env, since, step, times),
        "containers": _container_columns(env, since, step, times),
    }


def _environment(app: App, name: str) -> Environment:
    try:
        return environment_named(app, name)
    except ServiceError:
        raise ServiceError(f"Unknown environment {name!r}.") from None


def _since(since: datetime | None, now: datetime) -> datetime:
    if since is None:
        return now - DEFAULT_SPAN
    if timezone.is_naive(since):
        since = timezone.make_aware(since, timezone.get_current_timezone())
    if since >= now:
        raise ServiceError("since must be in the past.")
    oldest = now - timedelta(days=settings.PAAS_METRICS_RETENTION_DAYS)
    return max(since, oldest)


def _step(step: int | None, since: datetime, now: datetime) -> int:
    span = (now - since).total_seconds()
    finest = settings.PAAS_METRICS_SECONDS
    if step is None:
        return max(finest, int(span // (MAX_POINTS // 4) // finest * finest) or finest)
    if not finest <= step <= MAX_STEP:
        raise ServiceError(f"step must be between {finest} and {MAX_STEP} seconds.")
    if span / step > MAX_POINTS:
        raise ServiceError(
            f"That is over {MAX_POINTS} points: take a larger step or a later since."
        )
    return step


def _axis(since: datetime, now: datetime, step: int) -> list[int]:
    first = int(since.timestamp()) // step * step + step
    return list(range(first, int(now.timestamp()) // step * step + step + 1, step))


def _bucket(at: datetime, step: int) -> int:
    # A row's `at` ends its step: one ending on a boundary belongs to the bucket it ends.
    seconds = at.timestamp()
    return int(-(-seconds // step) * step)


def _router_columns(env: Environment, since: datetime, step: int, times: list[int]) -> dict:
    requests, errors, weighted = defaultdict(int), defaultdict(int), defaultdict(float)
    rows = EnvironmentMetric.objects.filter(environment=env, at__gt=since).order_by("at")
    for row in rows.iterator():
        key = _bucket(row.at, step)
        requests[key] += row.requests
        errors[key] += row.errors_5xx
        if row.latency_ms is not None:
            weighted[key] += row.latency_ms * row.requests
    return {
        "requests": [requests.get(t, 0) if t in requests else None for t in times],
        "errors_5xx": [errors.get(t, 0) if t in requests else None for t in times],
        "error_rate": [
            round(errors[t] / requests[t], 4) if requests.get(t) else None for t in times
        ],
        "latency_ms": [
            round(weighted[t] / requests[t], 2) if requests.get(t) and t in weighted else None
            for t in times
        ],
    }


def _container_columns(env: Environment, since: datetime, step: int, times: list[int]) -> list:
    buckets: dict[tuple, dict[int, list[ContainerMetric]]] = defaultdict(lambda: defaultdict(list))
    rows = ContainerMetric.objects.filter(environment=env, at__gt=since).order_by("at")
    for row in rows.iterator():
        buckets[(row.process, row.replica, row.container)][_bucket(row.at, step)].append(row)
    return [
        _one_container(process, replica, container, by_time, times)
        for (process, replica, container), by_time in sorted(buckets.items())
    ]


def _one_container(process, replica, container, by_time, times) -> dict:
    def column(pick):
        return [pick(by_time[t]) if t in by_time else None for t in times]

    return {
        "container": container,
        "process": process,
        "replica": replica,
        "cpu_percent": column(lambda rs: round(sum(r.cpu_percent for r in rs) / len(rs), 2)),
        "memory_bytes": column(lambda rs: max(r.memory_bytes for r in rs)),
        "memory_limit_bytes": column(lambda rs: max(r.memory_limit_bytes for r in rs)),
        "restarts": column(lambda rs: max(r.restarts for r in rs)),
    }


# --- Prometheus ---------------------------------------------------------------------------


def latest_samples() -> dict:
    """The rows of the last sampling round: every container's and every environment's."""
    latest = {
        "containers": ContainerMetric.objects.aggregate(at=Max("at"))["at"],
        "environments": EnvironmentMetric.objects.aggregate(at=Max("at"))["at"],
    }
    related = ("environment", "environment__app")
    return {
        "containers": list(
            ContainerMetric.objects.filter(at=latest["containers"]).select_related(*related)
        ),
        "environments": list(
            EnvironmentMetric.objects.filter(at=latest["environments"]).select_related(*related)
        ),
    }


CONTAINER_GAUGES = (
    ("slipway_container_cpu_percent", "CPU of the last sample (100 = one core).", "cpu_percent"),
    ("slipway_container_memory_bytes", "Memory without page cache.", "memory_bytes"),
    ("slipway_container_memory_limit_bytes", "Memory limit (0: none).", "memory_limit_bytes"),
    ("slipway_container_restarts", "Restarts by the engine's restart policy.", "restarts"),
)
ENVIRONMENT_GAUGES = (
    ("slipway_environment_requests", "Requests during the last step.", "requests"),
    ("slipway_environment_errors_5xx", "5xx answers during the last step.", "errors_5xx"),
    ("slipway_environment_latency_ms", "Mean latency during the last step.", "latency_ms"),
    ("slipway_environment_step_seconds", "Seconds the last step covered.", "step"),
)


def prometheus_text() -> str:
    """The latest samples in Prometheus' text format (version 0.0.4), as gauges: Slipway
    already turned the router's totals into per-step numbers."""
    latest = latest_samples()
    lines: list[str] = []
    for name, help_text, field in CONTAINER_GAUGES:
        lines += _gauge(name, help_text, field, latest["containers"], _container_labels)
    for name, help_text, field in ENVIRONMENT_GAUGES:
        lines += _gauge(name, help_text, field, latest["environments"], _environment_labels)
    return "\n".join(lines) + "\n"


def _gauge(name, help_text, field, rows, labels) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for row in rows:
        value = getattr(row, field)
        if value is not None:
            lines.append(f"{name}{{{_labels(labels(row))}}} {_number(value)}")
    return lines


def _number(value) -> str:
    return str(value) if isinstance(value, int) else repr(round(float(value), 4))


def _environment_labels(row) -> dict:
    return {"app": row.environment.app.name, "environment": row.environment.name}


def _container_labels(row) -> dict:
    return {**_environment_labels(row), "process": row.process, "replica": str(row.replica)}


def _labels(values: dict) -> str:
    # App names and process types are [a-z0-9-]; escaping is for safety, as the format says.
    def escaped(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{key}="{escaped(value)}"' for key, value in values.items())
