"""Dockerfiles for the kinds of app Slipway builds without one.

Each works with the official images (python:3.11-slim, node:20-slim, golang:1.22-bookworm,
busybox) and with the offline Debian-built ones, so they use only commands both have.
Dependency manifests are copied and installed before `COPY . .`: a change to the code
alone then rebuilds from the cached dependency layer.
"""

import json

from deployments.adapters.builders.procfile import shell_command

# Where the Go binary goes: not under /app, where a repository's own server/ directory
# would turn `-o /app/server` into a directory and the binary into a file inside it.
GO_BINARY = "/usr/local/bin/server"


COLLECTSTATIC = (
    "RUN python manage.py collectstatic --noinput || "
    '(echo "collectstatic failed: set DISABLE_COLLECTSTATIC=1 to skip it" >&2; exit 1)'
)


def start_command(command: str) -> str:
    """A CMD through `sh -c`, so $PORT expands when the container starts.

    The app replaces the shell (`exec`) and receives SIGTERM when it is a simple command or
    the last of an `&&`/`;` chain (procfile.shell_command); a pipe or the like runs as written.
    """
    return f"CMD {json.dumps(shell_command(command))}"


def build_step(command: str) -> list[str]:
    """The user's build command as a RUN; exec form, so a newline in it stays one step."""
    return [f"RUN {json.dumps(['sh', '-c', command])}"] if command else []


def python(
    base: str,
    port: int,
    requirements: str | None,
    start: str,
    build_command: str = "",
    collectstatic: bool = False,
) -> str:
    """`requirements`: file in the context to install before the code, None = needs the code.

    The build command runs before collectstatic, so assets it makes are collected too.
    """
    env = f"ENV PORT={port} PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1"
    if requirements is None:
        install = ["COPY . .", "RUN pip install -r requirements.txt"]
    else:
        install = [
            f"COPY {requirements} /tmp/slipway-requirements.txt",
            "RUN pip install -r /tmp/slipway-requirements.txt",
            "COPY . .",
        ]
    static = [COLLECTSTATIC] if collectstatic else []
    return _lines(
        f"FROM {base}", env, "WORKDIR /app", *install, *build_step(build_command), *static, start
    )


def node(
    base: str, port: int, lockfile: bool, build_script: bool, start: str, build_command: str = ""
) -> str:
    """The user's build command replaces `npm run build` (which it usually is)."""
    env = (
        f"ENV PORT={port} NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false "
        "NPM_CONFIG_AUDIT=false"
    )
    manifests = "package.json package-lock.json" if lockfile else "package.json"
    install = "npm ci" if lockfile else "npm install"
    build = build_step(build_command) or (["RUN npm run build"] if build_script else [])
    return _lines(
        f"FROM {base}",
        env,
        "WORKDIR /app",
        f"COPY {manifests} ./",
        f"RUN {install}",
        "COPY . .",
        *build,
        start,
    )


def go(
    base: str, port: int, has_sum: bool, start: str, vendored: bool = False, build_command: str = ""
) -> str:
    """`vendored`: vendor/modules.txt holds every module, so nothing is downloaded.

    GOPROXY=off then makes a module missing from vendor/ an error, not a network attempt.
    """
    manifests = "go.mod go.sum" if has_sum else "go.mod"
    if vendored:
        env, download, flags = f"ENV PORT={port} CGO_ENABLED=0 GOPROXY=off", [], "-mod=vendor "
    else:
        env, download, flags = f"ENV PORT={port} CGO_ENABLED=0", ["RUN go mod download"], ""
    return _lines(
        f"FROM {base}",
        env,
        "WORKDIR /app",
        f"COPY {manifests} ./",
        *download,
        "COPY . .",
        *build_step(build_command),
        f"RUN go build {flags}-o {GO_BINARY} .",
        start,
    )


def static(base: str, port: int, build_command: str = "") -> str:
    return _lines(
        f"FROM {base}",
        f"ENV PORT={port}",
        "WORKDIR /srv",
        "COPY . /srv",
        *build_step(build_command),
        start_command("busybox httpd -f -p ${PORT} -h /srv"),
    )


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"
