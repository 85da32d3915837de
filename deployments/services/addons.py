"""Use cases for add-ons: attach, restart, detach (optionally deleting the data).

Rows and env vars change here, inside a transaction; containers and volumes are made and
removed by the jobs sent once it commits (deployments/workers/addons.py does them).
"""

import logging

from django.db import IntegrityError, transaction

from apps.models import App, EnvVar
from apps.models.addons import AddOn, AddOnKind, AddOnStatus, InvalidAddOnTransition
from deployments import jobs
from deployments.services import Conflict, ServiceError, environment_named
from deployments.services.quotas import check_quota

logger = logging.getLogger(__name__)


# --- attach ----------------------------------------------------------------------------------


def attach(app: App, environment_name: str, kind: str) -> AddOn:
    """Create the add-on (or bring a detached one back with its data) and point the app's
    env var at it. The app sees it from its next deployment or restart."""
    environment = environment_named(app, environment_name)
    if kind not in AddOnKind.values:
        raise ServiceError(
            f"Unknown add-on “{kind}”: use {', '.join(AddOnKind.values)}.", "invalid_kind"
        )
    if app.cleanup_requested:
        raise Conflict(f"App {app.name} is being deleted.", "app_deleting")
    try:
        with transaction.atomic():
            check_quota(app.owner, "addons")
            addon = _new_or_detached(environment, kind)
            _claim_env_var(environment, addon)
            jobs.provision_addon(addon.pk)
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
    if not existing.is_detached:
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
    jobs.restart_addon(addon.pk)
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
        jobs.teardown_addon(locked.pk, delete_data)
    addon.refresh_from_db()
    return addon


def _release_env_var(addon: AddOn) -> None:
    # Only if it still points here: a value the user changed since is theirs.
    var = addon.environment.env_vars.filter(key=addon.env_var).first()
    if var is not None and var.value == addon.connection_url():
        var.delete()
