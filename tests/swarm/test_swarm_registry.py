"""Slipway's registry on the lab: an image only the manager has reaches node 2 by digest.

The registry is Debian's docker-registry run by `scripts/services registry` on the lab's
manager address, with the certificate, password and config `paas_registry_config` makes.
"""

import io
import uuid

import pytest
import requests

from tests.support import log_text

from .conftest import LAB_LABEL, REGISTRY_ADDRESS, answering, deploy, make_swarm_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def manager_only_image(lab):
    """An image built on the manager (a label of its own makes its id new): node 2 has not
    got it."""
    dockerfile = f"FROM slipway/static:bookworm\nLABEL {LAB_LABEL}=1 build={uuid.uuid4().hex}\n"
    image, _ = lab.manager.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
    image.tag("slipwaytest/swarmy", "1")
    assert not any(i.id == image.id for i in lab.worker.images.list())
    yield image
    for engine in lab.engines():
        for found in engine.images.list(filters={"label": LAB_LABEL}):
            try:
                engine.images.remove(found.id, force=True)
            except Exception:  # noqa: BLE001 - gone already
                pass


def test_an_image_only_the_manager_has_runs_on_both_nodes_pulled_by_digest(
    swarm, registry, manager_only_image, make_app, lab
):
    swarm.registry = registry
    app = make_swarm_app(make_app, manager_only_image.id)
    d = deploy(app, swarm)
    assert d.status == "succeeded", log_text(d)
    assert len(answering(app)) == 2

    images = {
        swarm.client.api.inspect_service(service)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        for service in d.web_containers
    }
    (reference,) = images
    assert reference.startswith(f"{REGISTRY_ADDRESS}/slipwaytest/swarmy@sha256:"), reference
    assert registry.has(reference)
    assert any(reference in (i.attrs.get("RepoDigests") or []) for i in lab.worker.images.list())

    # The pushed image goes from the registry with the local one (retention: prune_images).
    for service in d.web_containers:
        swarm.remove(service)
    assert swarm.remove_image("slipwaytest/swarmy:1")
    assert not registry.has(reference)


def test_the_registry_wants_the_password_and_its_own_certificate(registry, lab):
    assert registry.ping() == 200
    assert registry.ping(authenticated=False) == 401
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            f"https://{REGISTRY_ADDRESS}/v2/", timeout=5
        )  # the system's CAs do not know it
    assert (registry.directory / "password").stat().st_mode & 0o077 == 0


def test_without_a_registry_a_node_that_lacks_the_image_fails_the_deployment_saying_so(
    swarm, manager_only_image, make_app, lab
):
    swarm.registry = None
    app = make_swarm_app(make_app, manager_only_image.id)
    d = deploy(app, swarm)
    assert d.status == "failed", log_text(d)
    assert d.error_code == "image_missing", log_text(d)
    assert "No such image" in d.error_message
