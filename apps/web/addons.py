"""Add-on pages: attach, restart, detach, backups and restores, and the read-only database
view. Thin: look up what the user owns, call a service, render.

Only the app's owner gets here (staff included in nothing): an add-on holds the users' data,
so everyone else gets the same 404 as for a missing app. Everything shown from a database
is untrusted text; templates escape it and never mark it safe.
"""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.access import OWN, addon_for, app_for
from apps.models import App
from apps.models.addons import AddOn, AddOnKind, Backup
from apps.web.pages import login_required
from deployments.services import ServiceError
from deployments.services import addon_backups as backups_service
from deployments.services import addons as addons_service
from deployments.services import database_view as addon_browser

STOP_POLLING = 286
DELETE_WORD = "delete"


# --- access ----------------------------------------------------------------------------------


def _done(request, app: App, addon: AddOn | None = None):
    if addon is not None and AddOn.objects.filter(pk=addon.pk).exists():
        return redirect("addon-detail", app.name, addon.pk)
    return redirect("addons", app.name)


def _refused(request, exc: ServiceError) -> None:
    messages.error(request, f"{exc.message} ({exc.code})")


# --- the add-ons of an app -------------------------------------------------------------------


@login_required
@require_GET
def addons(request, name):
    app = app_for(request.user, name, to=OWN)
    found = AddOn.objects.filter(environment__app=app).select_related("environment")
    context = {
        "app": app,
        "addons": found,
        "kinds": AddOnKind.choices,
        "environments": app.environment_choices(),
    }
    return render(request, "addons/list.html", context)


@login_required
@require_POST
def attach(request, name):
    app = app_for(request.user, name, to=OWN)
    environment = request.POST.get("environment", "production")
    try:
        addon = addons_service.attach(app, environment, request.POST.get("kind", ""))
    except ServiceError as exc:
        _refused(request, exc)
        return redirect("addons", app.name)
    messages.success(
        request,
        f"{addon.get_kind_display()} is starting. {addon.env_var} is set in {environment}: "
        "the app sees it from its next deployment or restart.",
    )
    return redirect("addon-detail", app.name, addon.pk)


@login_required
@require_GET
@never_cache
def detail(request, name, pk):
    addon = addon_for(request.user, name, pk)
    context = {
        "app": addon.app,
        "addon": addon,
        "backups": addon.backups.all(),
        "delete_word": DELETE_WORD,
        "keep": settings.PAAS_BACKUP_KEEP,
        "settling": addon.is_settling,
    }
    return render(request, "addons/detail.html", context)


@login_required
@require_GET
@never_cache
def status(request, name, pk):
    """Polled while the add-on starts; 286 with the final badge once it settled."""
    addon = addon_for(request.user, name, pk)
    settling = addon.is_settling
    response = render(
        request, "addons/_status.html", {"app": addon.app, "addon": addon, "settling": settling}
    )
    if not settling:
        response.status_code = STOP_POLLING
    return response


@login_required
@require_GET
@never_cache
def reveal(request, name, pk):
    addon = addon_for(request.user, name, pk)
    show = request.GET.get("show", "1") != "0"
    return render(request, "addons/_url.html", {"app": addon.app, "addon": addon, "show": show})


@login_required
@require_POST
def restart(request, name, pk):
    addon = addon_for(request.user, name, pk)
    try:
        addons_service.restart(addon)
        messages.success(request, f"{addon.get_kind_display()} is restarting; its data stays.")
    except ServiceError as exc:
        _refused(request, exc)
    return _done(request, addon.app, addon)


@login_required
@require_POST
def detach(request, name, pk):
    addon = addon_for(request.user, name, pk)
    delete_data = request.POST.get("delete_data") == "on"
    if delete_data and request.POST.get("confirm", "").strip().lower() != DELETE_WORD:
        messages.error(request, f"Type “{DELETE_WORD}” to delete the data for good.")
        return _done(request, addon.app, addon)
    try:
        addons_service.detach(addon, delete_data=delete_data)
    except ServiceError as exc:
        _refused(request, exc)
        return _done(request, addon.app, addon)
    if delete_data:
        messages.success(request, f"{addon.get_kind_display()} and its data are being deleted.")
    else:
        messages.success(request, f"{addon.get_kind_display()} detached; its data is kept.")
    return _done(request, addon.app, addon)


# --- backups ---------------------------------------------------------------------------------


@login_required
@require_POST
def backup(request, name, pk):
    addon = addon_for(request.user, name, pk)
    try:
        backups_service.request_backup(addon)
        messages.success(request, "Backup started.")
    except ServiceError as exc:
        _refused(request, exc)
    return _done(request, addon.app, addon)


@login_required
@require_POST
def restore(request, name, pk, backup_id):
    addon = addon_for(request.user, name, pk)
    chosen = get_object_or_404(Backup, pk=backup_id, addon=addon)
    if request.POST.get("confirm") != "on":
        messages.error(request, "Tick the box to confirm: restoring replaces the current data.")
        return _done(request, addon.app, addon)
    try:
        backups_service.request_restore(chosen)
        messages.success(request, "Restore started: the data goes back to that backup.")
    except ServiceError as exc:
        _refused(request, exc)
    return _done(request, addon.app, addon)


# --- the read-only database view -------------------------------------------------------------


def _view_context(addon: AddOn, **extra) -> dict:
    return {"app": addon.app, "addon": addon, "row_limit": settings.PAAS_DB_VIEW_ROWS, **extra}


@login_required
@require_GET
@never_cache
def database(request, name, pk):
    """Tables and row counts; for Redis, keys matching a pattern."""
    addon = addon_for(request.user, name, pk)
    context = _view_context(addon)
    try:
        if addon.kind == AddOnKind.REDIS:
            pattern = request.GET.get("pattern", "*")[:200] or "*"
            keys, more = addon_browser.redis_keys(addon, pattern)
            context.update(pattern=pattern, keys=keys, more=more)
        else:
            context["tables"] = addon_browser.tables(addon)
    except addon_browser.BrowseError as exc:
        context["error"] = exc
    return render(request, "addons/database.html", context)


@login_required
@require_GET
@never_cache
def table(request, name, pk, table):
    addon = addon_for(request.user, name, pk)
    context = _view_context(addon, table=table)
    try:
        context["result"] = addon_browser.table_rows(addon, table)
    except addon_browser.BrowseError as exc:
        context["error"] = exc
    return render(request, "addons/table.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def query(request, name, pk):
    """The SQL box: one statement, read-only, with a timeout. Errors are messages."""
    addon = addon_for(request.user, name, pk)
    statement = request.POST.get("sql", "")[:20000] if request.method == "POST" else ""
    context = _view_context(addon, statement=statement)
    if request.method == "POST":
        try:
            context["result"] = addon_browser.run_query(addon, statement)
        except addon_browser.BrowseError as exc:
            context["error"] = exc
    return render(request, "addons/query.html", context, status=400 if "error" in context else 200)
