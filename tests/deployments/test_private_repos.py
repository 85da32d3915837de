"""A private repository deploys with the owner's provider token, and the token appears in
no log line, no error and no stored field."""

import pytest

from apps.models import App
from apps.models.providers import ProviderCredential
from deployments import services
from deployments.models import Deployment, LogLine
from tests.githttp import PrivateGitServer
from tests.support import git, make_repo, sample_files, through_proxy, wait_final

TOKEN = "ghp_privateT0kenThatMustNeverShow"


@pytest.fixture
def private_server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    work = make_repo(tmp_path / "work", sample_files("static"))
    git(root, "clone", "-q", "--bare", str(work), "site.git")
    server = PrivateGitServer(root, TOKEN)
    yield server
    server.close()


def _connect(owner, server):
    ProviderCredential.objects.create(
        user=owner,
        provider="github",
        web_url=server.url,
        api_url=server.url,
        account_id="1",
        login="alice",
        access_token=TOKEN,
    )


def _token_anywhere(deployment) -> list[str]:
    texts = list(LogLine.objects.filter(deployment=deployment).values_list("text", flat=True))
    d = Deployment.objects.get(pk=deployment.pk)
    texts += [d.error_message, str(d.step_data), d.commit_message]
    return [t for t in texts if TOKEN in t]


def test_a_private_repository_deploys_with_the_owners_token(platform, owner, private_server):
    _connect(owner, private_server)
    app = App.objects.create(
        name="private", owner=owner, repository=f"{private_server.url}/site.git"
    )
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", deployment.error_message
    assert private_server.expected in private_server.seen_auth
    assert _token_anywhere(deployment) == []
    assert "static says hello" in through_proxy(app.environment("production").hostname).text


def test_without_the_token_the_clone_fails_cleanly_and_says_nothing_secret(
    platform, owner, private_server
):
    app = App.objects.create(
        name="nocreds", owner=owner, repository=f"{private_server.url}/site.git"
    )
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "failed"
    assert deployment.error_code in ("auth_failed", "repository_not_found"), deployment.error_code
    assert _token_anywhere(deployment) == []
