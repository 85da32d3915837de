"""Deploying from an uploaded archive: good archives unpack (a wrapping directory stripped),
hostile ones are refused with invalid_archive and write nothing — in dest or anywhere else."""

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from deployments.adapters.sources.archive import extract_archive, inspect_archive
from deployments.adapters.sources.git import SourceError
from deployments.models import Deployment
from deployments.services.archives import deploy_archive
from deployments.workers.pipeline.context import Context
from deployments.workers.pipeline.steps import FetchSource
from tests.support import log_text

MAX_BYTES = 1024 * 1024
MAX_ENTRIES = 100


# --- building archives ------------------------------------------------------------------


def file(name, data=b"hello\n", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def directory(name):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def symlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def hardlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


def make_archive(path: Path, *members, mode="w:gz", **options) -> Path:
    with tarfile.open(path, mode, **options) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture
def place(tmp_path):
    """Uploads in tmp/uploads, unpacked into tmp/work/dest; everything else in tmp/work is
    'outside' and must stay as it was."""
    (tmp_path / "uploads").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "keep.txt").write_text("untouched")
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes | str]:
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            state[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            state[str(path)] = path.read_bytes()
        else:
            state[str(path)] = "dir"
    return state


def extract(place, archive, max_bytes=MAX_BYTES, max_entries=MAX_ENTRIES):
    return extract_archive(archive, place / "work" / "dest", max_bytes, max_entries)


def assert_refused(place, archive, expected, **limits):
    before = snapshot(place / "work")
    with pytest.raises(SourceError) as caught:
        extract(place, archive, **limits)
    assert caught.value.code == "invalid_archive"
    assert expected in caught.value.message
    assert snapshot(place / "work") == before  # nothing written: not in dest, not beside it
    assert not (place / "work" / "dest").exists()
    return caught.value


# --- good archives ----------------------------------------------------------------------


def test_it_extracts_a_good_archive(place):
    archive = make_archive(
        place / "uploads" / "app.tar.gz",
        directory("src"),
        file("src/app.py", b"print('hi')\n"),
        file("index.html", b"<h1>hi</h1>"),
        file("run.sh", b"#!/bin/sh\n", mode=0o4755),
        symlink("src/link.html", "../index.html"),
    )
    assert extract(place, archive) == 3
    dest = place / "work" / "dest"
    assert (dest / "src" / "app.py").read_text() == "print('hi')\n"
    assert (dest / "src" / "link.html").read_text() == "<h1>hi</h1>"
    assert os.readlink(dest / "src" / "link.html") == "../index.html"
    assert not (dest / "run.sh").stat().st_mode & 0o4000  # no setuid survives the data filter


def test_it_strips_a_single_wrapping_directory_like_githubs_tarballs(place):
    archive = make_archive(
        place / "uploads" / "gh.tar.gz",
        directory("acme-demo-1a2b3c4/"),
        file("acme-demo-1a2b3c4/index.html"),
        directory("acme-demo-1a2b3c4/css"),
        file("acme-demo-1a2b3c4/css/site.css", b"body{}"),
        format=tarfile.PAX_FORMAT,
        pax_headers={"comment": "1a2b3c4d5e"},
    )
    assert extract(place, archive) == 2
    dest = place / "work" / "dest"
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == [
        "css",
        "css/site.css",
        "index.html",
    ]


def test_it_strips_a_wrapping_directory_that_has_no_entry_of_its_own(place):
    archive = make_archive(place / "uploads" / "a.tgz", file("top/a.txt"), file("top/b/c.txt"))
    extract(place, archive)
    assert (place / "work" / "dest" / "b" / "c.txt").is_file()


def test_it_keeps_a_lone_top_level_file(place):
    archive = make_archive(place / "uploads" / "one.tar.gz", file("index.html"))
    extract(place, archive)
    assert (place / "work" / "dest" / "index.html").is_file()


def test_it_accepts_a_plain_tar_and_dot_slash_names(place):
    archive = make_archive(
        place / "uploads" / "plain.tar",
        directory("."),
        file("./a.txt"),
        file("./d/b.txt"),
        mode="w",
    )
    assert extract(place, archive) == 2
    assert (place / "work" / "dest" / "d" / "b.txt").is_file()


# --- hostile archives -------------------------------------------------------------------


def test_it_refuses_an_absolute_path(place):
    target = place / "work" / "abs-sentinel"
    archive = make_archive(place / "uploads" / "x.tgz", file("ok.txt"), file(str(target)))
    assert_refused(place, archive, "absolute path")
    assert not target.exists()


@pytest.mark.parametrize("name", ["../escape", "sub/../../escape", "./../escape"])
def test_it_refuses_dot_dot(place, name):
    archive = make_archive(place / "uploads" / "x.tgz", file("ok.txt"), file(name))
    assert_refused(place, archive, "points outside")
    assert not (place / "work" / "escape").exists()


def test_it_refuses_a_symlink_to_an_absolute_path(place):
    archive = make_archive(place / "uploads" / "x.tgz", symlink("passwd", "/etc/passwd"))
    assert_refused(place, archive, "absolute path")


@pytest.mark.parametrize("target", ["../../x", "../x", "a/../../x"])
def test_it_refuses_a_symlink_out_of_the_tree(place, target):
    archive = make_archive(place / "uploads" / "x.tgz", file("ok.txt"), symlink("link", target))
    assert_refused(place, archive, "points outside the archive")


def test_it_refuses_a_symlink_out_once_the_wrapper_is_stripped(place):
    # Inside "wrap/" this points at wrap/../x — outside once wrap/ becomes the root.
    archive = make_archive(
        place / "uploads" / "x.tgz", file("wrap/ok.txt"), symlink("wrap/link", "../x")
    )
    assert_refused(place, archive, "points outside the archive")


def test_it_refuses_a_chain_of_links_that_climbs_out(place):
    # x/up -> .. is the root (inside); esc -> x/up/.. reads as "x" but on disk is the
    # parent of the root. Then esc/evil would be written outside.
    archive = make_archive(
        place / "uploads" / "x.tgz",
        directory("x"),
        symlink("x/up", ".."),
        symlink("esc", "x/up/.."),
        file("esc/evil"),
    )
    assert_refused(place, archive, "goes through another link")
    assert not (place / "work" / "evil").exists()


def test_it_refuses_writing_through_a_symlinked_directory(place):
    archive = make_archive(
        place / "uploads" / "x.tgz",
        directory("real"),
        symlink("alias", "real"),
        file("alias/file.txt"),
    )
    assert_refused(place, archive, "inside a symbolic link")


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside", "inside.txt"])
def test_it_refuses_every_hardlink(place, target):
    archive = make_archive(
        place / "uploads" / "x.tgz", file("inside.txt"), hardlink("link", target)
    )
    assert_refused(place, archive, "hard link")


@pytest.mark.parametrize(
    "kind, message",
    [
        (tarfile.CHRTYPE, "device file"),
        (tarfile.BLKTYPE, "device file"),
        (tarfile.FIFOTYPE, "named pipe"),
    ],
)
def test_it_refuses_devices_and_fifos(place, kind, message):
    archive = make_archive(place / "uploads" / "x.tgz", file("ok.txt"), special("dev/thing", kind))
    assert_refused(place, archive, message)


def test_it_refuses_an_entry_that_appears_twice(place):
    archive = make_archive(
        place / "uploads" / "x.tgz",
        directory("d"),
        file("d/a"),
        symlink("d", "elsewhere"),
    )
    assert_refused(place, archive, "appears twice")


def test_it_refuses_too_many_entries(place):
    archive = make_archive(place / "uploads" / "x.tgz", *[file(f"f{i}") for i in range(6)])
    assert_refused(place, archive, "more than 5 entries", max_entries=5)


def test_it_refuses_an_archive_that_unpacks_too_big(place):
    # 300 KiB of zeros: a tiny upload, a big unpacked size.
    archive = make_archive(place / "uploads" / "x.tgz", file("zeros", b"\0" * 300 * 1024))
    assert archive.stat().st_size < 10 * 1024
    assert_refused(place, archive, "unpacks to more than", max_bytes=256 * 1024)


def test_it_refuses_an_upload_that_is_too_big(place):
    archive = make_archive(place / "uploads" / "x.tgz", file("noise", os.urandom(64 * 1024)))
    assert_refused(place, archive, "larger than", max_bytes=32 * 1024)


def test_it_refuses_a_huge_header_without_reading_it_into_memory(place):
    archive = make_archive(
        place / "uploads" / "x.tgz",
        file("a.txt"),
        format=tarfile.PAX_FORMAT,
        pax_headers={"comment": "x" * (2 * 1024 * 1024)},
    )
    assert_refused(place, archive, "too large", max_bytes=10 * 1024 * 1024)


def test_it_stops_reading_a_stream_far_longer_than_its_entries(place):
    # Each header is under the per-read cap, but together they dwarf the 10 KiB of data
    # allowed: the reading stops at the cap instead of decompressing it all.
    members = []
    for i in range(3):
        info, data = file(f"f{i}")
        info.pax_headers = {"comment": "x" * (900 * 1024)}
        members.append((info, data))
    archive = make_archive(place / "uploads" / "x.tgz", *members, format=tarfile.PAX_FORMAT)
    assert_refused(place, archive, "unpacked archive is too large", max_bytes=10 * 1024)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"just some text, not a tar",
        gzip.compress(b"gzip of something else" * 50),
        b"\x1f\x8b\x08 broken gzip header",
    ],
)
def test_it_refuses_what_is_not_a_tar(place, content):
    upload = place / "uploads" / "x.tgz"
    upload.write_bytes(content)
    assert_refused(place, upload, "")


