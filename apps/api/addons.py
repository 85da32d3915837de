"""/api/v1 add-ons and their backups. Only the app's owner sees them (404 for anyone else,
staff too): they hold the users' data. Work on containers happens in tasks: 202."""

from django.shortcuts import get_object_or_404
from ninja import Router, Status

from apps.access import OWN, addon_for, app_for
from apps.api.auth import reveals_secrets
from apps.api.schemas import (
    AddOnIn,
    AddOnListOut,
    AddOnOut,
    AppName,
    BackupListOut,
    BackupOut,
    Flag,
    Id,
    answers,
)
from apps.models import AddOn, Backup
from deployments.services import addon_backups, addons

# AddOnOut.url is there only when revealed; unset fields are left out of the answer.
router = Router(tags=["add-ons"], exclude_unset=True)

ADDON = "/apps/{name}/addons/{int:addon_id}"


@router.get("/apps/{name}/addons", response=answers(200, AddOnListOut, 404))
def list_addons(request, name: AppName):
    app = app_for(request.auth, name, to=OWN)
    return {"addons": AddOn.objects.filter(environment__app=app).select_related("environment")}


@router.post("/apps/{name}/addons", response=answers(202, AddOnOut, 400, 404, 409))
def attach_addon(request, name: AppName, payload: AddOnIn):
    """Created in a worker; the app gets its env var from its next deployment or restart."""
    app = app_for(request.auth, name, to=OWN)
    return Status(202, addons.attach(app, payload.environment, payload.kind))


@router.get(ADDON, response=answers(200, AddOnOut, 400, 404))
def get_addon(request, name: AppName, addon_id: Id, reveal: Flag = False):
    """?reveal=true adds the connection URL, password included (masked for a read-only
    token)."""
    addon = addon_for(request.auth, name, addon_id)
    return AddOnOut.revealing(addon, masked=not reveals_secrets(request)) if reveal else addon


@router.delete(ADDON, response=answers(202, AddOnOut, 400, 404, 409))
def detach_addon(request, name: AppName, addon_id: Id, delete_data: Flag = False):
    """Detached add-ons keep their data unless ?delete_data=true (volume and backups)."""
    addon = addon_for(request.auth, name, addon_id)
    return Status(202, addons.detach(addon, delete_data=delete_data))


@router.post(ADDON + "/restart", response=answers(202, AddOnOut, 404, 409))
def restart_addon(request, name: AppName, addon_id: Id):
    return Status(202, addons.restart(addon_for(request.auth, name, addon_id)))


@router.get(ADDON + "/backups", response=answers(200, BackupListOut, 404))
def list_backups(request, name: AppName, addon_id: Id):
    return {"backups": addon_for(request.auth, name, addon_id).backups.all()}


@router.post(ADDON + "/backups", response=answers(202, BackupOut, 404, 409))
def take_backup(request, name: AppName, addon_id: Id):
    addon = addon_for(request.auth, name, addon_id)
    return Status(202, addon_backups.request_backup(addon))


@router.post(ADDON + "/backups/{int:backup_id}/restore", response=answers(202, BackupOut, 404, 409))
def restore_backup(request, name: AppName, addon_id: Id, backup_id: Id):
    addon = addon_for(request.auth, name, addon_id)
    backup = get_object_or_404(Backup.objects.select_related("addon"), pk=backup_id, addon=addon)
    return Status(202, addon_backups.request_restore(backup))
