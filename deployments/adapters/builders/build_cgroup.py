"""One build's cgroup parent: a pids limit over all its RUN containers, and where to find them.

The classic builder's API has no pids limit, but its /build takes `cgroupparent`, and under
cgroup v1 with the cgroupfs driver the engine puts every RUN container's cgroups under
`<hierarchy>/<parent>/<container id>`. So before the build the worker (root, on the
engine's host) makes the parent in the pids hierarchy and writes `pids.max`; the kernel
counts a parent's limit over all its children, so a fork bomb stops at PAAS_BUILD_PIDS.
The parent's subdirectories are the build's running containers (disk_watch.py reads them).
After the build the engine has removed the containers' cgroups, not the parent's in each
hierarchy (it made the others itself), so all of those go.
"""

from __future__ import annotations

import errno
import time
import uuid
from pathlib import Path

from deployments.adapters.builders.errors import BuildError

CGROUP_ROOT = Path("/sys/fs/cgroup")
NAME_PREFIX = "slipway-build-"
REMOVE_SECONDS = 10.0  # for the engine to remove a cancelled step's container
# What a shell prints when fork() fails with EAGAIN; read only where the kernel keeps no
# pids.peak (before Linux 6.x) to say whether the limit was reached.
FORK_FAILED = ("Cannot fork", "fork: retry", "Resource temporarily unavailable")


class BuildCgroup:
    """A context manager: the parent exists, with its pids limit, while the build runs."""

    def __init__(self, pids_max: int, root: Path = CGROUP_ROOT):
        self.name = f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}"
        self.pids_max = pids_max
        self.root = root

    @property
    def parent(self) -> str:
        """For the build API: absolute, like the engine's own `/docker`, so the same path
        in every hierarchy whatever cgroup the engine itself runs in."""
        return f"/{self.name}"

    @property
    def pids_dir(self) -> Path:
        return self.root / "pids" / self.name

    def __enter__(self) -> BuildCgroup:
        if not (self.root / "pids").is_dir():
            raise _unavailable(f"there is no cgroup v1 pids hierarchy at {self.root / 'pids'}")
        limit = str(self.pids_max) if self.pids_max > 0 else "max"
        try:
            self.pids_dir.mkdir()
            (self.pids_dir / "pids.max").write_text(limit)
        except OSError as exc:
            self.remove()
            raise _unavailable(f"{exc}; the worker must run as root on the engine's host") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.remove()

    def container_ids(self) -> list[str]:
        """The build's containers that have processes now (each has its own child cgroup)."""
        try:
            return [child.name for child in self.pids_dir.iterdir() if child.is_dir()]
        except FileNotFoundError:
            return []

    def pids_exhausted(self, output: str) -> bool:
        """Whether a step reached the limit: the kernel's peak count when it keeps one,
        else the words a failed fork leaves in the step's output."""
        if self.pids_max <= 0:
            return False
        try:
            return int((self.pids_dir / "pids.peak").read_text()) >= self.pids_max
        except (OSError, ValueError):
            return any(words in output for words in FORK_FAILED)

    def pids_error(self, failure: str) -> BuildError:
        return BuildError(
            "build_pids_exceeded",
            f"A build step could not start another process: a build may run at most "
            f"{self.pids_max} at once (PAAS_BUILD_PIDS). Start fewer processes or threads, "
            f"e.g. fewer parallel jobs.\n{failure}",
        )

    def remove(self) -> None:
        """rmdir the parent in every hierarchy, waiting while a container's cgroup is
        still under it; one left after REMOVE_SECONDS stays (empty, it holds nothing)."""
        deadline = time.monotonic() + REMOVE_SECONDS
        for path in self.root.glob(f"*/{self.name}"):
            while not _removed(path) and time.monotonic() < deadline:
                time.sleep(0.2)


def _unavailable(reason: str) -> BuildError:
    return BuildError(
        "build_limits_unavailable",
        f"Builds cannot be limited to PAAS_BUILD_PIDS processes on this host: {reason}.",
        user_fault=False,  # the host is the operator's to fix, not the repository
    )


def _removed(path: Path) -> bool:
    try:
        path.rmdir()  # a cgroup directory goes with rmdir, its control files with it
    except FileNotFoundError:
        return True  # a second name of the same hierarchy (cpu -> cpu,cpuacct)
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return False
        raise
    return True
