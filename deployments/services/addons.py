"""Use cases for add-ons: attach, restart, detach (optionally deleting the data).

Rows and env vars change here, inside a transaction; containers and volumes are made and
removed by tasks enqueued once it commits (deployments/addon_tasks.py), which call the
`provision`, `restart_container` and `teardown` functions below.
"""

import logging
from functools import partial

from django.db import IntegrityError, transaction

from apps.models import App, EnvironmentName, EnvVar
from apps.models.addons import AddOn, AddOnKind, AddOnStatus, InvalidAddOnTransition
from deployments.adapters import addon_engines
from deployments.adapters.runtime import RuntimeBackendError
from deployments.services import Conflict, ServiceError

logger = logging.getLogger(__name__)


def _enqueue(task_name: str, *args) -> None:
    from deployments import addon_tasks

    getattr(addon_tasks, task_name).delay(*args)


def _after_commit(task_name: str, *args) -> None:
    transaction.on_commit(partial(_enqueue, task_name, *args))


# --- attach ----------------------------------------------------------------------------------


def attach(app: App, environment_name: str, kind: str) -> AddOn:
    """Create the add-on (or bring a detached one back with its data) and point the app's
    env var at it. The app sees it from its next deployment or restart."""
    if environment_name not in EnvironmentName.values:
        raise ServiceError(f"Unknown environment “{environment_name}”.", "invalid_environment")
    if kind not in AddOnKind.values:
        raise ServiceError(
            f"Unknown add-on “{kind}”: use {', '.join(AddOnKind.values)}.", "invalid_kind"
        )
    if app.cleanup_requested:
        raise Conflict(f"App {app.name} is being deleted.", "app_deleting")
    environment = app.environment(environment_name)
    try:
        with transaction.atomic():
            addon = _new_or_detached(environment, kind)
            _claim_env_var(environment, addon)
            _after_commit("provision_addon", addon.pk)
    except IntegrityError:
        raise Conflict(
            f"A {kind} add-on is already attached to {environment_name}.", "addon_exists"
        ) from None
    return addon


def _new_or_detached(environment, kind: str) -> AddOn:
    existing = AddOn.objects.select_for_update().filter(environment=environment, kind=kind).first()
    if existing is None:
        addon = AddOn.new(environment, kind)
        addon.save()
        return addon
    if existing.status != AddOnStatus.DETACHED:
        raise Conflict(
            f"A {kind} add-on is already attached to {environment.name}.", "addon_exists"
        )
    existing.mark_creating()
    return existing


def _claim_env_var(environment, addon: AddOn) -> None:
    """The add-on's env var is written only where nothing else set it: a DATABASE_URL the
    user typed in, or one another add-on provides, is never overwritten."""
    url = addon.connection_url()
    var = environment.env_vars.filter(key=addon.env_var).first()
    if var is not None and var.value != url:
        other = _provider_of(environment, addon)
        raise Conflict(
            f"{addon.env_var} is already set in {environment.name}"
            + (f" by the {other.get_kind_display()} add-on" if other else "")
            + "; remove it first.",
            "env_var_taken",
        )
    var = var or EnvVar(environment=environment, key=addon.env_var)
    var.value = url
    var.full_clean(exclude=["environment"])
    var.save()


def _provider_of(environment, addon: AddOn) -> AddOn | None:
    return (
        AddOn.objects.filter(environment=environment)
        .exclude(pk=addon.pk)
        .exclude(status=AddOnStatus.DETACHED)
        .filter(kind__in=[k for k in AddOnKind.values if k != addon.kind])
        .first()
    )


# --- restart and detach ----------------------------------------------------------------------


def restart(addon: AddOn) -> AddOn:
    """running -> stopped -> running: the same container and volume, restarted."""
    try:
        addon.mark_stopped()
    except InvalidAddOnTransition:
        raise Conflict(
            f"The add-on is {addon.status}; only a running one restarts.", "not_running"
        ) from None
    _after_commit("restart_addon", addon.pk)
    return addon


