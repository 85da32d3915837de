"""Stop a RUN step whose container layer grows past PAAS_BUILD_DISK_MAX_BYTES, while it runs.

overlay2 can cap a container's layer only on XFS with pquota, and the build API takes no
storage option anyway, so a step writing 100 GB would fill the host's disk before the
image size check after the build. Instead a thread asks the engine, every POLL_SECONDS,
for the writable-layer size of this build's running containers (the subdirectories of its
cgroup parent, build_cgroup.py) and kills one over the cap: the step fails, the builder
removes its container (forcerm) and commits nothing. A fast writer may go past the cap
by what it writes in one poll interval; the final image size check still stands.
"""

from __future__ import annotations

import threading

import docker
import requests
from docker.errors import APIError, DockerException

from deployments.adapters.builders.build_cgroup import BuildCgroup
from deployments.adapters.builders.build_limits import human_size
from deployments.adapters.builders.errors import BuildError

POLL_SECONDS = 1.0


class DiskWatch:
    """A context manager: the watching thread runs while the build does.

    It shares the build's client. BuildRequest's session params and response hook are for
    /build only: listing and killing containers ignore the extra query parameters, and
    the hook keeps no response but the build's.
    """

    def __init__(self, client: docker.DockerClient, cgroup: BuildCgroup, cap: int):
        self.api = client.api
        self.cgroup = cgroup
        self.cap = cap
        self.exceeded = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> DiskWatch:
        self.thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stopped.set()
        self.thread.join()

    def check(self) -> None:
        """Kill each of the build's containers whose layer is over the cap now."""
        ids = self.cgroup.container_ids()
        if not ids:
            return
        for container in self.api.containers(filters={"id": ids}, size=True):
            if container.get("SizeRw", 0) > self.cap:
                self.exceeded.set()  # before the kill: the step's failure must read it
                self._kill(container["Id"])

    def disk_error(self, failure: str) -> BuildError:
        return BuildError(
            "build_disk_exceeded",
            f"A build step was stopped: it wrote more than {human_size(self.cap)} to its "
            "image layer (PAAS_BUILD_DISK_MAX_BYTES). Keep downloads and build artefacts small, "
            f"and delete them in the same RUN that makes them.\n{failure}",
        )

    def _watch(self) -> None:
        while not self.stopped.wait(POLL_SECONDS):
            try:
                self.check()
            except (DockerException, requests.RequestException):
                pass  # an engine in trouble fails the build itself; try again next poll

    def _kill(self, container_id: str) -> None:
        try:
            self.api.kill(container_id)
        except APIError:
            pass  # the step ended meanwhile; the image size check is left
