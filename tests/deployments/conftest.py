"""Fixtures for tests that deploy on the real worker, dockerd and Caddy."""

import pytest

from apps.models import App
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
    first = wait_final(services.queue_deployment(app, "production"))
    assert first.status == "succeeded", log_text(first)
    app.repo = repo
    return app
