"""Volumes are named by their row's id on the real engine: app shop's volume
"production-data" and app shop-production's volume "data" (one Docker name when names were
composed) are two volumes, and a volume or network whose labels name another app is refused
rather than mounted or joined."""

import docker
import docker.errors
import pytest
from django.conf import settings

from apps.models import Volume
from deployments import wiring
from deployments.adapters.runtime import ForeignObject
from deployments.services import domains
from tests.apps.addon_helpers import addon_leftovers  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("addon_leftovers")]


def _shell(volume: str, script: str) -> str:
    """Run `script` in a throwaway container with `volume` at /v; its output."""
    output = docker.from_env().containers.run(
        settings.PAAS_BASE_IMAGES["static"],
        ["-c", script],
        entrypoint="sh",
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        labels={"slipway.instance": settings.PAAS_INSTANCE},
        remove=True,
    )
    return output.decode().strip()


def test_shop_and_shop_production_get_volumes_of_their_own(make_app):
    shop, shop_production = make_app("shop"), make_app("shop-production")
    mine = domains.add_volume(shop, "production", "production-data", "/data")
    theirs = domains.add_volume(shop_production, "production", "data", "/data")
    assert mine.docker_name == f"{settings.PAAS_INSTANCE}-vol-{mine.pk}"
    assert mine.docker_name != theirs.docker_name
    assert Volume.objects.get(pk=mine.pk).docker_name == mine.docker_name

    runtime = wiring.runtime()
    runtime.ensure_volume(mine.docker_name, shop.resource_labels)
    runtime.ensure_volume(theirs.docker_name, shop_production.resource_labels)
    _shell(mine.docker_name, "echo shop-secret > /v/secret")
    assert _shell(theirs.docker_name, "cat /v/secret 2>/dev/null || echo none") == "none"
    assert _shell(mine.docker_name, "cat /v/secret") == "shop-secret"


def test_a_volume_or_network_labelled_for_another_app_is_refused(make_app):
    shop = make_app("shop")
    volume = domains.add_volume(shop, "production", "production-data", "/data")
    client = docker.from_env()
    foreign = {"slipway.instance": settings.PAAS_INSTANCE, "slipway.app": "shop-production"}
    client.volumes.create(name=volume.docker_name, labels=foreign)
    runtime = wiring.runtime()
    with pytest.raises(ForeignObject) as refused:
        runtime.ensure_volume(volume.docker_name, shop.resource_labels)
    assert "shop-production" in refused.value.message
    assert refused.value.code == "engine_object_taken"

    network = client.networks.create(shop.network, driver="bridge", labels=foreign)
    try:
        with pytest.raises(ForeignObject):
            runtime.ensure_network(shop.network, shop.resource_labels)
    finally:
        network.remove()
