"""Use cases for add-on backups: request one (on demand or on schedule) and request a
restore. The dumps themselves are made by deployments/workers/backups.py."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.models.addons import BACKUP_UNFINISHED, RESTORE_UNDER_WAY, AddOn, AddOnStatus, Backup
from deployments import jobs
from deployments.services import Conflict
from deployments.services.audit import audited

logger = logging.getLogger(__name__)


# --- use cases -------------------------------------------------------------------------------


@audited("backup.request", target=lambda b, addon, *a, **k: addon.kind)
def request_backup(addon: AddOn, scheduled: bool = False) -> Backup:
    if not addon.is_usable:
        raise Conflict(
            f"The add-on is {addon.status}; only a running one is backed up.", "not_running"
        )
    with transaction.atomic():
        AddOn.objects.select_for_update().filter(pk=addon.pk).first()  # one request at a time
        _fail_stale(addon)
        if addon.backups.filter(status__in=BACKUP_UNFINISHED).exists():
            raise Conflict("A backup of this add-on is already in progress.", "backup_in_progress")
        backup = Backup.objects.create(addon=addon, scheduled=scheduled)
        jobs.run_backup(backup.pk)
    return backup


def _fail_stale(addon: AddOn) -> None:
    """A backup whose worker died mid-dump stays "running": past the time limit it failed."""
    cutoff = timezone.now() - timedelta(seconds=settings.PAAS_BACKUP_TIMEOUT)
    for stale in addon.backups.filter(status__in=BACKUP_UNFINISHED, created_at__lt=cutoff):
        stale.mark_failed("The backup did not finish in time (its worker stopped).")
        if stale.file is not None:
            stale.file.with_name(stale.file.name + ".part").unlink(missing_ok=True)


@audited("backup.restore", target=lambda b, backup: f"{backup.addon.kind} backup #{backup.pk}")
def request_restore(backup: Backup) -> Backup:
    """Replace the add-on's data with the backup's. The app keeps running meanwhile."""
    addon = backup.addon
    if not addon.is_usable:
        raise Conflict(f"The add-on is {addon.status}; start it before restoring.", "not_running")
    if not backup.is_restorable:
        raise Conflict(
            "This backup cannot be restored (unfinished, missing or restoring).", "not_restorable"
        )
    if Backup.objects.filter(addon=addon, restore_status__in=RESTORE_UNDER_WAY).exists():
        raise Conflict("A restore of this add-on is already in progress.", "restore_in_progress")
    if not backup.request_restore():
        raise Conflict("A restore of this backup is already in progress.", "restore_in_progress")
    jobs.run_restore(backup.pk)
    return backup


def scheduled_backups() -> int:
    """One backup of every running add-on (Celery beat); busy ones are left for next time."""
    queued = 0
    for addon in AddOn.objects.filter(status=AddOnStatus.RUNNING):
        try:
            request_backup(addon, scheduled=True)
            queued += 1
        except Conflict:
            continue
    return queued
