"""What the backup tasks do: dumps made inside the add-on's container and streamed to a file
under PAAS_BACKUP_DIR (never whole in memory), kept PAAS_BACKUP_KEEP per add-on, and
restored by feeding a file back to the engine's client in the same container.

SQL dumps are gzipped on the way to disk; Redis RDB snapshots are compressed already.
The use cases that request them live in deployments/services/addon_backups.py.
"""

import gzip
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from apps.models.addons import AddOn, AddOnKind, Backup, BackupStatus
from deployments.adapters import addon_engines
from deployments.adapters.runtime import RuntimeBackendError

READ_CHUNK = 256 * 1024


def run_backup(backup_id: int, runtime) -> str:
    backup = Backup.objects.select_related("addon__environment__app").filter(pk=backup_id).first()
    if backup is None or not backup.claim(_relative_path(backup)):
        return "skipped"
    addon, target = backup.addon, backup.file
    partial_file = target.with_name(target.name + ".part")
    try:
        result = _dump(addon, partial_file, runtime)
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


def run_restore(backup_id: int, runtime) -> str:
    backup = Backup.objects.select_related("addon__environment__app").filter(pk=backup_id).first()
    if backup is None or not backup.claim_restore():
        return "skipped"
    try:
        restore_into(backup.addon, backup, runtime)
    except (BackupFailed, RuntimeBackendError, OSError) as exc:
        backup.finish_restore(False, getattr(exc, "message", None) or str(exc))
        return "failed"
    backup.finish_restore(True)
    return "succeeded"


def restore_into(addon: AddOn, backup: Backup, runtime) -> None:
    """Feed the backup's file to `addon`: its own, or another running add-on of the same
    kind (a preview's new database, seeded from its template's). Dumps carry no owner, so
    they load under the target's account. Raises BackupFailed, RuntimeBackendError, OSError."""
    if addon.kind != backup.addon.kind:
        raise BackupFailed(f"a {backup.addon.kind} backup cannot go into a {addon.kind} add-on")
    command = addon_engines.restore_command(addon)
    result = runtime.exec_from_stream(
        addon.container_id, command.argv, _chunks(backup), command.env
    )
    if not result.ok:
        raise BackupFailed(f"exit status {result.exit_code}: {result.output.strip()}")
    if addon.kind == AddOnKind.REDIS:  # the snapshot is loaded by the next start
        runtime.restart(addon.container_id)
        addon_engines.wait_ready(addon, runtime)


def _chunks(backup: Backup) -> Iterator[bytes]:
    opener = open if backup.addon.kind == AddOnKind.REDIS else gzip.open
    with opener(backup.file, "rb") as source:
        while chunk := source.read(READ_CHUNK):
            yield chunk


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
