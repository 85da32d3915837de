"""Backups of add-ons: dumps made inside the add-on's container and streamed to a file
under PAAS_BACKUP_DIR (never whole in memory), kept PAAS_BACKUP_KEEP per add-on, and
restored by feeding a file back to the engine's client in the same container.

SQL dumps are gzipped on the way to disk; Redis RDB snapshots are compressed already.
"""

import gzip
import logging
import shutil
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.models.addons import AddOn, AddOnKind, AddOnStatus, Backup, BackupStatus
from deployments.adapters import addon_engines
from deployments.adapters.runtime import RuntimeBackendError
from deployments.services import Conflict

logger = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
ACTIVE = (BackupStatus.PENDING, BackupStatus.RUNNING)


def _enqueue(task_name: str, *args) -> None:
    from deployments import addon_tasks

    getattr(addon_tasks, task_name).delay(*args)


def _runtime(runtime=None):
    from deployments.adapters.runtime import get_runtime

    return runtime or get_runtime()


# --- use cases -------------------------------------------------------------------------------


def request_backup(addon: AddOn, scheduled: bool = False) -> Backup:
    if addon.status != AddOnStatus.RUNNING:
        raise Conflict(
            f"The add-on is {addon.status}; only a running one is backed up.", "not_running"
        )
    with transaction.atomic():
        AddOn.objects.select_for_update().filter(pk=addon.pk).first()  # one request at a time
        _fail_stale(addon)
        if addon.backups.filter(status__in=ACTIVE).exists():
            raise Conflict("A backup of this add-on is already in progress.", "backup_in_progress")
        backup = Backup.objects.create(addon=addon, scheduled=scheduled)
        transaction.on_commit(partial(_enqueue, "run_backup", backup.pk))
    return backup


def _fail_stale(addon: AddOn) -> None:
    """A backup whose worker died mid-dump stays "running": past the time limit it failed."""
    cutoff = timezone.now() - timedelta(seconds=settings.PAAS_BACKUP_TIMEOUT)
    for stale in addon.backups.filter(status__in=ACTIVE, created_at__lt=cutoff):
        stale.mark_failed("The backup did not finish in time (its worker stopped).")
        if stale.file is not None:
            stale.file.with_name(stale.file.name + ".part").unlink(missing_ok=True)


def request_restore(backup: Backup) -> Backup:
    """Replace the add-on's data with the backup's. The app keeps running meanwhile."""
    addon = backup.addon
    if addon.status != AddOnStatus.RUNNING:
        raise Conflict(f"The add-on is {addon.status}; start it before restoring.", "not_running")
    if not backup.is_restorable:
        raise Conflict(
            "This backup cannot be restored (unfinished, missing or restoring).", "not_restorable"
        )
    if Backup.objects.filter(addon=addon, restore_status__in=["pending", "running"]).exists():
        raise Conflict("A restore of this add-on is already in progress.", "restore_in_progress")
    if not backup.request_restore():
        raise Conflict("A restore of this backup is already in progress.", "restore_in_progress")
    transaction.on_commit(partial(_enqueue, "run_restore", backup.pk))
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


# --- what the tasks do -----------------------------------------------------------------------


def run_backup(backup_id: int, runtime=None) -> str:
    backup = Backup.objects.select_related("addon__environment__app").filter(pk=backup_id).first()
    if backup is None or not backup.claim(_relative_path(backup)):
        return "skipped"
    addon, target = backup.addon, backup.file
    partial_file = target.with_name(target.name + ".part")
    try:
        result = _dump(addon, partial_file, _runtime(runtime))
        if not result.ok:
            raise BackupFailed(f"exit status {result.exit_code}: {result.output.strip()}")
        partial_file.rename(target)
    except (BackupFailed, RuntimeBackendError, OSError) as exc:
        partial_file.unlink(missing_ok=True)
        backup.mark_failed(getattr(exc, "message", None) or str(exc))
        return "failed"
    backup.mark_succeeded(target.stat().st_size)
    prune(addon)
    return "succeeded"


class BackupFailed(Exception):
    pass


def _relative_path(backup: Backup) -> str:
    addon = backup.addon
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    folder = f"{_app_folder(addon.app.name)}/{addon.environment.name}-{addon.kind}-{addon.pk}"
    return f"{folder}/{stamp}-{backup.pk}{addon_engines.dump_suffix(addon)}"


def _app_folder(app_name: str) -> str:
    # Per installation, like everything else it makes: a test instance beside a running
    # platform never touches the platform's dumps.
    return f"{settings.PAAS_INSTANCE}/{app_name}"


def _dump(addon: AddOn, path: Path, runtime):
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    command = addon_engines.dump_command(addon)
    opener = open if addon.kind == AddOnKind.REDIS else partial(gzip.open, compresslevel=6)
    with opener(path, "wb") as out:
        path.chmod(0o600)  # dumps hold the users' data
        return runtime.exec_to_stream(addon.container_id, command.argv, out.write, command.env)


def run_restore(backup_id: int, runtime=None) -> str:
    backup = Backup.objects.select_related("addon__environment__app").filter(pk=backup_id).first()
    if backup is None or not backup.claim_restore():
        return "skipped"
    addon, runtime = backup.addon, _runtime(runtime)
    try:
        command = addon_engines.restore_command(addon)
        result = runtime.exec_from_stream(
            addon.container_id, command.argv, _chunks(backup), command.env
        )
        if not result.ok:
            raise BackupFailed(f"exit status {result.exit_code}: {result.output.strip()}")
        if addon.kind == AddOnKind.REDIS:  # the snapshot is loaded by the next start
            runtime.restart(addon.container_id)
            addon_engines.wait_ready(addon, runtime)
    except (BackupFailed, RuntimeBackendError, OSError) as exc:
        backup.finish_restore(False, getattr(exc, "message", None) or str(exc))
        return "failed"
    backup.finish_restore(True)
    return "succeeded"


def _chunks(backup: Backup) -> Iterator[bytes]:
    opener = open if backup.addon.kind == AddOnKind.REDIS else gzip.open
    with opener(backup.file, "rb") as source:
        while chunk := source.read(READ_CHUNK):
            yield chunk


# --- retention and cleanup -------------------------------------------------------------------


def prune(addon: AddOn, keep: int | None = None) -> int:
    """Keep the newest `keep` successful backups (and as many failed ones, for their
    messages); the rest go, files first."""
    keep = settings.PAAS_BACKUP_KEEP if keep is None else keep
    removed = 0
    for status in (BackupStatus.SUCCEEDED, BackupStatus.FAILED):
        for old in addon.backups.filter(status=status).order_by("-created_at", "-pk")[keep:]:
            if old.restore_status in ("pending", "running"):
                continue
            _delete(old)
            removed += 1
    return removed


def _delete(backup: Backup) -> None:
    if backup.file is not None:
        backup.file.unlink(missing_ok=True)
    backup.delete()


def delete_backup_files(addon: AddOn) -> None:
    for backup in addon.backups.all():
        _delete(backup)
    folder = Path(settings.PAAS_BACKUP_DIR) / _app_folder(addon.app.name)
    for leftover in folder.glob(f"*-{addon.kind}-{addon.pk}"):
        shutil.rmtree(leftover, ignore_errors=True)


def delete_app_backups(app_name: str) -> None:
    """The app is being deleted: its dumps go with it."""
    shutil.rmtree(Path(settings.PAAS_BACKUP_DIR) / _app_folder(app_name), ignore_errors=True)
