"""Decide how to build a checked-out repository, and write the Dockerfile when we make one.

The repository's own Dockerfile wins; otherwise the first kind whose marker file sits at
the root: Python, Node.js, Go, then a static site. Files are read only when they are
regular files inside the checkout, so a symlink to a host file never reaches a log.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from deployments.adapters.builders import dockerfiles

METHODS = ("dockerfile", "python", "node", "go", "static")
GENERATED_DIR = ".slipway"
GENERATED_DOCKERFILE = f"{GENERATED_DIR}/Dockerfile"
GENERATED_REQUIREMENTS = f"{GENERATED_DIR}/requirements.txt"
MAX_MANIFEST_BYTES = 1024 * 1024
LOOKED_FOR = "a Dockerfile, requirements.txt, pyproject.toml, package.json, go.mod or index.html"

# Codes whose cause lies in the user's repository; anything else is the platform's.
USER_FAULT_CODES = frozenset({"detect_failed", "build_failed", "dockerfile_error"})

PROCFILE_WEB_RE = re.compile(r"^web\s*:\s*(?P<command>\S.*?)\s*$", re.MULTILINE)
REQUIREMENT_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# Lines that make pip read other files of the repository (the manifest alone won't do).
NEEDS_CODE_RE = re.compile(r"^\s*(-r|-c|-e|--requirement|--constraint|--editable|\.|/|file:)")


class BuildError(Exception):
    """A build that failed. `code` is stable; the message is safe to show to the user."""

    def __init__(self, code: str, message: str, user_fault: bool | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.user_fault = code in USER_FAULT_CODES if user_fault is None else user_fault


@dataclass
class BuildPlan:
    method: str  # "dockerfile" | "python" | "node" | "go" | "static"
    dockerfile_path: str  # relative to the build context
    description: str  # for people: what was found and how the app starts


@dataclass
class _Recipe:
    dockerfile: str
    description: str
    requirements: str | None = None  # content for .slipway/requirements.txt


def detect(path: Path, method: str = "auto") -> BuildPlan:
    """The plan to build `path` with; a generated Dockerfile is written into `path`."""
    path = Path(path)
    if method in ("auto", ""):  # a deployment without its own method says ""
        method = _sniff(path)
    elif method not in METHODS:
        raise BuildError("detect_failed", f"Unknown build method “{method}”.")
    if method == "dockerfile":
        return _dockerfile_plan(path)
    recipe = RECIPES[method](path)
    _write_generated(path, recipe)
    return BuildPlan(method, GENERATED_DOCKERFILE, recipe.description)


def _sniff(path: Path) -> str:
    if _is_file(path, "Dockerfile"):
        return "dockerfile"
    for method, markers in MARKERS.items():
        if any(_is_file(path, name) for name in markers):
            return method
    raise BuildError("detect_failed", f"Found none of {LOOKED_FOR} at the repository root.")


def _dockerfile_plan(path: Path) -> BuildPlan:
    if not _is_file(path, "Dockerfile"):
        raise BuildError(
            "detect_failed",
            "The build method is “dockerfile” but the repository has no Dockerfile.",
        )
    return BuildPlan("dockerfile", "Dockerfile", "Dockerfile from the repository")


# --- recipes --------------------------------------------------------------------------


def _python(path: Path) -> _Recipe:
    if _is_file(path, "requirements.txt"):
        text = _read(path, "requirements.txt")
        deps = _requirement_names(text.splitlines())
        needs_code = any(NEEDS_CODE_RE.match(line) for line in text.splitlines())
        source, generated = (None if needs_code else "requirements.txt"), None
        found = "requirements.txt"
    elif _is_file(path, "pyproject.toml"):
        generated = "\n".join(_pyproject_dependencies(path)) + "\n"
        deps = _requirement_names(generated.splitlines())
        source, found = GENERATED_REQUIREMENTS, "pyproject.toml"
    else:
        raise _infeasible("python", "requirements.txt or pyproject.toml")
    command, procfile = _python_start(path, "gunicorn" in deps)
    dockerfile = dockerfiles.python(
        _base("python"), _port(), source, dockerfiles.start_command(command, procfile)
    )
    return _Recipe(dockerfile, f"Python ({found}), started with: {command}", generated)


def _python_start(path: Path, has_gunicorn: bool) -> tuple[str, bool]:
    web = _procfile_web(path)
    if web:
        return web, True
    module = _wsgi_module(path) if has_gunicorn else None
    if module:
        return f"gunicorn --bind 0.0.0.0:$PORT {module}", False
    for script in ("app.py", "main.py"):
        if _is_file(path, script):
            return f"python {script}", False
    raise BuildError(
        "detect_failed",
        "Found a Python project but no way to start it: add a Procfile with a “web:” line, "
        "or an app.py or main.py.",
    )


def _wsgi_module(path: Path) -> str | None:
    for name in ("app", "main", "wsgi"):
        if _is_file(path, f"{name}.py"):
            return f"{name}:app"
    # A Django project: manage.py beside the package that holds wsgi.py.
    if _is_file(path, "manage.py"):
        for candidate in sorted(path.glob("*/wsgi.py")):
            if _is_file(path, f"{candidate.parent.name}/wsgi.py"):
                return f"{candidate.parent.name}.wsgi:application"
    return None


def _pyproject_dependencies(path: Path) -> list[str]:
    try:
        data = tomllib.loads(_read(path, "pyproject.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise BuildError("detect_failed", f"pyproject.toml is not valid TOML: {exc}") from None
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise BuildError("detect_failed", "[project].dependencies in pyproject.toml is not a list.")
    return [d.replace("\n", " ") for d in deps]


def _requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        match = REQUIREMENT_NAME_RE.match(line)
        if match:
            names.add(match[1].lower().replace("_", "-"))
    return names


def _node(path: Path) -> _Recipe:
    if not _is_file(path, "package.json"):
        raise _infeasible("node", "package.json")
    try:
        package = json.loads(_read(path, "package.json"))
    except ValueError as exc:
        raise BuildError("detect_failed", f"package.json is not valid JSON: {exc}") from None
    scripts = package.get("scripts") if isinstance(package, dict) else None
    scripts = scripts if isinstance(scripts, dict) else {}
    command, procfile = _node_start(path, "start" in scripts)
    lockfile = _is_file(path, "package-lock.json")
    start = dockerfiles.start_command(command, procfile)
    dockerfile = dockerfiles.node(_base("node"), _port(), lockfile, "build" in scripts, start)
    install = "npm ci" if lockfile else "npm install"
    return _Recipe(dockerfile, f"Node.js (package.json, {install}), started with: {command}")


def _node_start(path: Path, has_start_script: bool) -> tuple[str, bool]:
    web = _procfile_web(path)
    if web:
        return web, True
    # npm start runs `node server.js` when there is no start script but a server.js.
    if has_start_script or _is_file(path, "server.js"):
        return "npm start", False
    raise BuildError(
        "detect_failed",
        "Found a Node.js project but no way to start it: add a “start” script to "
        "package.json, a server.js, or a Procfile with a “web:” line.",
    )


def _go(path: Path) -> _Recipe:
    if not _is_file(path, "go.mod"):
        raise _infeasible("go", "go.mod")
    start = dockerfiles.start_command(dockerfiles.GO_BINARY)
    dockerfile = dockerfiles.go(_base("go"), _port(), _is_file(path, "go.sum"), start)
    return _Recipe(dockerfile, f"Go (go.mod), started with: {dockerfiles.GO_BINARY}")


def _static(path: Path) -> _Recipe:
    if not _is_file(path, "index.html"):
        raise _infeasible("static", "index.html")
    dockerfile = dockerfiles.static(_base("static"), _port())
    return _Recipe(dockerfile, "Static site (index.html), served by busybox httpd")


RECIPES = {"python": _python, "node": _node, "go": _go, "static": _static}
MARKERS = {
    "python": ("requirements.txt", "pyproject.toml"),
    "node": ("package.json",),
    "go": ("go.mod",),
    "static": ("index.html",),
}


# --- files ----------------------------------------------------------------------------


def _write_generated(path: Path, recipe: _Recipe) -> None:
    target = path / GENERATED_DIR
    # A .slipway symlink in the repository must not make us write outside the checkout.
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    target.mkdir(exist_ok=True)
    _write(path, GENERATED_DOCKERFILE, recipe.dockerfile)
    if recipe.requirements is not None:
        _write(path, GENERATED_REQUIREMENTS, recipe.requirements)
    _write_dockerignore(path, recipe.requirements is not None)


def _write_dockerignore(path: Path, keep_requirements: bool) -> None:
    if _is_file(path, ".dockerignore"):
        if keep_requirements:  # the repository's rules might hide our requirements file
            with (path / ".dockerignore").open("a") as fh:
                fh.write(f"\n!{GENERATED_REQUIREMENTS}\n")
        return
    _write(path, ".dockerignore", f".git\n{GENERATED_DOCKERFILE}\n")


def _write(path: Path, name: str, text: str) -> None:
    target = path / name
    if target.is_symlink():
        target.unlink()
    target.write_text(text)


def _is_file(path: Path, name: str) -> bool:
    """A regular file inside the checkout; a symlink counts only if it stays inside."""
    candidate = path / name
    try:
        inside = candidate.resolve().is_relative_to(path.resolve())
    except OSError:
        return False
    return inside and candidate.is_file()


def _read(path: Path, name: str) -> str:
    with (path / name).open("rb") as fh:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise BuildError("detect_failed", f"{name} is larger than 1 MiB.")
    return data.decode("utf-8", "replace")


def _procfile_web(path: Path) -> str | None:
    if not _is_file(path, "Procfile"):
        return None
    match = PROCFILE_WEB_RE.search(_read(path, "Procfile"))
    return match["command"] if match else None


def _infeasible(method: str, needs: str) -> BuildError:
    return BuildError(
        "detect_failed", f"The build method is “{method}” but the repository has no {needs}."
    )


def _base(kind: str) -> str:
    return settings.PAAS_BASE_IMAGES[kind]


def _port() -> int:
    return settings.PAAS_DEFAULT_PORT
