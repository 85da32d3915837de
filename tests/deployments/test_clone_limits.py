"""PAAS_CLONE_MAX_BYTES: a fetch whose directory grows past it is stopped, fails with
source_too_large and leaves nothing; a smaller repository fetches as before."""

import os
import subprocess
import sys

import pytest

from deployments.adapters.sources import SourceError, fetch
from deployments.adapters.sources.size_watch import SizeWatch, directory_size
from tests.githttp import PrivateGitServer
from tests.support import git, make_repo, wait_for

TOKEN = "clone-limit-token"
MIB = 1024 * 1024


@pytest.fixture
def served(tmp_path, settings):
    """A repository with a 4 MiB file that does not compress, behind the git HTTP server."""
    settings.PAAS_ALLOW_LOCAL_REPOSITORIES = True
    work = make_repo(tmp_path / "work", {"README": "small\n"})
    (work / "blob.bin").write_bytes(os.urandom(4 * MIB))
    git(work, "add", "blob.bin")
    git(work, "commit", "-q", "-m", "Add a big file")
    root = tmp_path / "srv"
    root.mkdir()
    git(root, "clone", "-q", "--bare", str(work), "big.git")
    server = PrivateGitServer(root, TOKEN)
    yield f"{server.url}/big.git"
    server.close()


def test_a_repository_over_the_limit_fails_with_source_too_large_and_leaves_nothing(
    served, tmp_path, settings
):
    settings.PAAS_CLONE_MAX_BYTES = 1 * MIB
    dest = tmp_path / "dest"

    with pytest.raises(SourceError) as info:
        fetch(served, "", dest, token=TOKEN, log=lambda _: None)

    assert (info.value.code, info.value.user_fault) == ("source_too_large", True)
    assert "1 MiB" in info.value.message and "PAAS_CLONE_MAX_BYTES" in info.value.message
    assert not dest.exists()


def test_a_repository_under_the_limit_fetches(served, tmp_path, settings):
    settings.PAAS_CLONE_MAX_BYTES = 64 * MIB

    fetched = fetch(served, "", tmp_path / "dest", token=TOKEN, log=lambda _: None)

    assert fetched.commit_message == "Add a big file"
    assert (fetched.path / "blob.bin").stat().st_size == 4 * MIB


def test_zero_means_no_limit(served, tmp_path):
    fetched = fetch(served, "", tmp_path / "dest", token=TOKEN, max_bytes=0, log=lambda _: None)
    assert (fetched.path / "blob.bin").exists()


def test_the_watch_kills_a_process_that_keeps_writing_into_the_directory(tmp_path):
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os\nwhile True:\n    open('f', 'ab').write(os.urandom(65536))",
        ],
        cwd=tmp_path,
    )
    try:
        with SizeWatch(tmp_path, 2 * MIB, poll=0.05) as watch:
            wait_for(lambda: writer.poll() is not None, timeout=20, every=0.05, message="kill")
    finally:
        writer.kill()
        writer.wait()

    assert watch.tripped and writer.returncode == -9
    # Stopped within a poll or so of the limit, not after the disk filled.
    assert directory_size(tmp_path) < 64 * MIB


def test_the_watch_leaves_other_directories_processes_alone(tmp_path):
    (tmp_path / "watched").mkdir()
    (tmp_path / "watched" / "big").write_bytes(b"x" * 4096)
    bystander = subprocess.Popen(["sleep", "30"], cwd=tmp_path)
    try:
        with SizeWatch(tmp_path / "watched", 1024, poll=0.05) as watch:
            wait_for(lambda: watch.tripped, timeout=10, every=0.05, message="the watch to trip")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
