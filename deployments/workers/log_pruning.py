"""Keeping the runtime-log store bounded: lines older than PAAS_RUNTIME_LOG_RETENTION_DAYS
go, and an app over PAAS_RUNTIME_LOG_MAX_BYTES_PER_APP loses its oldest lines until it is
under. The collector runs this every PAAS_RUNTIME_LOG_PRUNE_SECONDS, in batches, so no
delete holds a long transaction or locks out the writer."""

import time
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from deployments.models.runtime_logs import CollectedContainer, RuntimeLogLine, RuntimeLogUsage

BATCH = 10_000
DAY_NS = 86_400 * 1_000_000_000


def prune() -> int:
    """Both bounds; the number of lines deleted."""
    return prune_old() + prune_oversized() + forget_gone_containers()


def prune_old(now_ns: int | None = None) -> int:
    days = settings.PAAS_RUNTIME_LOG_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now_ns or time.time_ns()) - days * DAY_NS
    return _delete_in_batches("ns < %s", [cutoff])


def prune_oversized() -> int:
    cap = settings.PAAS_RUNTIME_LOG_MAX_BYTES_PER_APP
    if cap <= 0:
        return 0
    deleted = 0
    for usage in RuntimeLogUsage.objects.filter(bytes__gt=cap):
        over = usage.bytes - cap
        while over > 0:
            removed, freed = _delete_oldest_of(usage.app_id)
            if not removed:
                break
            deleted, over = deleted + removed, over - freed
    return deleted


def forget_gone_containers() -> int:
    """Cursors of containers read to the end a week ago: those containers are long gone."""
    week_ago = time.time() - 7 * 86_400
    stale = CollectedContainer.objects.filter(finished=True, updated_at__lt=_at(week_ago))
    stale.delete()
    return 0


def _delete_in_batches(condition: str, params: list) -> int:
    deleted = 0
    while True:
        removed = _delete(f"SELECT id FROM {_table()} WHERE {condition} LIMIT {BATCH}", params)
        deleted += removed
        if removed < BATCH:
            return deleted


def _delete_oldest_of(app_id: int) -> tuple[int, int]:
    """One batch of the app's oldest lines (the (app, id) index): (lines, bytes) freed."""
    sql = f"SELECT id FROM {_table()} WHERE app_id = %s ORDER BY id LIMIT {BATCH}"
    freed = defaultdict(int)
    removed = _delete(sql, [app_id], freed)
    return removed, freed[app_id]


def _delete(select_ids: str, params: list, freed: dict | None = None) -> int:
    """Delete the rows select_ids finds, and take their bytes off each app's counter."""
    freed = freed if freed is not None else defaultdict(int)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_table()} WHERE id IN ({select_ids}) RETURNING app_id, length(text)",
            params,
        )
        rows = cursor.fetchall()
        for app_id, length in rows:
            freed[app_id] += length
        for app_id, amount in freed.items():
            RuntimeLogUsage.objects.filter(app_id=app_id).update(bytes=F("bytes") - amount)
    return len(rows)


def _table() -> str:
    return RuntimeLogLine._meta.db_table


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
