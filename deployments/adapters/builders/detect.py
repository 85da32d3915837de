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
from deployments.adapters.builders.errors import USER_FAULT_CODES, BuildError
from deployments.adapters.builders.files import (
    GENERATED_DIR,
    is_dir,
    is_file,
    make_generated_dir,
    read,
    write,
)
from deployments.adapters.builders.procfile import read_procfile

__all__ = ["USER_FAULT_CODES", "BuildError", "BuildPlan", "detect"]

METHODS = ("dockerfile", "python", "node", "go", "static")
GENERATED_DOCKERFILE = f"{GENERATED_DIR}/Dockerfile"
GENERATED_REQUIREMENTS = f"{GENERATED_DIR}/requirements.txt"
LOOKED_FOR = "a Dockerfile, requirements.txt, pyproject.toml, package.json, go.mod or index.html"

REQUIREMENT_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# Lines that make pip read other files of the repository (the manifest alone won't do).
NEEDS_CODE_RE = re.compile(r"^\s*(-r|-c|-e|--requirement|--constraint|--editable|\.|/|file:)")
# os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings") in manage.py.
DJANGO_SETTINGS_RE = re.compile(
    r"""["']DJANGO_SETTINGS_MODULE["']\s*,\s*["'](?P<module>[A-Za-z_][\w.]*)["']"""
)


@dataclass
class BuildPlan:
    method: str  # "dockerfile" | "python" | "node" | "go" | "static"
    dockerfile_path: str  # relative to the build context
    description: str  # for people: what was found and how the app starts


@dataclass(frozen=True)
class _Options:
    """What the app's settings ask of a generated Dockerfile."""

    build_command: str = ""
    # Only this decision leaves the env vars: their values are secrets and stay out.
    collectstatic: bool = True
    # The app's start command: the web command, so detection need not find one.
    start_command: str = ""


@dataclass
class _Recipe:
    dockerfile: str
    description: str
    requirements: str | None = None  # content for .slipway/requirements.txt


def detect(
    path: Path,
    method: str = "auto",
    build_command: str = "",
    build_env: dict[str, str] | None = None,
    start_command: str = "",
) -> BuildPlan:
    """The plan to build `path` with; a generated Dockerfile is written into `path`.

    `build_command` runs in a generated Dockerfile once the code is in; `build_env` is the
    environment's variables, read only for DISABLE_COLLECTSTATIC (Heroku's switch);
    `start_command`, when set, is the web command (no detection of one, no error without).
    """
    path = Path(path)
    if method in ("auto", ""):  # a deployment without its own method says ""
        method = _sniff(path)
    elif method not in METHODS:
        raise BuildError("detect_failed", f"Unknown build method “{method}”.")
    if method == "dockerfile":
        return _dockerfile_plan(path, build_command)
    collectstatic = (build_env or {}).get("DISABLE_COLLECTSTATIC") != "1"
    options = _Options(build_command.strip(), collectstatic, start_command.strip())
    recipe = RECIPES[method](path, options)
    _write_generated(path, recipe)
    return BuildPlan(method, GENERATED_DOCKERFILE, recipe.description)


def _sniff(path: Path) -> str:
    if is_file(path, "Dockerfile"):
        return "dockerfile"
    for method, markers in MARKERS.items():
        if any(is_file(path, name) for name in markers):
            return method
    raise BuildError("detect_failed", f"Found none of {LOOKED_FOR} at the repository root.")


def _dockerfile_plan(path: Path, build_command: str) -> BuildPlan:
    if not is_file(path, "Dockerfile"):
        raise BuildError(
            "detect_failed",
            "The build method is “dockerfile” but the repository has no Dockerfile.",
        )
    description = "Dockerfile from the repository"
    if build_command.strip():
        description += " (the build command is not applied: the Dockerfile says how to build)"
    return BuildPlan("dockerfile", "Dockerfile", description)


# --- recipes --------------------------------------------------------------------------


