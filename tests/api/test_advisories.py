"""The peers' published advisories, each as a named test against Slipway's own entry points
(issue 17): the same attack, sent the way a user would send it, is refused with a clear
error and changes nothing.

- Coolify GHSA-mw5w-2vvh-mgf4: a git ref that git reads as an option.
- Dokploy CVE-2026-27130, CVE-2026-45628, Dokku CVE-2026-45408: shell metacharacters in an
  app name, a branch, a repository URL.
- GitPython CVE-2022-24439: the `ext::` transport runs a command.
- git CVE-2017-1000117: `ssh://-oProxyCommand=…` makes ssh run a command.
- Dokku PR #8591: an uploaded archive whose symlink points outside the tree.
- Coolify CVE-2026-48742: a user reaches another tenant's objects by id (IDOR).
- Portainer CVE-2026-44848: an operation that forgot to ask who is calling.

Tokens in logs (Coolify #10767, Dokploy #5354) are tests/deployments/test_private_repos.py
(a real private git server: the clone's token is in no log, error or argv).
"""

import tempfile
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.models import App
from deployments.adapters.sources import SourceError, fetch
from deployments.adapters.sources.archive import extract_archive
from deployments.adapters.sources.git import validate_branch
from tests.api.test_token_scopes import OPERATIONS, _call, _writes
from tests.conftest import ApiClient
from tests.deployments.test_archives import MAX_BYTES, MAX_ENTRIES, file, make_archive, symlink
from tests.support import make_repo

pytestmark = pytest.mark.django_db

REPO = "https://example.com/acme/demo.git"


def _create(api, **fields):
    return api.post("/apps", {"name": "victim", "repository": REPO, **fields})


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not App.objects.filter(name="victim").exists()


@pytest.mark.parametrize(
    "branch",
    [
        "--upload-pack=touch /tmp/pwned",
        "-c core.sshCommand=touch /tmp/pwned",
        "--output=/tmp/pwned",
        "main@{-1}",
        "refs/heads/../../etc",
        "main\x00--exec",
    ],
)
def test_coolify_ghsa_mw5w_2vvh_mgf4_a_ref_git_would_read_as_an_option_is_refused(api, branch):
    _refused(_create(api, branch=branch), "branch")


@pytest.mark.parametrize(
    "name", ["a;id", "a$(id)", "a`id`", "a|id", "../etc", "a b", "a&&id", "-rf", "A\nB"]
)
def test_dokploy_cve_2026_27130_shell_metacharacters_in_an_app_name_are_refused(api, name):
    response = api.post("/apps", {"name": name, "repository": REPO})
    assert response.status_code == 400, response.content
    assert "name" in response.json()["error"]["fields"]
    assert App.objects.count() == 0


@pytest.mark.parametrize("payload", ["main;id>{m}", "main$(id>{m})", "main`id>{m}`", "main|id>{m}"])
def test_dokku_cve_2026_45408_a_branch_with_shell_metacharacters_runs_nothing(tmp_path, payload):
    """git allows these characters in a branch name, so Slipway keeps them, as data: the
    branch goes to git in argv, never through a shell, and the clone just finds no such
    branch."""
    marker = Path(tempfile.mkdtemp(prefix="slw-advisory-")) / "pwned"
    branch = payload.format(m=marker)
    assert validate_branch(branch) == branch
    repo = make_repo(tmp_path / "repo", {"index.html": "hello"})
    with pytest.raises(SourceError):
        fetch(str(repo), branch, tmp_path / "clone", log=lambda _line: None)
    assert not marker.exists()
    marker.parent.rmdir()


@pytest.mark.parametrize(
    "repository",
    [
        "--upload-pack=touch /tmp/pwned",
        "-u touch /tmp/pwned https://example.com/a.git",
        "https://example.com/a.git\n--upload-pack=x",
        "https://example.com/a.git --upload-pack=x",
        "https://example.com/a.git\x00",
    ],
)
def test_dokploy_cve_2026_45628_an_injected_repository_url_is_refused(api, repository):
    """What would reach git as an option or a second argument is refused. (`;`, `$()` and
    backticks inside a URL's path stay data: git gets the URL in argv, never a shell.)"""
    _refused(api.post("/apps", {"name": "victim", "repository": repository}), "repository")


