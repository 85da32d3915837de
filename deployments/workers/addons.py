"""What the add-on tasks do: start, restart and remove add-on containers and volumes.

The use cases (deployments/services/addons.py) change rows inside a transaction and send
these jobs once it commits; each first re-reads the row and does nothing if it moved on.
"""

import logging
from functools import partial

from apps.models.addons import AddOn, AddOnStatus, InvalidAddOnTransition
from deployments.adapters import addon_engines
from deployments.adapters.runtime import RuntimeBackendError
from deployments.workers.backups import delete_backup_files
from deployments.workers.networks import ensure_app_network

logger = logging.getLogger(__name__)


def provision(addon_id: int, runtime) -> str:
    """Start the add-on's container on its volume and wait until it accepts connections."""
    addon = AddOn.objects.select_related("environment__app").filter(pk=addon_id).first()
    if addon is None or addon.status != AddOnStatus.CREATING:
        return "skipped"  # a duplicate delivery, or detached meanwhile
    try:
        start_container(addon, runtime)
        seconds = addon_engines.wait_ready(addon, runtime)
    except RuntimeBackendError as exc:
        _fail(addon, exc.code, exc.message, runtime)
        return "failed"
    _settle(addon, addon.mark_running, runtime)
    logger.info("add-on %s ready after %.1fs", addon, seconds)
    return "running"


def restart_container(addon_id: int, runtime) -> str:
    addon = AddOn.objects.select_related("environment__app").filter(pk=addon_id).first()
    if addon is None or addon.status != AddOnStatus.STOPPED:
        return "skipped"
    try:
        if addon.container_id and runtime.is_running(addon.container_id):
            runtime.restart(addon.container_id)
        else:  # gone or dead: a fresh container on the same volume (and node)
            start_container(addon, runtime)
        addon_engines.wait_ready(addon, runtime)
    except RuntimeBackendError as exc:
        _fail(addon, exc.code, exc.message, runtime)
        return "failed"
    _settle(addon, addon.mark_running, runtime)
    return "running"


def start_container(addon: AddOn, runtime) -> None:
    """Its container on its volume; on Swarm, the node it lands on first is recorded and
    every later container goes there (AddOn.placement_constraints)."""
    ensure_app_network(addon.app, runtime)
    runtime.ensure_volume(addon.volume, addon.labels)
    addon.container_id = runtime.start(addon_engines.container_spec(addon))
    AddOn.objects.filter(pk=addon.pk).update(container_id=addon.container_id)
    addon.pin_to(runtime.node_of(addon.container_id))


def teardown(addon_id: int, delete_data: bool, runtime) -> str:
    """Remove the container; with delete_data also the volume, the backups and the row."""
    addon = AddOn.objects.select_related("environment__app").filter(pk=addon_id).first()
    if addon is None:
        return "gone"
    if addon.status not in (AddOnStatus.DETACHED, AddOnStatus.DELETING):
        return "reattached"  # attached again before this ran: its new container stays
    runtime.remove(addon.container_id or addon.container_name)
    if addon.status == AddOnStatus.DETACHED:
        return "detached"
    if not runtime.remove_volume(addon.volume):
        raise RuntimeError(f"volume {addon.volume} is still in use")
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
