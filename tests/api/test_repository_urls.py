"""Repository URLs on create and PATCH: a host that no parser takes is a 400, and a host on
a non-public address is refused (as notification targets are)."""

import pytest

from apps.models import App

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_local_repos(settings):
    """Production's default: with local repositories allowed the address check is off."""
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = False


def _field_error(response) -> str:
    assert response.status_code == 400, response.content
    return str(response.json())


@pytest.mark.parametrize("url", ["ssh://[-oX]/y", "https://[not-an-ip]/owner/repo.git"])
def test_a_bracketed_host_that_is_no_address_is_a_400(api, make_app, url):
    assert "[IPv6]" in _field_error(api.post("/apps", {"name": "brackets", "repository": url}))
    make_app("shop")
    assert "[IPv6]" in _field_error(api.patch("/apps/shop", {"repository": url}))
    assert not App.objects.filter(name="brackets").exists()


@pytest.mark.parametrize(
    "url, address",
    [
        ("https://127.0.0.1/owner/repo.git", "loopback"),
        ("ssh://git@10.1.2.3/owner/repo.git", "private"),
        ("git@169.254.169.254:owner/repo.git", "link-local"),
        ("https://[::1]/owner/repo.git", "loopback"),
        ("https://localhost/owner/repo.git", "loopback"),
    ],
)
def test_a_repository_on_a_non_public_address_is_refused(api, settings, url, address):
    assert address in _field_error(api.post("/apps", {"name": "inside", "repository": url}))
    assert not App.objects.filter(name="inside").exists()
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = True  # development: the check is off
    assert api.post("/apps", {"name": "inside", "repository": url}).status_code == 201
