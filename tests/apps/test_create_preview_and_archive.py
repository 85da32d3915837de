"""The create form previews what auto-detection finds; the app page deploys an uploaded
archive — and refuses a bad one without changing anything."""

import io
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from deployments.models import Deployment
from tests.support import make_repo, sample_files

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def client(owner):
    c = Client()
    c.force_login(owner)
    return c


def test_the_preview_describes_the_detected_build(client, tmp_path):
    repo = make_repo(tmp_path / "py", sample_files("python"))
    response = client.get("/new/detect/", {"repository": str(repo), "branch": ""}, headers=HX)
    assert response.status_code == 200
    assert "Python" in response.content.decode() and "gunicorn" in response.content.decode()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"repository": "ftp://example.com/x.git"}, "✗"),
        (
            {"repository": "https://example.com/a.git", "branch": "--upload-pack=touch /tmp/pwned"},
            "✗",
        ),
    ],
)
def test_the_preview_refuses_bad_input_clearly(client, params, message):
    response = client.get("/new/detect/", params, headers=HX)
    assert response.status_code == 200 and message in response.content.decode()


def test_the_preview_says_when_nothing_is_detectable(client, tmp_path):
    repo = make_repo(tmp_path / "empty", {"README.md": "nothing to run"})
    body = client.get("/new/detect/", {"repository": str(repo)}, headers=HX).content.decode()
    assert "✗" in body and "Dockerfile" in body


def _tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_app_page_queues_an_uploaded_archive(client, make_app):
    make_app("boxed")
    upload = SimpleUploadedFile("site.tar.gz", _tarball({"index.html": "<h1>hi</h1>"}))
    response = client.post(
        "/apps/boxed/archive/", {"archive": upload, "environment": "staging"}, headers=HX
    )
    assert response.status_code == 200 and "queued" in response.content.decode()
    deployment = Deployment.objects.get()
    assert deployment.trigger == "archive" and deployment.environment.name == "staging"


def test_a_bad_archive_from_the_page_changes_nothing(client, make_app):
    make_app("boxed")
    upload = SimpleUploadedFile("evil.tar.gz", _tarball({"../escape.txt": "x"}))
    response = client.post("/apps/boxed/archive/", {"archive": upload}, headers=HX)
    assert response.status_code == 400
    assert not Deployment.objects.exists()