def _python(path: Path, options: _Options) -> _Recipe:
    if is_file(path, "requirements.txt"):
        text = read(path, "requirements.txt")
        deps = _requirement_names(text.splitlines())
        needs_code = any(NEEDS_CODE_RE.match(line) for line in text.splitlines())
        source, generated = (None if needs_code else "requirements.txt"), None
        found = "requirements.txt"
    elif is_file(path, "pyproject.toml"):
        generated = "\n".join(_pyproject_dependencies(path)) + "\n"
        deps = _requirement_names(generated.splitlines())
        source, found = GENERATED_REQUIREMENTS, "pyproject.toml"
    else:
        raise _infeasible("python", "requirements.txt or pyproject.toml")
    django = is_file(path, "manage.py") and "django" in deps
    if options.start_command:
        command, how = options.start_command, "the app's start command"
    else:
        command, how = _python_start(path, "gunicorn" in deps, django)
    collectstatic = django and options.collectstatic
    dockerfile = dockerfiles.python(
        _base("python"),
        _port(),
        source,
        dockerfiles.start_command(command),
        options.build_command,
        collectstatic,
    )
    notes = [_django_note(collectstatic)] if django else []
    started = f"started with: {command} ({how})" if how else f"started with: {command}"
    description = _describe(f"Python ({found})", notes, options, started)
    return _Recipe(dockerfile, description, generated)


def _python_start(path: Path, has_gunicorn: bool, django: bool) -> tuple[str, str]:
    """The web command, and where it came from ("" when it needs no saying)."""
    web = _procfile_web(path)
    if web:
        return web, ""
    if django:
        return _django_start(path, has_gunicorn)
    module = _wsgi_module(path) if has_gunicorn else None
    if module:
        return f"gunicorn --bind 0.0.0.0:$PORT {module}", ""
    for script in ("app.py", "main.py"):
        if is_file(path, script):
            return f"python {script}", ""
    raise BuildError(
        "detect_failed",
        "Found a Python project but no way to start it: set the app's start command, add a "
        "Procfile with a “web:” line, or an app.py or main.py.",
    )


def _django_start(path: Path, has_gunicorn: bool) -> tuple[str, str]:
    # Heroku's rule as well: a Django app without a Procfile is served by gunicorn.
    if not has_gunicorn:
        raise BuildError(
            "detect_failed",
            "Found a Django project (manage.py) but gunicorn is not among its dependencies: "
            "add gunicorn to requirements.txt (Slipway starts Django with gunicorn), or add "
            "a Procfile with a “web:” line.",
        )
    module, how = _django_wsgi_module(path)
    if module is None:
        raise BuildError(
            "detect_failed",
            "Found a Django project (manage.py) but no <project>/wsgi.py to serve: add a "
            "Procfile with a “web:” line.",
        )
    return f"gunicorn --bind 0.0.0.0:$PORT {module}", how


def _django_wsgi_module(path: Path) -> tuple[str | None, str]:
    """The project's WSGI module, from manage.py's settings module, else any */wsgi.py."""
    match = DJANGO_SETTINGS_RE.search(read(path, "manage.py"))
    if match:
        package = _settings_package(match["module"])
        if package and is_file(path, f"{package.replace('.', '/')}/wsgi.py"):
            return f"{package}.wsgi", f"DJANGO_SETTINGS_MODULE {match['module']} in manage.py"
    return _django_wsgi_found(path), "found by its wsgi.py"


def _settings_package(module: str) -> str:
    """`mysite.settings` and `config.settings.production` -> the package beside wsgi.py."""
    parts = module.split(".")
    return ".".join(parts[: parts.index("settings")] if "settings" in parts else parts[:-1])


def _django_wsgi_found(path: Path) -> str | None:
    for candidate in sorted(path.glob("*/wsgi.py")):
        if is_file(path, f"{candidate.parent.name}/wsgi.py"):
            return f"{candidate.parent.name}.wsgi:application"
    return None


def _wsgi_module(path: Path) -> str | None:
    for name in ("app", "main", "wsgi"):
        if is_file(path, f"{name}.py"):
            return f"{name}:app"
    # A Django layout whose requirements do not name Django: manage.py beside wsgi.py.
    return _django_wsgi_found(path) if is_file(path, "manage.py") else None


def _django_note(collectstatic: bool) -> str:
    if collectstatic:
        return "Django: collectstatic runs at build (DISABLE_COLLECTSTATIC=1 skips it)"
    return "Django: collectstatic skipped (DISABLE_COLLECTSTATIC=1)"


def _pyproject_dependencies(path: Path) -> list[str]:
    try:
        data = tomllib.loads(read(path, "pyproject.toml"))
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


