"""The build command, Django's collectstatic and start, and vendored Go, on the real engine.

The Django sample installs Django and gunicorn from PyPI during the build (through the
host's proxy, as the python sample does); the Go sample's module exists only in vendor/.
"""

import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import docker
import pytest
import requests

from deployments.adapters.builders import BuildError, build_image, detect

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
TEST_LABEL = "slipway.test"
DJANGO_DEPS = (SAMPLES / "django_static" / "requirements.txt").read_text()
MANAGE_PY = (
    'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "{module}")\n'
    "from django.core.management import execute_from_command_line\n"
)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _sample(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLES / name, tmp_path / name))


def _generated(path: Path) -> str:
    return (path / ".slipway" / "Dockerfile").read_text()


def _run_step(command: str) -> str:
    return f"RUN {json.dumps(['sh', '-c', command])}"


# --- start command --------------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        {"requirements.txt": "fastapi\nuvicorn\n", "api/main.py": ""},  # nothing detectable
        {"package.json": "{}"},  # no start script, no server.js
    ],
)
def test_the_start_command_is_the_web_command_where_detection_finds_none(tmp_path, files):
    repo = _tree(tmp_path, files)
    with pytest.raises(BuildError) as refused:
        detect(repo)
    assert "set the app's start command" in refused.value.message
    command = "uvicorn api.main:app --host 0.0.0.0 --port $PORT"
    plan = detect(repo, start_command=command)
    assert f"started with: {command}" in plan.description
    assert f'CMD ["sh", "-c", "exec {command}"]' in _generated(repo)


# --- build command --------------------------------------------------------------------


def test_the_build_command_runs_once_the_code_is_in(tmp_path):
    repo = _tree(tmp_path, {"requirements.txt": "", "app.py": ""})
    plan = detect(repo, build_command="make assets")
    dockerfile = _generated(repo)
    assert dockerfile.index("COPY . .") < dockerfile.index(_run_step("make assets"))
    assert dockerfile.index(_run_step("make assets")) < dockerfile.index("CMD ")
    assert plan.description == (
        "Python (requirements.txt), build command: make assets, started with: python app.py"
    )


def test_a_multi_line_build_command_stays_one_step(tmp_path):
    repo = _tree(tmp_path, {"index.html": ""})
    detect(repo, build_command="echo a\nCMD evil")
    assert "\nCMD evil" not in _generated(repo)
    assert _run_step("echo a\nCMD evil") in _generated(repo)


def test_the_build_command_replaces_npm_run_build(tmp_path):
    package = {"name": "x", "scripts": {"start": "node s.js", "build": "tsc"}}
    repo = _tree(tmp_path, {"package.json": json.dumps(package)})
    detect(repo, build_command="npm run build:prod")
    dockerfile = _generated(repo)
    assert _run_step("npm run build:prod") in dockerfile
    assert "RUN npm run build\n" not in dockerfile


def test_go_runs_the_build_command_before_go_build(tmp_path):
    repo = _tree(tmp_path, {"go.mod": "module x\n", "main.go": ""})
    detect(repo, build_command="go generate ./...")
    dockerfile = _generated(repo)
    assert dockerfile.index(_run_step("go generate ./...")) < dockerfile.index("RUN go build")


def test_a_repository_dockerfile_does_not_get_the_build_command(tmp_path):
    repo = _tree(tmp_path, {"Dockerfile": "FROM x\n"})
    plan = detect(repo, build_command="npm run build")
    assert plan.dockerfile_path == "Dockerfile"
    assert "build command is not applied" in plan.description
    assert (repo / "Dockerfile").read_text() == "FROM x\n"


# --- Django ---------------------------------------------------------------------------


def _django(tmp_path: Path, module: str = "mysite.settings", deps: str = DJANGO_DEPS, **extra):
    files = {"requirements.txt": deps, "manage.py": MANAGE_PY.format(module=module)}
    return _tree(tmp_path, {**files, "mysite/wsgi.py": "", **extra})


