"""Deleting an app removes its own build directories and uploaded archives, matched by
their whole name: app blog's cleanup leaves app blog-api's files alone."""

import pytest

from deployments import wiring
from deployments.workers.cleanup import cleanup_app

pytestmark = pytest.mark.django_db


def test_deleting_blog_leaves_blog_apis_builds_and_archives(make_app, settings, tmp_path):
    settings.PAAS_BUILD_DIR = tmp_path / "builds"
    settings.VAR_DIR = tmp_path / "var"
    archives = settings.VAR_DIR / "archives"
    for folder in ("blog-3-1", "blog-api-3-1", "blog-12-2"):
        (settings.PAAS_BUILD_DIR / folder).mkdir(parents=True)
    archives.mkdir(parents=True)
    for name in ("blog-" + "a" * 32, "blog-api-" + "b" * 32):
        (archives / f"{name}.tar.gz").write_bytes(b"x")
    blog = make_app("blog")
    make_app("blog-api")

    blog.request_cleanup()
    assert cleanup_app(blog.pk, wiring.runtime(), wiring.router()) is True

    assert sorted(p.name for p in settings.PAAS_BUILD_DIR.iterdir()) == ["blog-api-3-1"]
    assert [p.name for p in archives.iterdir()] == [f"blog-api-{'b' * 32}.tar.gz"]
