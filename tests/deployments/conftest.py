"""Fixtures for tests that deploy on the real worker, dockerd and Caddy."""

import uuid

import docker
import pytest

from apps.models import App, Environment, EnvironmentName
from deployments import services
from tests.support import log_text, make_repo, sample_files, wait_final


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "live_app(name, sample='static'): what the live_app fixture deploys"
    )


def _live_app_options(name: str = "live", sample: str = "static") -> tuple[str, str]:
    return name, sample


@pytest.fixture
def live_app(request, platform, owner, tmp_path):
    """An app built from a sample in tests/samples and deployed once to production; app.repo
    is its repository, to commit to. A module picks the app's name (its URLs and routes say
    it) and the sample with pytestmark = pytest.mark.live_app("name", sample="python")."""
    marker = request.node.get_closest_marker("live_app")
    name, sample = (
        _live_app_options(*marker.args, **marker.kwargs) if marker else _live_app_options()
    )
    repo = make_repo(tmp_path / name, sample_files(sample))
    app = App.objects.create(name=name, owner=owner, repository=str(repo))
    Environment.create_for(app, EnvironmentName.STAGING)
    first = wait_final(services.queue_deployment(app, "production"))
    assert first.status == "succeeded", log_text(first)
    app.repo = repo
    return app


# --- image builds -----------------------------------------------------------------------------

# Every image the build tests make carries this label (their Dockerfiles set it).
TEST_LABEL = "slipway.test"


@pytest.fixture
def engine():
    client = docker.from_env()
    client.ping()  # no engine: the test fails here
    yield client
    client.close()


@pytest.fixture
def images(engine):
    """Tags for test images; every image built under one is removed afterwards."""
    tags: list[str] = []

    def new_tag(name: str) -> str:
        tags.append(f"slipway-test/{name}-{uuid.uuid4().hex[:8]}")
        return tags[-1]

    yield new_tag
    for tag in tags:
        try:
            engine.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
    engine.images.prune(filters={"dangling": True, "label": TEST_LABEL})
