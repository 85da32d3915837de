"""The git source: what users may type, and fetching real repositories (local and HTTP)."""

import base64
import http.server
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from deployments.adapters.sources import (
    SourceError,
    fetch,
    redact,
    validate_branch,
    validate_repository_url,
)

PWNED = Path("/tmp/pwned")


@pytest.fixture(autouse=True)
def no_local_repos(settings):
    """Production's default, whatever the test environment says."""
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = False


@pytest.fixture
def local_repos(settings):
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = True


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _commit(repo: Path, name: str, content: str, message: str) -> str:
    (repo / name).write_text(content)
    _git(repo, "add", name)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path):
    """A repository whose default branch is `trunk`, with two commits and a feature branch."""
    repo = tmp_path / "origin"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "trunk")
    first = _commit(repo, "app.txt", "one\n", "First commit")
    second = _commit(repo, "app.txt", "two\n", "Second commit\n\nWith a body.")
    _git(repo, "checkout", "-q", "-b", "feature")
    feature = _commit(repo, "feature.txt", "f\n", "Feature work")
    _git(repo, "checkout", "-q", "trunk")
    return {"path": repo, "first": first, "second": second, "feature": feature}


# --- repository URLs --------------------------------------------------------------------

ACCEPTED_URLS = [
    "https://github.com/owner/repo.git",
    "https://github.com/owner/repo",
    "https://gitlab.example.com:8443/group/subgroup/repo.git",
    "https://[2001:db8::1]/owner/repo.git",
    "ssh://git@github.com/owner/repo.git",
    "ssh://git@git.example.com:2222/owner/repo.git",
    "ssh://git.example.com/srv/git/repo.git",
    "git@github.com:owner/repo.git",
    "deploy.user_1@git.example.com:team/repo",
]


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_it_accepts_remote_repository_urls(url):
    assert validate_repository_url(url) == url


def test_it_normalizes_whitespace_around_and_host_case():
    url = "  https://GitHub.com/Owner/Repo.git \n"
    assert validate_repository_url(url) == "https://github.com/Owner/Repo.git"


REFUSED_URLS = [
    ("http://github.com/owner/repo.git", "https://"),
    ("ext::sh -c touch% /tmp/pwned", ""),
    ("ext::sh", "remote helper"),
    ("fd::3", "remote helper"),
    ("https://user:secret@github.com/owner/repo.git", "token"),
    ("https://ghp_abcdef@github.com/owner/repo.git", "token"),
    ("ssh://git:secret@github.com/owner/repo.git", "token"),
    ("https://-oProxyCommand=touch%20x/owner/repo", "host"),
    ("ssh://-oProxyCommand=touch/owner/repo", "host"),
    ("git@-oProxyCommand=touch:owner/repo", "host"),
    ("-u@host:owner/repo", "start with"),
    ("--upload-pack=touch /tmp/pwned", ""),
    ("git@github.com:-owner/repo", "start with"),
    ("git@github.com:owner/--upload-pack=x", "start with"),
    ("https://github.com/-owner/repo", "start with"),
    ("git@github.com:/srv/repo.git", "ssh://"),
    ("https://github.com/", "path"),
    ("https://github.com/owner/repo?x=1", "query"),
    ("https://github.com/owner/repo#main", "fragment"),
    ("https://github.com/owner/re po", "spaces"),
    ("https://github.com/owner/repo\n.git", "control"),
    ("https://github.com/owner/\x00repo", "control"),
    ("https://github.com/owner\trepo", "spaces"),
    ("https://gith_ub.com/owner/repo", "host"),
    ("https://github.com:99999/owner/repo", "port"),
    ("git://github.com/owner/repo.git", "https://"),
    ("ftp://example.com/repo.git", "https://"),
    ("github.com/owner/repo", "https://"),
    ("file:///etc", "Local"),
    ("/tmp", "Local"),
    ("../repo", "https://"),
    ("", "required"),
    ("https://github.com/" + "a" * 490, "500"),
]


@pytest.mark.parametrize("url,hint", REFUSED_URLS)
def test_it_refuses_unsafe_or_unsupported_urls(url, hint):
    with pytest.raises(ValidationError) as info:
        validate_repository_url(url)
    assert hint.lower() in " ".join(info.value.messages).lower()