def test_django_collects_static_files_and_starts_its_wsgi_module(tmp_path):
    repo = _django(tmp_path)
    plan = detect(repo)
    dockerfile = _generated(repo)
    assert dockerfile.index("COPY . .") < dockerfile.index("collectstatic --noinput")
    assert "DISABLE_COLLECTSTATIC=1" in dockerfile  # the hint when it fails
    assert dockerfile.endswith(
        'CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:$PORT mysite.wsgi"]\n'
    )
    assert "collectstatic runs at build" in plan.description
    assert plan.description.endswith(
        "started with: gunicorn --bind 0.0.0.0:$PORT mysite.wsgi "
        "(DJANGO_SETTINGS_MODULE mysite.settings in manage.py)"
    )


def test_disable_collectstatic_is_heard_and_nothing_else_of_the_env(tmp_path):
    repo = _django(tmp_path)
    plan = detect(repo, build_env={"DISABLE_COLLECTSTATIC": "1", "SECRET": "hunter2"})
    assert "collectstatic" not in _generated(repo)
    assert "hunter2" not in _generated(repo)
    assert "collectstatic skipped (DISABLE_COLLECTSTATIC=1)" in plan.description


def test_collectstatic_runs_after_the_build_command(tmp_path):
    repo = _django(tmp_path)
    detect(repo, build_command="npm run build", build_env={"DISABLE_COLLECTSTATIC": "0"})
    dockerfile = _generated(repo)
    assert dockerfile.index(_run_step("npm run build")) < dockerfile.index("collectstatic")


def test_a_nested_settings_module_names_the_project_package(tmp_path):
    repo = _django(tmp_path, "config.settings.production", **{"config/wsgi.py": ""})
    assert detect(repo).description.endswith(
        "gunicorn --bind 0.0.0.0:$PORT config.wsgi "
        "(DJANGO_SETTINGS_MODULE config.settings.production in manage.py)"
    )


def test_without_the_settings_module_any_wsgi_py_is_used(tmp_path):
    repo = _django(tmp_path, "elsewhere.settings")
    assert detect(repo).description.endswith(
        "gunicorn --bind 0.0.0.0:$PORT mysite.wsgi:application (found by its wsgi.py)"
    )


def test_django_without_gunicorn_says_to_add_it(tmp_path):
    with pytest.raises(BuildError) as info:
        detect(_django(tmp_path, deps="Django==5.2\n", **{"app.py": ""}))
    assert (info.value.code, info.value.user_fault) == ("detect_failed", True)
    assert "add gunicorn to requirements.txt" in info.value.message


def test_a_procfile_web_line_still_wins_for_django(tmp_path):
    repo = _django(tmp_path, deps="django\n", Procfile="web: python manage.py runserver\n")
    plan = detect(repo)
    assert plan.description.endswith("started with: python manage.py runserver")
    assert "collectstatic" in _generated(repo)


def test_an_invalid_procfile_fails_detection(tmp_path):
    repo = _tree(tmp_path, {"requirements.txt": "", "app.py": "", "Procfile": "web: a\nweb: b\n"})
    with pytest.raises(BuildError) as info:
        detect(repo)
    assert info.value.code == "procfile_invalid"


# --- Go vendor ------------------------------------------------------------------------


def test_vendored_go_builds_with_mod_vendor_and_downloads_nothing(tmp_path):
    repo = _sample("go_vendor", tmp_path)
    plan = detect(repo)
    dockerfile = _generated(repo)
    assert "go mod download" not in dockerfile
    assert "RUN go build -mod=vendor -o /usr/local/bin/server ." in dockerfile
    assert "GOPROXY=off" in dockerfile
    assert "vendor/ used" in plan.description


def test_a_vendor_directory_without_modules_txt_is_not_vendoring(tmp_path):
    repo = _tree(tmp_path, {"go.mod": "module x\n", "main.go": "", "vendor/README": ""})
    detect(repo)
    assert "RUN go mod download" in _generated(repo)