@pytest.mark.parametrize(
    "repository", ["ext::sh -c touch% /tmp/pwned", "EXT::sh -c id", "fd::17", "transport::x"]
)
def test_gitpython_cve_2022_24439_remote_helpers_such_as_ext_are_refused(api, repository):
    _refused(api.post("/apps", {"name": "victim", "repository": repository}), "repository")


@pytest.mark.parametrize(
    "repository",
    [
        "ssh://-oProxyCommand=touch%20/tmp/pwned/x",
        "ssh://-oProxyCommand=touch /tmp/pwned/x",
        "-oProxyCommand=touch /tmp/pwned:x",
        "git@-oProxyCommand=id:x.git",
    ],
)
def test_git_cve_2017_1000117_an_ssh_host_that_is_an_option_is_refused(api, repository):
    _refused(api.post("/apps", {"name": "victim", "repository": repository}), "repository")


@pytest.mark.parametrize("target", ["/etc/passwd", "../../etc", "../outside"])
def test_dokku_pr_8591_an_archive_symlink_out_of_the_tree_is_refused(tmp_path, target):
    archive = make_archive(tmp_path / "x.tgz", file("index.html"), symlink("link", target))
    dest = tmp_path / "src"
    with pytest.raises(SourceError) as refused:
        extract_archive(archive, dest, MAX_BYTES, MAX_ENTRIES)
    assert "link" in str(refused.value.message)
    assert not dest.exists() or not any(dest.iterdir())  # nothing written


# Every operation with a path parameter names an object: another tenant's is 404 (as if it
# did not exist) and no write reaches the database. The walk is the OpenAPI document's, so a
# new operation is covered the day it is added.
SCOPED = [op for op in OPERATIONS if "{" in op[1]]


def _ids(op) -> str:
    return " ".join(op)


def _missing(path_values: dict) -> dict:
    """The same parameters naming objects that do not exist."""
    return {
        key: 999999
        if isinstance(value, int)
        else "www.nosuch.example"
        if key == "hostname"
        else "nosuch"
        for key, value in path_values.items()
    }


@pytest.mark.parametrize("operation", SCOPED, ids=_ids)
def test_coolify_cve_2026_48742_another_tenants_objects_are_404_by_every_id(
    operation, outsider_api, path_values
):
    """404, as if it did not exist. An empty body may be refused first (400, the required
    fields): then exactly as for an object that does not exist, so nothing leaks."""
    method, path = operation
    with CaptureQueriesContext(connection) as queries:
        response = _call(outsider_api, method, path, path_values)
    assert response.status_code in (400, 404), (operation, response.status_code, response.content)
    if response.status_code == 400:
        nowhere = _call(outsider_api, method, path, _missing(path_values))
        assert (nowhere.status_code, nowhere.content) == (400, response.content), operation
    # The outsider's own token records its use; nothing else is written.
    assert [q for q in _writes(queries) if '"apps_apitoken"' not in q] == [], operation


@pytest.mark.parametrize("operation", OPERATIONS, ids=_ids)
def test_portainer_cve_2026_44848_every_operation_asks_who_is_calling(operation, path_values):
    method, path = operation
    with CaptureQueriesContext(connection) as queries:
        response = _call(ApiClient(), method, path, path_values)
    assert response.status_code == 401, (operation, response.status_code)
    assert _writes(queries) == [], operation


def test_portainer_cve_2026_44848_a_token_that_is_no_token_is_refused_too(path_values):
    for method, path in [op for op in OPERATIONS if op[0] != "GET"][:10]:
        response = _call(ApiClient(raw_token="slw_not-a-token"), method, path, path_values)
        assert response.status_code == 401, (method, path, response.status_code)