def test_it_refuses_http_and_says_why():
    with pytest.raises(ValidationError) as info:
        validate_repository_url("http://example.com/owner/repo.git")
    assert "unencrypted" in info.value.messages[0]


def test_it_accepts_local_repositories_only_when_allowed(settings, tmp_path):
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = True
    assert validate_repository_url(str(tmp_path)) == str(tmp_path)
    assert validate_repository_url(f"file://{tmp_path}") == f"file://{tmp_path}"
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = False
    for url in (str(tmp_path), f"file://{tmp_path}"):
        with pytest.raises(ValidationError):
            validate_repository_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "file:///does/not/exist",
        "/does/not/exist",
        "file://host/srv/repo",
        "relative/path",
        "file:///tmp/-repo",
    ],
)
def test_it_refuses_bad_local_repositories_even_when_allowed(local_repos, url):
    with pytest.raises(ValidationError):
        validate_repository_url(url)


# --- branches ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "main", "feature/login", "release-1.2", "v2_fix"])
def test_it_accepts_branch_names(name):
    assert validate_branch(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "--upload-pack=touch /tmp/pwned",
        "-b",
        "a b",
        "feature..x",
        "ends.lock",
        "ends/",
        "ha~1",
        "what?",
        "star*",
        "colon:x",
        "@{-1}",
        "@",
        "nul\x00byte",
        "tab\tname",
        "x" * 256,
    ],
)
def test_it_refuses_bad_branch_names(name):
    existed = PWNED.exists()
    with pytest.raises(ValidationError):
        validate_branch(name)
    assert PWNED.exists() == existed


def test_fetch_refuses_an_option_as_branch_before_running_git(monkeypatch, tmp_path, origin):
    marker = tmp_path / "pwned"
    ran = []
    monkeypatch.setattr("git.cmd.Git.execute", lambda *a, **k: ran.append(a))
    for branch in ("--upload-pack=touch /tmp/pwned", f"--upload-pack=touch {marker}"):
        existed = PWNED.exists()
        with pytest.raises(SourceError) as info:
            fetch(str(origin["path"]), branch, tmp_path / "dest")
        assert info.value.code == "invalid_branch"
        assert info.value.user_fault
        assert PWNED.exists() == existed
    assert ran == []
    assert not marker.exists()
    assert not (tmp_path / "dest").exists()


def test_fetch_refuses_a_malformed_commit_id(local_repos, tmp_path, origin):
    with pytest.raises(SourceError) as info:
        fetch(str(origin["path"]), "", tmp_path / "dest", commit_sha="--upload-pack=x")
    assert info.value.code == "invalid_commit"


# --- fetching ---------------------------------------------------------------------------


def test_it_fetches_the_default_branch_and_reports_its_name(local_repos, tmp_path, origin):
    lines = []
    got = fetch(str(origin["path"]), "", tmp_path / "dest", log=lines.append)
    assert got.branch == "trunk"
    assert got.commit_sha == origin["second"]
    assert got.commit_message == "Second commit"
    assert got.path == tmp_path / "dest"
    assert (got.path / "app.txt").read_text() == "two\n"
    assert _git(got.path, "rev-list", "--count", "HEAD") == "1"  # shallow
    assert lines[0].startswith(f"Cloning {origin['path']} (default branch)")
    assert lines[-1] == f"Checked out {origin['second'][:7]}: Second commit"


def test_it_fetches_a_named_branch_over_file_url(local_repos, tmp_path, origin):
    got = fetch(f"file://{origin['path']}", "feature", tmp_path / "dest", log=lambda _: None)
    assert (got.branch, got.commit_sha) == ("feature", origin["feature"])
    assert (got.path / "feature.txt").exists()


def test_it_pins_an_older_commit(local_repos, tmp_path, origin):
    (tmp_path / "dest").mkdir()  # an empty destination is fine
    got = fetch(
        f"file://{origin['path']}",
        "trunk",
        tmp_path / "dest",
        commit_sha=origin["first"],
        log=lambda _: None,
    )
    assert got.commit_sha == origin["first"]
    assert got.commit_message == "First commit"
    assert (got.path / "app.txt").read_text() == "one\n"


def test_it_accepts_the_short_id_of_the_branch_head(local_repos, tmp_path, origin):
    got = fetch(
        str(origin["path"]), "", tmp_path / "dest", commit_sha=origin["second"][:7], log=print
    )
    assert got.commit_sha == origin["second"]