def detach(addon: AddOn, delete_data: bool = False) -> AddOn:
    """The app loses its env var and the add-on its container. Its data volume and backups
    are kept (attach the same kind again to get them back) unless delete_data is given —
    the explicit confirmation that deletes them for good."""
    with transaction.atomic():
        locked = (
            AddOn.objects.select_for_update().select_related("environment__app").get(pk=addon.pk)
        )
        if locked.status == AddOnStatus.DELETING:
            raise Conflict("The add-on is already being deleted.", "addon_deleting")
        if locked.status == AddOnStatus.DETACHED and not delete_data:
            raise Conflict("The add-on is already detached; its data is kept.", "already_detached")
        _release_env_var(locked)
        if delete_data:
            locked.mark_deleting()
        else:
            locked.mark_detached()
        _after_commit("teardown_addon", locked.pk, delete_data)
    addon.refresh_from_db()
    return addon


def _release_env_var(addon: AddOn) -> None:
    # Only if it still points here: a value the user changed since is theirs.
    var = addon.environment.env_vars.filter(key=addon.env_var).first()
    if var is not None and var.value == addon.connection_url():
        var.delete()


# --- what the tasks do -----------------------------------------------------------------------


def _runtime(runtime=None):
    from deployments.adapters.runtime import get_runtime

    return runtime or get_runtime()


def provision(addon_id: int, runtime=None) -> str:
    """Start the add-on's container on its volume and wait until it accepts connections."""
    addon = AddOn.objects.select_related("environment__app").filter(pk=addon_id).first()
    if addon is None or addon.status != AddOnStatus.CREATING:
        return "skipped"  # a duplicate delivery, or detached meanwhile
    runtime = _runtime(runtime)
    app = addon.app
    try:
        runtime.ensure_network(app.network, app.resource_labels)
        runtime.ensure_volume(addon.volume, addon.labels)
        addon.container_id = runtime.start(addon_engines.container_spec(addon))
        AddOn.objects.filter(pk=addon.pk).update(container_id=addon.container_id)
        seconds = addon_engines.wait_ready(addon, runtime)
    except RuntimeBackendError as exc:
        _fail(addon, exc.code, exc.message, runtime)
        return "failed"
    _settle(addon, addon.mark_running, runtime)
    logger.info("add-on %s ready after %.1fs", addon, seconds)
    return "running"


def restart_container(addon_id: int, runtime=None) -> str:
    addon = AddOn.objects.select_related("environment__app").filter(pk=addon_id).first()
    if addon is None or addon.status != AddOnStatus.STOPPED:
        return "skipped"
    runtime = _runtime(runtime)
    try:
        if addon.container_id and runtime.is_running(addon.container_id):
            runtime.restart(addon.container_id)
        else:  # gone or dead: a fresh container on the same volume
            app = addon.app
            runtime.ensure_network(app.network, app.resource_labels)
            runtime.ensure_volume(addon.volume, addon.labels)
            addon.container_id = runtime.start(addon_engines.container_spec(addon))
            AddOn.objects.filter(pk=addon.pk).update(container_id=addon.container_id)
        addon_engines.wait_ready(addon, runtime)
    except RuntimeBackendError as exc:
        _fail(addon, exc.code, exc.message, runtime)
        return "failed"
    _settle(addon, addon.mark_running, runtime)
    return "running"


def teardown(addon_id: int, delete_data: bool, runtime=None) -> str:
    """Remove the container; with delete_data also the volume, the backups and the row."""
    addon = AddOn.objects.select_related("environment__app").filter(pk=addon_id).first()
    if addon is None:
        return "gone"
    if addon.status not in (AddOnStatus.DETACHED, AddOnStatus.DELETING):
        return "reattached"  # attached again before this ran: its new container stays
    runtime = _runtime(runtime)
    runtime.remove(addon.container_id or addon.container_name)
    if addon.status == AddOnStatus.DETACHED:
        return "detached"
    if not runtime.remove_volume(addon.volume):
        raise RuntimeError(f"volume {addon.volume} is still in use")
    from deployments.services.addon_backups import delete_backup_files

    delete_backup_files(addon)
    addon.delete()
    return "deleted"


def _fail(addon: AddOn, code: str, message: str, runtime) -> None:
    logger.warning("add-on %s failed: %s %s", addon, code, message)
    _settle(addon, partial(addon.mark_failed, code, message), runtime)


def _settle(addon: AddOn, move, runtime) -> None:
    """Record the outcome; if the add-on was detached meanwhile, and its teardown may have
    run before this container existed, remove the container here."""
    try:
        move()
    except InvalidAddOnTransition:
        if addon.container_id:
            runtime.remove(addon.container_id)