def test_it_refuses_a_truncated_archive(place):
    archive = make_archive(place / "uploads" / "x.tgz", file("big", os.urandom(64 * 1024)))
    archive.write_bytes(archive.read_bytes()[: 20 * 1024])
    assert_refused(place, archive, "cannot be read")


def test_it_refuses_an_empty_archive(place):
    archive = make_archive(place / "uploads" / "x.tgz", directory("."))
    assert_refused(place, archive, "empty")


def test_inspecting_writes_nothing(place):
    archive = make_archive(place / "uploads" / "x.tgz", file("a"), file("b/c", b"12345"))
    before = snapshot(place)
    plan = inspect_archive(archive, MAX_BYTES, MAX_ENTRIES)
    assert (plan.files, plan.total_bytes) == (2, len(b"hello\n") + 5)
    assert snapshot(place) == before


# --- the use case and the API -----------------------------------------------------------


@pytest.fixture
def uploads(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.PAAS_BUILD_DIR = tmp_path / "builds"
    return tmp_path / "var" / "archives"


def _upload(api, app_name, archive: Path, **fields):
    with archive.open("rb") as fh:
        return api.client.post(
            f"/api/v1/apps/{app_name}/archives",
            data={"archive": fh, **fields},
            headers=api.headers,
        )


@pytest.mark.django_db
def test_the_api_queues_an_archive_deployment(api, make_app, uploads, tmp_path):
    app = make_app("tarball")
    archive = make_archive(tmp_path / "site.tar.gz", file("index.html", b"<h1>hi</h1>"))
    response = _upload(api, app.name, archive, environment="staging")
    assert response.status_code == 202, response.content
    assert response.json() == {"number": 1, "status": "pending", "environment": "staging"}
    deployment = Deployment.objects.get(app=app)
    assert (deployment.trigger, deployment.status) == ("archive", "pending")
    saved = Path(deployment.step_data["archive"])
    assert saved.parent == uploads and saved.name.startswith("tarball-")
    assert saved.read_bytes() == archive.read_bytes()


@pytest.mark.django_db
def test_the_api_refuses_a_bad_archive_and_creates_nothing(api, make_app, uploads, tmp_path):
    app = make_app("tarball")
    archive = make_archive(tmp_path / "bad.tar.gz", file("ok"), file("../escape"))
    response = _upload(api, app.name, archive)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_archive"
    assert not Deployment.objects.exists()
    assert list(uploads.iterdir()) == []


@pytest.mark.django_db
def test_the_api_refuses_an_archive_over_the_limit(api, make_app, uploads, tmp_path, settings):
    settings.PAAS_ARCHIVE_MAX_BYTES = 16 * 1024
    app = make_app("tarball")
    archive = make_archive(tmp_path / "big.tar.gz", file("noise", os.urandom(20 * 1024)))
    response = _upload(api, app.name, archive)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "archive_too_large"
    assert not Deployment.objects.exists()
    assert not uploads.exists() or list(uploads.iterdir()) == []


@pytest.mark.django_db
def test_the_api_wants_the_archive_field(api, make_app, uploads):
    app = make_app("tarball")
    response = api.client.post(
        f"/api/v1/apps/{app.name}/archives", data={"other": "x"}, headers=api.headers
    )
    assert response.status_code == 400
    assert "archive" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_an_outsider_cannot_upload_to_someone_elses_app(outsider_api, make_app, uploads, tmp_path):
    app = make_app("tarball")
    archive = make_archive(tmp_path / "site.tar.gz", file("index.html"))
    assert _upload(outsider_api, app.name, archive).status_code == 404
    assert not Deployment.objects.exists()


@pytest.mark.django_db
def test_the_fetch_step_unpacks_the_uploaded_archive(owner, make_app, uploads, tmp_path):
    app = make_app("tarball")
    archive = make_archive(
        tmp_path / "site.tar.gz",
        file("wrap/index.html", b"<h1>hi</h1>"),
        file("wrap/a/b.css"),
    )
    with archive.open("rb") as fh:
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("site.tar.gz", fh.read())
    deployment = deploy_archive(app, "production", upload, owner)
    ctx = Context(Deployment.objects.get(pk=deployment.pk), runtime=None, router=None)
    FetchSource().execute(ctx)
    assert (ctx.build_dir / "index.html").read_text() == "<h1>hi</h1>"
    assert (ctx.build_dir / "a" / "b.css").is_file()
    assert "Extracted 2 files from the uploaded archive" in log_text(deployment)
    assert ctx.deployment.step_data["clone_dir"] == str(ctx.build_dir)