def test_a_missing_branch_is_a_user_fault_and_leaves_nothing(local_repos, tmp_path, origin):
    with pytest.raises(SourceError) as info:
        fetch(str(origin["path"]), "nope", tmp_path / "dest", log=lambda _: None)
    assert (info.value.code, info.value.user_fault) == ("branch_not_found", True)
    assert "nope" in str(info.value)
    assert not (tmp_path / "dest").exists()


def test_a_missing_commit_is_reported(local_repos, tmp_path, origin):
    with pytest.raises(SourceError) as info:
        fetch(str(origin["path"]), "", tmp_path / "dest", commit_sha="ab" * 20, log=print)
    assert info.value.code == "commit_not_found"


def test_a_missing_repository_is_reported(local_repos, tmp_path):
    with pytest.raises(SourceError) as info:
        fetch(str(tmp_path / "nothing-here"), "", tmp_path / "dest", log=lambda _: None)
    assert (info.value.code, info.value.user_fault) == ("repository_not_found", True)


def test_it_refuses_a_destination_with_files(local_repos, tmp_path, origin):
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError):
        fetch(str(origin["path"]), "", tmp_path / "dest", log=lambda _: None)
    assert (tmp_path / "dest" / "keep.txt").read_text() == "mine"


def test_local_repositories_are_refused_by_git_when_not_allowed(settings, tmp_path, origin):
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = False
    with pytest.raises(SourceError) as info:
        fetch(f"file://{origin['path']}", "", tmp_path / "dest", log=lambda _: None)
    assert info.value.code == "invalid_repository"


# --- tokens -----------------------------------------------------------------------------


class _AuthRecorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with 401, remembering the Authorization header it got."""

    seen: list = []

    def do_GET(self):
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def auth_server():
    _AuthRecorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_git_may_speak_only_https_and_ssh(auth_server, tmp_path):
    # Without local repositories allowed, plain http (like git://, file and ext) is not
    # a protocol git will use: the loopback server never hears from it.
    url = f"http://127.0.0.1:{auth_server.server_port}/owner/repo.git"
    with pytest.raises(SourceError) as info:
        fetch(url, "main", tmp_path / "dest", log=print)
    assert info.value.code == "invalid_repository"
    assert _AuthRecorder.seen == []


def test_a_token_goes_in_a_header_and_never_into_logs_or_errors(
    local_repos, auth_server, tmp_path, caplog
):
    token = "ghp_s3cr3tT0ken"
    url = f"http://127.0.0.1:{auth_server.server_port}/owner/private.git"
    lines = []
    with pytest.raises(SourceError) as info:
        fetch(url, "main", tmp_path / "dest", token=token, log=lines.append)

    expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert expected in _AuthRecorder.seen
    assert (info.value.code, info.value.user_fault) == ("auth_failed", True)
    shown = " ".join([*lines, str(info.value), repr(info.value.args), caplog.text])
    assert token not in shown
    assert expected.split()[1] not in shown


def test_a_gitlab_token_uses_the_oauth2_user(local_repos, auth_server, tmp_path):
    url = f"http://127.0.0.1:{auth_server.server_port}/group/private.git"
    with pytest.raises(SourceError):
        fetch(url, "", tmp_path / "dest", token="glpat-xyz", token_user="oauth2", log=print)

    assert "Basic " + base64.b64encode(b"oauth2:glpat-xyz").decode() in _AuthRecorder.seen


class _Silent(http.server.BaseHTTPRequestHandler):
    """Accepts the request and never answers in time."""

    def do_GET(self):
        time.sleep(5)

    def log_message(self, *args):
        pass


def test_a_fetch_that_hangs_is_killed_and_is_a_platform_fault(local_repos, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as info:
            url = f"http://127.0.0.1:{server.server_port}/slow.git"
            fetch(url, "main", tmp_path / "dest", token="tok-hang", timeout=1, log=print)
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 4
    assert (info.value.code, info.value.user_fault) == ("clone_failed", False)
    assert "tok-hang" not in str(info.value)


def test_redact_hides_secrets_and_url_credentials():
    text = "fatal: https://user:hunter2@example.com/r.git failed with tok123 and tok123"
    assert redact(text, ["tok123", ""]) == (
        "fatal: https://***@example.com/r.git failed with *** and ***"
    )
