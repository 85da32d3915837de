"""/api/v1 add-ons and their backups. Only the app's owner sees them (404 for anyone else):
they hold the users' data. Work on containers happens in tasks, so changes answer 202."""

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from apps.access import addon_for, app_for
from apps.api.auth import api_view
from apps.models.addons import AddOn, Backup
from deployments.services import addon_backups, addons

TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes"}, {"", "0", "false", "no"}


def _flag(request, key: str) -> bool:
    raw = request.GET.get(key, "").strip().lower()
    if raw not in TRUE_WORDS | FALSE_WORDS:
        raise ValidationError({key: ["Use true or false."]})
    return raw in TRUE_WORDS


def _iso(value):
    return value.isoformat() if value else None


def addon_json(addon: AddOn, reveal: bool = False) -> dict:
    body = {
        "id": addon.pk,
        "kind": addon.kind,
        "environment": addon.environment.name,
        "status": addon.status,
        "env_var": addon.env_var,
        "host": addon.alias,
        "port": addon.port,
        "database": addon.database or None,
        "username": addon.username or None,
        "volume": addon.volume,
        "error": {"code": addon.error_code, "message": addon.error_message}
        if addon.error_code
        else None,
        "created_at": _iso(addon.created_at),
    }
    if reveal:
        body["url"] = addon.connection_url()
    return body


def backup_json(backup: Backup) -> dict:
    return {
        "id": backup.pk,
        "status": backup.status,
        "scheduled": backup.scheduled,
        "size": backup.size,
        "age_seconds": int(backup.age.total_seconds()),
        "created_at": _iso(backup.created_at),
        "finished_at": _iso(backup.finished_at),
        "message": backup.message or None,
        "restore": {
            "status": backup.restore_status or None,
            "message": backup.restore_message or None,
            "at": _iso(backup.restored_at),
        },
    }


@api_view(["GET", "POST"])
def addons_collection(request, name):
    app = app_for(request.user, name, owner_only=True)
    if request.method == "POST":
        environment = request.json.get("environment", "production")
        addon = addons.attach(app, str(environment), str(request.json.get("kind", "")))
        return JsonResponse(addon_json(addon), status=202)
    found = AddOn.objects.filter(environment__app=app).select_related("environment")
    return JsonResponse({"addons": [addon_json(a) for a in found]})


@api_view(["GET", "DELETE"])
def addon_detail(request, name, addon_id):
    addon = addon_for(request.user, name, addon_id)
    if request.method == "DELETE":
        addon = addons.detach(addon, delete_data=_flag(request, "delete_data"))
        return JsonResponse(addon_json(addon), status=202)
    return JsonResponse(addon_json(addon, reveal=_flag(request, "reveal")))


@api_view(["POST"])
def addon_restart(request, name, addon_id):
    addon = addons.restart(addon_for(request.user, name, addon_id))
    return JsonResponse(addon_json(addon), status=202)


@api_view(["GET", "POST"])
def backups_collection(request, name, addon_id):
    addon = addon_for(request.user, name, addon_id)
    if request.method == "POST":
        return JsonResponse(backup_json(addon_backups.request_backup(addon)), status=202)
    return JsonResponse({"backups": [backup_json(b) for b in addon.backups.all()]})


@api_view(["POST"])
def backup_restore(request, name, addon_id, backup_id):
    addon = addon_for(request.user, name, addon_id)
    backup = get_object_or_404(Backup.objects.select_related("addon"), pk=backup_id, addon=addon)
    return JsonResponse(backup_json(addon_backups.request_restore(backup)), status=202)
