"""Build detection, generated Dockerfiles, and real image builds on the Docker engine.

The build tests need the engine and the base images of settings.PAAS_BASE_IMAGES (the
offline slipway/*:bookworm ones on this machine); without them they fail, never skip.
"""

import json
import time
from pathlib import Path

import docker
import pytest
import requests

from deployments.adapters.builders import BuildError, BuildPlan, build_image, detect

TEST_LABEL = "slipway.test"
HELLO_PY = """\
import os, http.server

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from python")

http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Hello).serve_forever()
"""


def _tree(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _generated(path: Path) -> str:
    return (path / ".slipway" / "Dockerfile").read_text()


def _before(text: str, first: str, second: str) -> bool:
    return text.index(first) < text.index(second)


# --- detection ------------------------------------------------------------------------


def test_the_repository_dockerfile_wins(tmp_path):
    repo = _tree(tmp_path, {"Dockerfile": "FROM x\n", "requirements.txt": "", "app.py": ""})
    plan = detect(repo)
    assert plan == BuildPlan("dockerfile", "Dockerfile", "Dockerfile from the repository")
    assert not (repo / ".slipway").exists()
    assert not (repo / ".dockerignore").exists()


def test_it_detects_python_with_gunicorn(settings, tmp_path):
    settings.PAAS_BASE_IMAGES = {**settings.PAAS_BASE_IMAGES, "python": "python:3.11-slim"}
    repo = _tree(
        tmp_path, {"requirements.txt": "Flask==3.0\ngunicorn>=22 # server\n", "app.py": ""}
    )
    plan = detect(repo)
    assert (plan.method, plan.dockerfile_path) == ("python", ".slipway/Dockerfile")
    assert plan.description == (
        "Python (requirements.txt), started with: gunicorn --bind 0.0.0.0:$PORT app:app"
    )
    dockerfile = _generated(repo)
    assert dockerfile.startswith("FROM python:3.11-slim\n")
    assert "ENV PORT=5000 PYTHONUNBUFFERED=1" in dockerfile
    assert "WORKDIR /app" in dockerfile
    assert _before(dockerfile, "COPY requirements.txt", "RUN pip install")
    assert _before(dockerfile, "RUN pip install", "COPY . .")
    assert dockerfile.endswith('CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:$PORT app:app"]\n')


@pytest.mark.parametrize(
    "files,command",
    [
        (
            {"requirements.txt": "gunicorn\n", "main.py": ""},
            "gunicorn --bind 0.0.0.0:$PORT main:app",
        ),
        ({"requirements.txt": "flask\n", "main.py": ""}, "python main.py"),
        ({"requirements.txt": "", "app.py": "", "main.py": ""}, "python app.py"),
        (
            {"requirements.txt": "gunicorn\n", "manage.py": "", "mysite/wsgi.py": ""},
            "gunicorn --bind 0.0.0.0:$PORT mysite.wsgi:application",
        ),
    ],
)
def test_it_finds_how_to_start_a_python_app(tmp_path, files, command):
    plan = detect(_tree(tmp_path, files))
    assert plan.description.endswith(f"started with: {command}")


def test_a_procfile_web_line_wins_and_replaces_the_shell(tmp_path):
    web = "gunicorn --workers 3 --bind :$PORT 'site.app:create()'"
    procfile = f"release: python migrate.py\nweb: {web}\r\nworker: celery -A x worker\n"
    repo = _tree(tmp_path, {"requirements.txt": "gunicorn\n", "app.py": "", "Procfile": procfile})
    plan = detect(repo)
    assert plan.description == f"Python (requirements.txt), started with: {web}"
    assert _generated(repo).endswith(f'CMD ["sh", "-c", {json.dumps("exec " + web)}]\n')


def test_a_procfile_line_that_pipes_runs_as_written(tmp_path):
    web = "gunicorn app:app 2>&1 | tee app.log"
    repo = _tree(tmp_path, {"requirements.txt": "", "app.py": "", "Procfile": f"web: {web}\n"})
    detect(repo)
    assert _generated(repo).endswith(f'CMD ["sh", "-c", {json.dumps(web)}]\n')


def test_pyproject_dependencies_are_installed_before_the_code(tmp_path):
    pyproject = '[project]\nname = "x"\ndependencies = ["gunicorn>=22", "six"]\n'
    repo = _tree(tmp_path, {"pyproject.toml": pyproject, "app.py": ""})
    plan = detect(repo)
    assert plan.description.startswith("Python (pyproject.toml), started with: gunicorn")
    assert (repo / ".slipway" / "requirements.txt").read_text() == "gunicorn>=22\nsix\n"
    dockerfile = _generated(repo)
    assert _before(dockerfile, "COPY .slipway/requirements.txt", "COPY . .")


def test_requirements_that_include_other_files_get_the_whole_code_first(tmp_path):
    repo = _tree(tmp_path, {"requirements.txt": "-r base.txt\n", "base.txt": "", "app.py": ""})
    detect(repo)
    assert _before(_generated(repo), "COPY . .", "RUN pip install -r requirements.txt")


def test_a_python_app_without_a_start_is_refused(tmp_path):
    with pytest.raises(BuildError) as info:
        detect(_tree(tmp_path, {"requirements.txt": "flask\n"}))
    assert (info.value.code, info.value.user_fault) == ("detect_failed", True)
    assert "Procfile" in info.value.message


def test_it_detects_node_with_a_lockfile(tmp_path):
    package = {"name": "x", "scripts": {"start": "node index.js", "build": "tsc"}}
    repo = _tree(tmp_path, {"package.json": json.dumps(package), "package-lock.json": "{}"})
    plan = detect(repo)
    assert plan.method == "node"
    assert plan.description == "Node.js (package.json, npm ci), started with: npm start"
    dockerfile = _generated(repo)
    assert _before(dockerfile, "COPY package.json package-lock.json ./", "RUN npm ci")
    assert _before(dockerfile, "RUN npm ci", "COPY . .")
    assert _before(dockerfile, "COPY . .", "RUN npm run build")


def test_it_detects_node_without_a_lockfile(tmp_path):
    repo = _tree(tmp_path, {"package.json": '{"name": "x"}', "server.js": ""})
    plan = detect(repo)
    assert "npm install" in plan.description
    assert "RUN npm install" in _generated(repo)
    assert "npm run build" not in _generated(repo)


def test_a_node_app_without_a_start_is_refused(tmp_path):
    with pytest.raises(BuildError) as info:
        detect(_tree(tmp_path, {"package.json": '{"name": "x"}'}))
    assert info.value.code == "detect_failed"


def test_it_detects_go_and_static(tmp_path):
    go = _tree(tmp_path / "go", {"go.mod": "module x\n", "go.sum": "", "main.go": ""})
    assert detect(go).method == "go"
    assert _before(_generated(go), "COPY go.mod go.sum ./", "COPY . .")
    site = _tree(tmp_path / "site", {"index.html": "<h1>hi</h1>"})
    plan = detect(site)
    assert plan.method == "static"
    assert "busybox httpd -f -p ${PORT} -h /srv" in _generated(site)


def test_an_explicit_method_overrides_detection(tmp_path):
    repo = _tree(
        tmp_path, {"Dockerfile": "FROM x\n", "requirements.txt": "", "app.py": "", "index.html": ""}
    )
    assert detect(repo, "static").method == "static"
    assert detect(repo, "python").method == "python"


@pytest.mark.parametrize(
    "method,needs",
    [("dockerfile", "Dockerfile"), ("node", "package.json"), ("go", "go.mod"), ("python", "")],
)
def test_an_explicit_method_must_be_feasible(tmp_path, method, needs):
    repo = _tree(tmp_path, {"index.html": ""})
    with pytest.raises(BuildError) as info:
        detect(repo, method)
    assert info.value.code == "detect_failed"
    assert needs in info.value.message


def test_an_empty_method_means_auto(tmp_path):
    assert detect(_tree(tmp_path, {"index.html": ""}), "").method == "static"


def test_an_unknown_method_is_refused(tmp_path):
    with pytest.raises(BuildError) as info:
        detect(_tree(tmp_path, {"index.html": ""}), "ruby")
    assert info.value.code == "detect_failed"


def test_nothing_detectable_says_what_was_looked_for(tmp_path):
    with pytest.raises(BuildError) as info:
        detect(_tree(tmp_path, {"README.md": "hi"}))
    assert info.value.code == "detect_failed"
    for name in ("Dockerfile", "requirements.txt", "package.json", "go.mod", "index.html"):
        assert name in info.value.message


def test_a_dockerignore_is_written_only_when_the_repository_has_none(tmp_path):
    repo = _tree(tmp_path / "a", {"index.html": ""})
    detect(repo)
    assert ".git" in (repo / ".dockerignore").read_text().splitlines()
    own = _tree(tmp_path / "b", {"index.html": "", ".dockerignore": "node_modules\n"})
    detect(own)
    assert (own / ".dockerignore").read_text() == "node_modules\n"


def test_symlinks_out_of_the_checkout_are_not_followed(tmp_path):
    outside = _tree(tmp_path / "outside", {"requirements.txt": "secret\n"})
    repo = _tree(tmp_path / "repo", {"index.html": ""})
    (repo / "requirements.txt").symlink_to(outside / "requirements.txt")
    (repo / ".slipway").symlink_to(outside)
    assert detect(repo).method == "static"  # the symlinked manifest does not count
    assert not (outside / "Dockerfile").exists()
    assert (repo / ".slipway").is_dir() and not (repo / ".slipway").is_symlink()


def test_a_symlink_inside_the_checkout_counts(tmp_path):
    repo = _tree(tmp_path, {"docker/Dockerfile.prod": "FROM x\n"})
    (repo / "Dockerfile").symlink_to("docker/Dockerfile.prod")
    assert detect(repo).method == "dockerfile"


# --- real builds ----------------------------------------------------------------------


# engine and images: fixtures in tests/deployments/conftest.py


def _build(engine, repo: Path, tag: str, method: str = "auto") -> tuple[str, list[str]]:
    lines: list[str] = []
    image_id = build_image(engine, repo, detect(repo, method), tag, {TEST_LABEL: "1"}, lines.append)
    return image_id, lines


def _serve(engine, image: str) -> str:
    """Start the image with PORT=8080 and return the body of GET / (retrying while it starts)."""
    container = engine.containers.run(image, detach=True, environment={"PORT": "8080"})
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        deadline = time.monotonic() + 20
        while True:
            try:
                return requests.get(f"http://{address}:8080/", timeout=2).text
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(container.logs().decode()) from None
                time.sleep(0.2)
    finally:
        container.remove(force=True)


def test_it_builds_and_runs_a_python_app(engine, images, tmp_path):
    repo = _tree(tmp_path, {"requirements.txt": "", "app.py": HELLO_PY})
    tag = images("python")
    image_id, lines = _build(engine, repo, tag)
    assert image_id.startswith("sha256:")
    assert engine.images.get(tag).labels[TEST_LABEL] == "1"
    assert lines and all(line == line.rstrip() and line.strip() for line in lines)
    assert any(line.startswith("Successfully tagged") for line in lines)
    assert _serve(engine, image_id) == "hello from python"


def test_pip_installs_a_real_package(engine, images, tmp_path):
    repo = _tree(tmp_path, {"requirements.txt": "six\n", "main.py": "import six\n"})
    image_id, lines = _build(engine, repo, images("six"))
    out = engine.containers.run(
        image_id, ["python", "-c", "import six; print(six.__name__)"], remove=True
    )
    assert out.decode().strip() == "six"
    assert any("six" in line for line in lines)


def test_a_code_only_change_reuses_the_dependency_layer(engine, images, tmp_path):
    repo = _tree(tmp_path, {"requirements.txt": "", "app.py": HELLO_PY})
    tag = images("cache")
    _build(engine, repo, tag)
    (repo / "app.py").write_text(HELLO_PY.replace("hello from python", "hello again"))
    image_id, lines = _build(engine, repo, tag)
    install = next(i for i, line in enumerate(lines) if "RUN pip install" in line)
    assert lines[install + 1].strip() == "---> Using cache"
    copy_code = next(i for i, line in enumerate(lines) if "COPY . ." in line)
    assert lines[copy_code + 1].strip() != "---> Using cache"
    assert _serve(engine, image_id) == "hello again"


def test_it_builds_and_runs_a_node_app(engine, images, tmp_path):
    server = (
        'require("http").createServer((q, s) => s.end("hello from node")).listen(process.env.PORT)'
    )
    package = {"name": "hello", "version": "1.0.0", "scripts": {"start": "node server.js"}}
    repo = _tree(tmp_path, {"package.json": json.dumps(package), "server.js": server})
    image_id, _ = _build(engine, repo, images("node"))
    assert _serve(engine, image_id) == "hello from node"


def test_it_builds_and_runs_a_static_site(engine, images, tmp_path):
    repo = _tree(tmp_path, {"index.html": "<h1>hello from static</h1>"})
    image_id, _ = _build(engine, repo, images("static"))
    assert _serve(engine, image_id) == "<h1>hello from static</h1>"


def test_it_builds_and_runs_a_go_app(engine, images, tmp_path):
    main = (
        'package main\nimport ("net/http"; "os")\nfunc main() {\n'
        '\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {'
        ' w.Write([]byte("hello from go")) })\n'
        '\thttp.ListenAndServe(":"+os.Getenv("PORT"), nil)\n}\n'
    )
    # A server/ directory must not collide with the binary's path.
    repo = _tree(
        tmp_path,
        {"go.mod": "module example.com/hello\n\ngo 1.19\n", "main.go": main, "server/README": ""},
    )
    image_id, _ = _build(engine, repo, images("go"))
    assert _serve(engine, image_id) == "hello from go"


def test_it_builds_the_repository_dockerfile(settings, engine, images, tmp_path):
    base = settings.PAAS_BASE_IMAGES["python"]
    dockerfile = f'FROM {base}\nRUN echo built-from-the-repo-dockerfile\nCMD ["true"]\n'
    repo = _tree(tmp_path, {"Dockerfile": dockerfile, "requirements.txt": ""})
    _, lines = _build(engine, repo, images("dockerfile"))
    assert "built-from-the-repo-dockerfile" in lines


LABELS = {TEST_LABEL: "1", "slipway.app": "blog", "slipway.instance": "labels"}


def _label_build(engine, repo: Path, tag: str) -> list[str]:
    """The build's steps, the image checked for every label."""
    lines: list[str] = []
    build_image(engine, repo, detect(repo), tag, LABELS, lines.append)
    assert engine.images.get(tag).labels.items() >= LABELS.items()
    return lines


def _steps(lines: list[str]) -> list[str]:
    return [line.split(" : ", 1)[1] for line in lines if line.startswith("Step ")]


def test_the_labels_are_one_step_from_the_cache_right_before_the_code_is_copied(
    engine, images, tmp_path
):
    repo = _tree(tmp_path, {"requirements.txt": "", "app.py": HELLO_PY})
    _label_build(engine, repo, images("labels"))
    (repo / "app.py").write_text(HELLO_PY + "# a code-only change\n")
    lines = _label_build(engine, repo, images("labels-again"))
    steps = _steps(lines)
    [label] = [step for step in steps if step.startswith("LABEL ")]
    assert steps[steps.index(label) + 1] == "COPY . ."
    after = lines[lines.index(next(line for line in lines if " : LABEL " in line)) + 1]
    assert after.strip() == "---> Using cache"  # not a container created and committed
    assert "Dockerfile.resolved" in (repo / ".dockerignore").read_text()  # not in COPY . .


def test_a_dockerfile_that_sets_a_label_of_ours_gets_ours_at_the_end(
    settings, engine, images, tmp_path
):
    base = settings.PAAS_BASE_IMAGES["python"]
    dockerfile = f'FROM {base}\nCOPY . /srv\nLABEL slipway.app="someone-else"\nCMD ["true"]\n'
    repo = _tree(tmp_path, {"Dockerfile": dockerfile})
    steps = _steps(_label_build(engine, repo, images("relabelled")))
    assert steps[-1].startswith("LABEL ") and '"slipway.app"="blog"' in steps[-1]


def test_a_dockerfile_that_never_copies_the_whole_context_gets_the_labels_at_the_end(
    settings, engine, images, tmp_path
):
    base = settings.PAAS_BASE_IMAGES["python"]
    repo = _tree(tmp_path, {"Dockerfile": f"FROM {base}\nCOPY app.py /srv/\n", "app.py": ""})
    steps = _steps(_label_build(engine, repo, images("no-context-copy")))
    assert steps[-1].startswith("LABEL ") and steps[-2] == "COPY app.py /srv/"


def test_a_dockerfile_whose_last_line_continues_gets_the_labels_from_the_engine(
    settings, engine, images, tmp_path
):
    base = settings.PAAS_BASE_IMAGES["python"]
    dockerfile = f"FROM {base}\nRUN echo continued \\\n"  # a LABEL after it would be its words
    repo = _tree(tmp_path, {"Dockerfile": dockerfile})
    tag = images("continued")
    lines: list[str] = []
    build_image(engine, repo, detect(repo), tag, LABELS, lines.append)
    assert "continued" in lines
    assert engine.images.get(tag).labels.items() >= LABELS.items()


def test_a_failing_step_is_a_build_failure_with_its_output(settings, engine, images, tmp_path):
    base = settings.PAAS_BASE_IMAGES["python"]
    repo = _tree(tmp_path, {"Dockerfile": f"FROM {base}\nRUN echo about-to-fail && exit 3\n"})
    lines: list[str] = []
    with pytest.raises(BuildError) as info:
        build_image(engine, repo, detect(repo), images("broken"), {TEST_LABEL: "1"}, lines.append)
    assert (info.value.code, info.value.user_fault) == ("build_failed", True)
    assert "returned a non-zero code: 3" in info.value.message
    assert "about-to-fail" in info.value.message
    assert "about-to-fail" in lines  # streamed before the failure


def test_an_unparsable_dockerfile_is_a_dockerfile_error(settings, engine, images, tmp_path):
    base = settings.PAAS_BASE_IMAGES["python"]
    repo = _tree(tmp_path, {"Dockerfile": f"FROM {base}\nFROBNICATE now\n"})
    with pytest.raises(BuildError) as info:
        build_image(engine, repo, detect(repo), images("unparsable"), {}, print)
    assert (info.value.code, info.value.user_fault) == ("dockerfile_error", True)
    assert "FROBNICATE" in info.value.message.upper()


def test_an_unreachable_engine_is_a_platform_fault(tmp_path):
    repo = _tree(tmp_path, {"index.html": ""})
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    with pytest.raises(BuildError) as info:
        build_image(client, repo, detect(repo), "slipway-test/unreachable", {}, print)
    assert (info.value.code, info.value.user_fault) == ("engine_unreachable", False)
