"""Helpers for the add-on tests: wait for an add-on, reach it from the test, and leave no
container, volume or backup file of this test instance behind."""

import contextlib
import shutil

import docker
import docker.errors
import pytest
from django.conf import settings

from apps.models.addons import AddOn
from deployments.adapters import addon_engines
from deployments.adapters.runtime.docker import DockerRuntime
from tests.support import remove_containers, wait_for

SETTLED = {"running", "failed", "detached"}


def wait_addon(addon, status: str = "running", timeout: float = 120) -> AddOn:
    def settled():
        current = AddOn.objects.filter(pk=addon.pk).first()
        return current if current is not None and current.status in SETTLED else None

    found = wait_for(settled, timeout, message=f"add-on {addon.pk} to settle")
    assert found.status == status, f"{found.status}: {found.error_code} {found.error_message}"
    return found


def endpoint(addon):
    return DockerRuntime().endpoint(addon.container_id, addon.app.network)


def connect(addon):
    return addon_engines.connect(addon, endpoint(addon), timeout=5)


def volume_exists(name: str) -> bool:
    try:
        docker.from_env().volumes.get(name)
        return True
    except docker.errors.NotFound:
        return False


@pytest.fixture
def addon_leftovers():
    """After the test: this instance's containers, then its volumes and backups, go.
    (Containers first: a volume in use cannot be removed.)"""
    yield
    client = docker.from_env()
    label = f"slipway.instance={settings.PAAS_INSTANCE}"
    remove_containers(label=label)
    for volume in client.volumes.list(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            volume.remove(force=True)
    shutil.rmtree(settings.PAAS_BACKUP_DIR / settings.PAAS_INSTANCE, ignore_errors=True)
