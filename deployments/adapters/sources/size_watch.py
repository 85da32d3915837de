"""Stop whatever writes a directory past a size: git has no option that caps what a fetch
and a checkout write (its limits are the server's, receive.maxInputSize), so a thread
measures the directory while git runs and, past the limit, kills every process working in
it. The directory is a build directory of its own (one per deployment attempt), so a
process whose working directory is inside it is one of this fetch's git processes.

It overshoots by at most what git writes in one POLL_SECONDS; the size is measured once
more when the watch ends, so a fetch that finished between two polls is caught too.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

POLL_SECONDS = 0.2
PROC = Path("/proc")


class SizeWatch:
    """`with SizeWatch(root, max_bytes) as watch: ...`, then `watch.tripped`. 0: no limit."""

    def __init__(self, root: Path, max_bytes: int, poll: float = POLL_SECONDS):
        self.root, self.max_bytes, self.poll = Path(root), max_bytes, poll
        self.tripped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="size-watch", daemon=True)

    def __enter__(self) -> SizeWatch:
        if self.max_bytes > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.max_bytes <= 0:
            return
        self._stop.set()
        self._thread.join()
        if not self.tripped and directory_size(self.root) > self.max_bytes:
            self.tripped = True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            if self.tripped or directory_size(self.root) > self.max_bytes:
                # Every round after the first too: GitPython may start the next command
                # before it notices that this one died.
                self.tripped = True
                kill_processes_in(self.root)


def directory_size(root: Path) -> int:
    """Bytes of the files under `root` (apparent sizes; links not followed)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass  # a temporary file git renamed or removed meanwhile
    return total


def kill_processes_in(root: Path) -> int:
    """SIGKILL every process of ours whose working directory is `root` or below it."""
    inside = str(root.resolve())
    killed = 0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")  # another user's process: PermissionError
        except OSError:
            continue
        if cwd == inside or cwd.startswith(inside + os.sep):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass  # it ended meanwhile
    return killed
