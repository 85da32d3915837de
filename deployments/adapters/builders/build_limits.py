"""What one build may consume: memory, CPU, time, the context it sends and the image it makes.

Every RUN of the classic builder is a container on the shared engine; without limits a
fork bomb, a 100 GB file or an endless step takes the host down for every tenant. Each
limit is a setting (paas/settings.py) and each breach a named, user-fault error code.
"""

from __future__ import annotations

import socket
import stat
import threading
from pathlib import Path

import docker
import requests
from django.conf import settings
from docker.utils import parse_bytes
from docker.utils.build import exclude_paths

from deployments.adapters.builders.errors import BuildError

CPU_PERIOD = 100_000  # microseconds: the CFS period `docker run --cpus` uses
OOM_EXIT = "returned a non-zero code: 137"  # SIGKILL: what the kernel's OOM killer sends


def container_limits() -> dict[str, int]:
    """The limits of each RUN container, as docker-py's build takes them; memswap equal to
    memory means no swap on top."""
    memory = parse_bytes(settings.PAAS_BUILD_MEMORY)
    return {"memory": memory, "memswap": memory}


def cpu_params() -> dict[str, int]:
    """`--cpus` for the RUN containers. The engine's /build takes cpuquota and cpuperiod,
    but docker-py 7 refuses every container_limits key but four, so these travel as extra
    query parameters (BuildRequest below)."""
    return {"cpuperiod": CPU_PERIOD, "cpuquota": int(settings.PAAS_BUILD_CPUS * CPU_PERIOD)}


def check_context_size(context: Path) -> None:
    """Refuse a context over PAAS_BUILD_CONTEXT_MAX_BYTES before anything is sent: the
    files docker-py would put in the tar (the same .dockerignore reading), stopping at the
    cap rather than walking a huge tree to its end."""
    cap = settings.PAAS_BUILD_CONTEXT_MAX_BYTES
    total = 0
    for relative in exclude_paths(str(context), _dockerignore(context)):
        total += _file_size(context / relative)
        if total > cap:
            raise BuildError(
                "build_context_too_large",
                f"The build context is larger than {human_size(cap)} "
                "(PAAS_BUILD_CONTEXT_MAX_BYTES). Keep large files out of the repository or "
                "list them in .dockerignore.",
            )


def check_image_size(client: docker.DockerClient, tag: str) -> None:
    """Refuse an image over PAAS_IMAGE_MAX_BYTES (base layers included) and remove it."""
    cap = settings.PAAS_IMAGE_MAX_BYTES
    size = client.images.get(tag).attrs.get("Size", 0)
    if size <= cap:
        return
    client.images.remove(tag)  # only the tag when another name holds the same image
    raise BuildError(
        "image_too_large",
        f"The image is {human_size(size)}, more than the {human_size(cap)} allowed "
        "(PAAS_IMAGE_MAX_BYTES, base image included). Remove build caches and artefacts "
        "in the same RUN that makes them, or use a smaller base image.",
    )


def failure_code(error: str) -> str:
    """build_out_of_memory for a step killed by SIGKILL, which in a build step is the
    memory limit's OOM killer; build_failed for anything else."""
    return "build_out_of_memory" if OOM_EXIT in error else "build_failed"


def out_of_memory_hint() -> str:
    return (
        f"A build step was killed (exit code 137): it went over the build's memory limit "
        f"of {settings.PAAS_BUILD_MEMORY} (PAAS_BUILD_MEMORY). Use less memory in the build, "
        "e.g. fewer parallel jobs."
    )


class BuildRequest:
    """Around one `client.api.build(...)`: adds the CPU quota and `params` (the cgroup
    parent) to the request and ends the build at PAAS_BUILD_STEP_TIMEOUT.

    docker-py hides the build's HTTP response inside its generator, and a quiet RUN step
    blocks the read for as long as it runs, so a deadline cannot be checked between
    lines. Instead a timer shuts the connection's socket down: the read returns, and the
    engine, seeing its client gone, cancels the build and removes the step's container.
    The same happens when anything else (Celery's soft time limit) leaves the block.
    Both go through the client's requests session (a response hook, session params), so
    the client must serve no other thread meanwhile (a pipeline has its own) but the
    build's own disk watch, whose requests neither affects.
    """

    def __init__(self, client: docker.DockerClient, seconds: float, params: dict | None = None):
        self.session = client.api
        self.seconds = seconds
        self.params = {**cpu_params(), **(params or {})}
        self.expired = threading.Event()
        self.responses: list[requests.Response] = []
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True
        self.saved_params: dict = {}

    def __enter__(self) -> BuildRequest:
        self.saved_params = dict(self.session.params)
        self.session.params.update(self.params)
        self.session.hooks["response"].append(self._keep)
        self.timer.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.timer.cancel()
        self.session.hooks["response"].remove(self._keep)
        self.session.params = self.saved_params
        if exc_type is not None or self.expired.is_set():
            self._shut_down()  # an abandoned build must not keep running on the engine
        if self.expired.is_set():
            raise BuildError(
                "build_timeout",
                f"The image build took longer than {self.seconds:g}s "
                "(PAAS_BUILD_STEP_TIMEOUT) and was stopped.",
            ) from None

    def _keep(self, response: requests.Response, *args, **kwargs) -> None:
        if response.request.path_url.split("?", 1)[0].endswith("/build"):
            self.responses.append(response)
            if self.expired.is_set():
                self._shut_down()  # the deadline passed while the context was uploading

    def _expire(self) -> None:
        self.expired.set()
        self._shut_down()

    def _shut_down(self) -> None:
        for response in self.responses:
            connection = getattr(response.raw, "connection", None)
            sock = getattr(connection, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # close() alone leaves a blocked read
                except OSError:
                    pass  # already closed


def _dockerignore(context: Path) -> list[str]:
    """The patterns as docker-py reads them for its tar."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _file_size(path: Path) -> int:
    """A regular file's size; a symlink goes into the tar as a link, a directory as a name."""
    try:
        status = path.lstat()
    except OSError:
        return 0
    return status.st_size if stat.S_ISREG(status.st_mode) else 0


def human_size(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"
