"""Dockerfiles for the kinds of app Slipway builds without one.

Each works with the official images (python:3.11-slim, node:20-slim, golang:1.22-bookworm,
busybox) and with the offline Debian-built ones, so they use only commands both have.
Dependency manifests are copied and installed before `COPY . .`: a change to the code
alone then rebuilds from the cached dependency layer.
"""

import json

# Where the Go binary goes: not under /app, where a repository's own server/ directory
# would turn `-o /app/server` into a directory and the binary into a file inside it.
GO_BINARY = "/usr/local/bin/server"


def start_command(command: str, procfile: bool = False) -> str:
    """A CMD through `sh -c`, so $PORT expands when the container starts.

    Our own commands get `exec` so the app is PID 1 and receives SIGTERM; a Procfile line
    runs as written (it may chain commands with && or ;).
    """
    script = command if procfile else f"exec {command}"
    return f'CMD ["sh", "-c", {json.dumps(script)}]'


def python(base: str, port: int, requirements: str | None, start: str) -> str:
    """`requirements`: file in the context to install before the code, None = needs the code."""
    env = f"ENV PORT={port} PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1"
    if requirements is None:
        install = ["COPY . .", "RUN pip install -r requirements.txt"]
    else:
        install = [
            f"COPY {requirements} /tmp/slipway-requirements.txt",
            "RUN pip install -r /tmp/slipway-requirements.txt",
            "COPY . .",
        ]
    return _lines(f"FROM {base}", env, "WORKDIR /app", *install, start)


def node(base: str, port: int, lockfile: bool, build_script: bool, start: str) -> str:
    env = (
        f"ENV PORT={port} NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false "
        "NPM_CONFIG_AUDIT=false"
    )
    manifests = "package.json package-lock.json" if lockfile else "package.json"
    install = "npm ci" if lockfile else "npm install"
    build = ["RUN npm run build"] if build_script else []
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


def go(base: str, port: int, has_sum: bool, start: str) -> str:
    manifests = "go.mod go.sum" if has_sum else "go.mod"
    return _lines(
        f"FROM {base}",
        f"ENV PORT={port} CGO_ENABLED=0",
        "WORKDIR /app",
        f"COPY {manifests} ./",
        "RUN go mod download",
        "COPY . .",
        f"RUN go build -o {GO_BINARY} .",
        start,
    )


def static(base: str, port: int) -> str:
    return _lines(
        f"FROM {base}",
        f"ENV PORT={port}",
        "WORKDIR /srv",
        "COPY . /srv",
        start_command("busybox httpd -f -p ${PORT} -h /srv"),
    )


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"
