"""Retention: old log lines and old uploaded archives go, a batch at a time (Celery beat).

"Old" is measured from when a thing stopped changing: a deployment's or a run's log from
its finish time (an unfinished one keeps its log whatever its age), an archive from its
upload (the file's mtime). Kept whatever their age: the log of every environment's live
deployment (it says why the live one is how it is), and an archive that a live deployment
or an unfinished one was built from (a redeploy, or the pipeline, still needs it).

Each batch is its own short statement in autocommit, so a first run over years of logs
never holds one long transaction or lock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.models import Environment
from deployments.models import ACTIVE_STATUSES, Deployment, LogLine, Run, RunLogLine
from deployments.services.archives import archive_dir
from deployments.workers.cleanup import ARCHIVE_SUFFIX

logger = logging.getLogger(__name__)
BATCH = 5000


def prune_logs(now: datetime | None = None) -> dict[str, int]:
    """Apply PAAS_LOG_RETENTION_DAYS; say how many lines went."""
    days = settings.PAAS_LOG_RETENTION_DAYS
    if days <= 0:
        return {"log_lines": 0, "run_log_lines": 0}
    cutoff = (now or timezone.now()) - timedelta(days=days)
    removed = {
        "log_lines": delete_in_batches(old_deployment_lines(cutoff)),
        "run_log_lines": delete_in_batches(old_run_lines(cutoff)),
    }
    if any(removed.values()):
        logger.info("retention: %s", removed)
    return removed


def prune_archives(now: datetime | None = None) -> int:
    """Apply PAAS_ARCHIVE_RETENTION_DAYS; say how many archives went."""
    days = settings.PAAS_ARCHIVE_RETENTION_DAYS
    if days <= 0:
        return 0
    removed = delete_old_archives((now or timezone.now()) - timedelta(days=days))
    if removed:
        logger.info("retention: %d uploaded archives", removed)
    return removed


def live_deployment_ids() -> QuerySet:
    return Environment.objects.filter(live_deployment__isnull=False).values("live_deployment")


def old_deployment_lines(cutoff: datetime) -> QuerySet:
    finished = Deployment.objects.filter(finished_at__lt=cutoff).exclude(
        pk__in=live_deployment_ids()
    )
    return LogLine.objects.filter(deployment__in=finished)


def old_run_lines(cutoff: datetime) -> QuerySet:
    return RunLogLine.objects.filter(run__in=Run.objects.filter(finished_at__lt=cutoff))


def delete_in_batches(lines: QuerySet, batch: int = BATCH) -> int:
    """Delete `lines` BATCH ids at a time (each batch one statement); return how many."""
    total = 0
    while ids := list(lines.values_list("pk", flat=True)[:batch]):
        lines.model.objects.filter(pk__in=ids).delete()
        total += len(ids)
    return total


def delete_old_archives(cutoff: datetime) -> int:
    removed = 0
    for path in _uploads(archive_dir()):
        if _modified(path) < cutoff and not archive_in_use(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def archive_in_use(path: Path) -> bool:
    """A live or unfinished deployment was built from it. Asked just before the unlink, so
    a redeploy queued meanwhile is seen (one a moment later finds archive_missing)."""
    users = Deployment.objects.filter(step_data__archive=str(path))
    return users.filter(Q(status__in=ACTIVE_STATUSES) | Q(pk__in=live_deployment_ids())).exists()


def _uploads(folder: Path) -> list[Path]:
    """The uploads saved by services/archives.py: <app>-<uuid hex>.tar.gz, nothing else."""
    return [
        path
        for path in Path(folder).glob("*-*.tar.gz")
        if path.is_file() and ARCHIVE_SUFFIX.fullmatch(path.name.rsplit("-", 1)[1])
    ]


def _modified(path: Path) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.get_current_timezone())
    except FileNotFoundError:
        return timezone.now()  # gone already: nothing to delete