# --- real builds ----------------------------------------------------------------------


# engine and images: fixtures in tests/deployments/conftest.py


def _build(engine, repo: Path, tag: str, **options) -> tuple[str, list[str]]:
    lines: list[str] = []
    plan = detect(repo, **options)
    image_id = build_image(engine, repo, plan, tag, {TEST_LABEL: "1"}, lines.append)
    return image_id, lines


def _file_in_image(engine, image: str, path: str) -> str | None:
    """A file's text, copied out of a container that never runs; None when it is absent."""
    container = engine.containers.create(image)
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            return archive.extractfile(archive.getmembers()[0]).read().decode()
    except docker.errors.NotFound:
        return None
    finally:
        container.remove(force=True)


def _get(engine, image: str) -> requests.Response:
    """Start the image with PORT=8080 and GET / (retrying while it starts)."""
    container = engine.containers.run(image, detach=True, environment={"PORT": "8080"})
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        deadline = time.monotonic() + 30
        while True:
            try:
                # The first answer may be slow on a busy machine (gunicorn's worker boots
                # Django): wait for it longer, and retry a timeout as a refused connection.
                return requests.get(f"http://{address}:8080/", timeout=10)
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline:
                    raise AssertionError(container.logs().decode()) from None
                time.sleep(0.2)
    finally:
        container.remove(force=True)


def test_a_django_app_is_built_with_its_static_files(engine, images, tmp_path):
    repo = _sample("django_static", tmp_path)
    image_id, lines = _build(engine, repo, images("django"))
    assert any("RUN python manage.py collectstatic --noinput" in line for line in lines)
    manifest = json.loads(_file_in_image(engine, image_id, "/app/staticfiles/staticfiles.json"))
    hashed = manifest["paths"]["site.css"]
    css = _file_in_image(engine, image_id, f"/app/staticfiles/{hashed}")
    assert css == "body { color: teal; }\n"
    page = _get(engine, image_id)
    assert (page.status_code, page.text) == (200, f"stylesheet at /static/{hashed}")


def test_disable_collectstatic_builds_without_them(engine, images, tmp_path):
    repo = _sample("django_static", tmp_path)
    image_id, lines = _build(
        engine, repo, images("django-nostatic"), build_env={"DISABLE_COLLECTSTATIC": "1"}
    )
    assert not any("collectstatic" in line for line in lines)
    assert _file_in_image(engine, image_id, "/app/staticfiles") is None
    assert _get(engine, image_id).status_code == 500  # the manifest storage needs collectstatic


def test_a_failing_collectstatic_says_how_to_skip_it(engine, images, tmp_path):
    manage = "import sys\nsys.exit('settings need DATABASE_URL')\n"
    repo = _django(tmp_path, **{"manage.py": manage})
    with pytest.raises(BuildError) as info:
        _build(engine, repo, images("django-broken"))
    assert info.value.code == "build_failed"
    assert "collectstatic failed: set DISABLE_COLLECTSTATIC=1 to skip it" in info.value.message


def test_the_build_command_runs_in_the_image(engine, images, tmp_path):
    repo = _tree(tmp_path, {"index.html": "<h1>hi</h1>"})
    command = "mkdir -p built && echo made-by-the-build-command > built/marker.txt"
    image_id, _ = _build(engine, repo, images("build-command"), build_command=command)
    marker = _file_in_image(engine, image_id, "/srv/built/marker.txt")
    assert marker == "made-by-the-build-command\n"


def test_a_vendored_go_module_builds_without_a_download(engine, images, tmp_path):
    repo = _sample("go_vendor", tmp_path)
    image_id, lines = _build(engine, repo, images("go-vendor"))
    assert not any("go: downloading" in line for line in lines)
    page = _get(engine, image_id)
    assert (page.status_code, page.text) == (200, "hello from a vendored module")
