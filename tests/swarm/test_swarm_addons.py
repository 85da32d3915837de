"""Add-ons on Swarm: put on node 2 by the app's placement, pinned there (AddOn.node), and
backed up, browsed, restored and measured from the manager, through node 2's own engine
(PAAS_SWARM_NODE_ENGINES); lost, the warden brings it back on node 2 with its data.

Redis, not PostgreSQL: the same paths (readiness turns AOF on with an exec on node 2, the
dump is an exec there, the restore writes into its volume and restarts it, stop-first, on
its node), and an image a third of the size to push to the registry and pull on node 2.

Everything runs in this process on the lab (the swarm fixture's SwarmRuntime); the jobs the
use cases queue are kept in swarm.queued and run here by hand.
"""

import pytest

from apps.models import App
from apps.models.addons import AddOn
from deployments.adapters import addon_browser, addon_engines
from deployments.adapters.runtime.swarm import SwarmRuntime
from deployments.services import addon_backups
from deployments.services import addons as addon_services
from deployments.workers import addons, backups, warden
from tests.support import wait_for

from .conftest import NODE2_SOCKET

pytestmark = pytest.mark.django_db(transaction=True)

NODE2 = "slipway-node2"  # node 2's hostname (scripts/swarm-lab)


@pytest.fixture
def on_node2(swarm, registry, make_app, settings, tmp_path):
    """A running Redis add-on of app `stately`, whose placement names node 2; the manager
    reaches node 2's engine at its socket. Its data goes afterwards (on node 2)."""
    settings.PAAS_SWARM_NODE_ENGINES = {NODE2: NODE2_SOCKET}
    settings.PAAS_BACKUP_DIR = tmp_path / "backups"
    swarm.registry = registry  # node 2 pulls the add-on image from it
    app = make_app("stately", staging=False)
    App.objects.filter(pk=app.pk).update(placement=f"node.hostname=={NODE2}")
    addon = addon_services.attach(App.objects.get(pk=app.pk), "production", "redis")
    assert addons.provision(addon.pk, swarm) == "running", AddOn.objects.get(pk=addon.pk)
    addon = AddOn.objects.get(pk=addon.pk)
    try:
        yield addon
    finally:
        _delete_data(addon, swarm)


def _delete_data(addon: AddOn, runtime) -> None:
    AddOn.objects.filter(pk=addon.pk).update(status="deleting")
    # The volume can go once node 2 has removed the task's container (asynchronously).
    wait_for(
        lambda: _torn_down(addon.pk, runtime), 60, every=1, message="the add-on's volume to go"
    )


def _torn_down(addon_id: int, runtime) -> bool:
    try:
        return addons.teardown(addon_id, True, runtime) in ("deleted", "gone")
    except RuntimeError:  # its volume still in use
        return False


def _redis(addon: AddOn, runtime):
    addon = AddOn.objects.get(pk=addon.pk)  # its container now
    endpoint = runtime.endpoint(addon.container_id, addon.app.network)
    return addon_engines.connect(addon, endpoint)


def test_an_addon_on_node_2_is_pinned_browsed_backed_up_and_restored_from_the_manager(
    on_node2, swarm, lab
):
    addon = on_node2
    assert addon.node == lab.worker_node_id  # recorded: the data is there
    assert swarm.node_of(addon.container_id) == lab.worker_node_id
    placement = swarm.client.api.inspect_service(addon.container_id)["Spec"]["TaskTemplate"]
    assert placement["Placement"]["Constraints"] == [f"node.id=={lab.worker_node_id}"]
    assert lab.worker.volumes.get(addon.volume).attrs["Labels"]["slipway.addon"] == "redis"

    # The manager reaches it over the overlay (through the gateway) and browses it.
    _redis(addon, swarm).set("kept", "made on node 2")
    keys, _ = addon_browser.redis_keys(addon, "*", swarm)
    assert [key.key for key in keys] == ["kept"]
    assert swarm.stats(addon.container_id)["memory_bytes"] > 0  # metrics from node 2

    # Without node 2's engine, a dump cannot be made there: said so, nothing kept.
    blind = SwarmRuntime(client=swarm.client, registry=swarm.registry, node_engines={})
    refused = addon_backups.request_backup(addon)
    assert backups.run_backup(refused.pk, blind) == "failed"
    refused.refresh_from_db()
    assert f"add {NODE2}=ssh://" in refused.message and "PAAS_SWARM_NODE_ENGINES" in refused.message
    assert refused.file is None or not refused.file.exists()

    # A dump made on node 2 by its engine, streamed to the manager's backup directory.
    backup = addon_backups.request_backup(addon)
    assert backups.run_backup(backup.pk, swarm) == "succeeded"
    backup.refresh_from_db()
    assert b"made on node 2" in backup.file.read_bytes()

    _redis(addon, swarm).delete("kept")
    addon_backups.request_restore(backup)
    assert backups.run_restore(backup.pk, swarm) == "succeeded"  # a restart, on node 2
    assert _redis(addon, swarm).get("kept") == b"made on node 2"
    assert swarm.node_of(addon.container_id) == lab.worker_node_id


def test_a_lost_addon_comes_back_on_its_node_with_its_data(on_node2, swarm, lab):
    addon = on_node2
    _redis(addon, swarm).set("kept", "still here")
    # Its app's tasks go elsewhere now; the add-on stays with its data (AddOn.node).
    App.objects.filter(pk=addon.app.pk).update(placement=f"node.hostname!={NODE2}")
    # Its service goes (as after an operator's `docker service rm`): the warden's round
    # finds it not running and queues its restart, which starts it on node 2 again.
    swarm.client.api.remove_service(addon.container_id)
    old_task = {"label": f"com.docker.swarm.service.id={addon.container_id}"}
    wait_for(
        lambda: not lab.worker.containers.list(all=True, filters=old_task),
        60,
        message="node 2 to remove the old task's container",
    )
    assert warden.revive_addons(swarm) == 1
    assert ("restart_addon", addon.pk) in swarm.queued
    assert addons.restart_container(addon.pk, swarm) == "running"

    back = AddOn.objects.get(pk=addon.pk)
    assert back.container_id != addon.container_id
    assert back.node == lab.worker_node_id
    assert swarm.node_of(back.container_id) == lab.worker_node_id
    assert _redis(back, swarm).get("kept") == b"still here"