def _node(path: Path, options: _Options) -> _Recipe:
    if not is_file(path, "package.json"):
        raise _infeasible("node", "package.json")
    try:
        package = json.loads(read(path, "package.json"))
    except ValueError as exc:
        raise BuildError("detect_failed", f"package.json is not valid JSON: {exc}") from None
    scripts = package.get("scripts") if isinstance(package, dict) else None
    scripts = scripts if isinstance(scripts, dict) else {}
    command = options.start_command or _node_start(path, "start" in scripts)
    lockfile = is_file(path, "package-lock.json")
    start = dockerfiles.start_command(command)
    dockerfile = dockerfiles.node(
        _base("node"), _port(), lockfile, "build" in scripts, start, options.build_command
    )
    install = "npm ci" if lockfile else "npm install"
    found = f"Node.js (package.json, {install})"
    description = _describe(found, [], options, f"started with: {command}")
    return _Recipe(dockerfile, description)


def _node_start(path: Path, has_start_script: bool) -> str:
    web = _procfile_web(path)
    if web:
        return web
    # npm start runs `node server.js` when there is no start script but a server.js.
    if has_start_script or is_file(path, "server.js"):
        return "npm start"
    raise BuildError(
        "detect_failed",
        "Found a Node.js project but no way to start it: set the app's start command, add a "
        "“start” script to package.json, a server.js, or a Procfile with a “web:” line.",
    )


def _go(path: Path, options: _Options) -> _Recipe:
    if not is_file(path, "go.mod"):
        raise _infeasible("go", "go.mod")
    # `go mod vendor` writes vendor/modules.txt; without it vendor/ is just a directory.
    vendored = is_dir(path, "vendor") and is_file(path, "vendor/modules.txt")
    start = dockerfiles.start_command(dockerfiles.GO_BINARY)
    dockerfile = dockerfiles.go(
        _base("go"), _port(), is_file(path, "go.sum"), start, vendored, options.build_command
    )
    notes = ["vendor/ used: go build -mod=vendor, no download"] if vendored else []
    started = f"started with: {dockerfiles.GO_BINARY}"
    return _Recipe(dockerfile, _describe("Go (go.mod)", notes, options, started))


def _static(path: Path, options: _Options) -> _Recipe:
    if not is_file(path, "index.html"):
        raise _infeasible("static", "index.html")
    dockerfile = dockerfiles.static(_base("static"), _port(), options.build_command)
    served = "served by busybox httpd"
    return _Recipe(dockerfile, _describe("Static site (index.html)", [], options, served))


def _describe(found: str, notes: list[str], options: _Options, started: str) -> str:
    """For people: what was found, what the build adds, and how the app starts."""
    if options.build_command:
        notes = [*notes, f"build command: {options.build_command}"]
    return ", ".join([found, *notes, started])


RECIPES = {"python": _python, "node": _node, "go": _go, "static": _static}
MARKERS = {
    "python": ("requirements.txt", "pyproject.toml"),
    "node": ("package.json",),
    "go": ("go.mod",),
    "static": ("index.html",),
}


# --- files ----------------------------------------------------------------------------


def _write_generated(path: Path, recipe: _Recipe) -> None:
    make_generated_dir(path)
    write(path, GENERATED_DOCKERFILE, recipe.dockerfile)
    if recipe.requirements is not None:
        write(path, GENERATED_REQUIREMENTS, recipe.requirements)
    _write_dockerignore(path, recipe.requirements is not None)


def _write_dockerignore(path: Path, keep_requirements: bool) -> None:
    if is_file(path, ".dockerignore"):
        if keep_requirements:  # the repository's rules might hide our requirements file
            with (path / ".dockerignore").open("a") as fh:
                fh.write(f"\n!{GENERATED_REQUIREMENTS}\n")
        return
    write(path, ".dockerignore", f".git\n{GENERATED_DOCKERFILE}\n")


def _procfile_web(path: Path) -> str | None:
    return read_procfile(path).get("web")


def _infeasible(method: str, needs: str) -> BuildError:
    return BuildError(
        "detect_failed", f"The build method is “{method}” but the repository has no {needs}."
    )


def _base(kind: str) -> str:
    return settings.PAAS_BASE_IMAGES[kind]


def _port() -> int:
    return settings.PAAS_DEFAULT_PORT
