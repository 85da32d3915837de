"""The test installation's Traefik as a process: find it, SIGKILL it, start it again.

scripts/test starts it with `scripts/services traefik`, which writes its pid to
var/run/traefik-<instance>.pid and runs `.venv/bin/traefik --configFile=<that config>`;
start() runs the very same command, so a restarted Traefik is the one scripts/test makes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services"
VAR = ROOT / "var"  # scripts/lib.sh's SLIPWAY_VAR


def config_path(instance: str | None = None) -> Path:
    return VAR / "traefik" / (instance or settings.PAAS_INSTANCE) / "traefik.yml"


def pidfile(instance: str | None = None) -> Path:
    return VAR / "run" / f"traefik-{instance or settings.PAAS_INSTANCE}.pid"


def ping(timeout: float = 1.0) -> bool:
    try:
        response = requests.get(f"{settings.PAAS_ROUTER_API_URL}/ping", timeout=timeout)
    except requests.RequestException:
        return False
    return response.status_code == 200


def find() -> int | None:
    """The pid of this installation's Traefik: the pidfile's, if that process is still the
    traefik running our config (not a zombie, not a reused pid)."""
    try:
        pid = int(pidfile().read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _is_our_traefik(pid) else None


def kill(timeout: float = 10.0) -> int:
    """SIGKILL it (no shutdown of any kind) and wait until it is gone; returns its pid."""
    pid = find()
    assert pid is not None, f"no running Traefik for {pidfile()}"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _is_our_traefik(pid) or ping(timeout=0.2):
        assert time.monotonic() < deadline, f"Traefik {pid} still there {timeout} s after SIGKILL"
        time.sleep(0.02)
    return pid


def start(timeout: float = 60.0) -> int:
    """Start it the way scripts/test does (`scripts/services traefik`); returns its pid."""
    result = subprocess.run(
        [str(SERVICES), "traefik"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pid = find()
    assert pid is not None and ping(), result.stdout + result.stderr
    return pid


def restart() -> int:
    kill()
    return start()


def _is_our_traefik(pid: int) -> bool:
    proc = Path("/proc") / str(pid)
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
        state = next(
            line for line in (proc / "status").read_text().splitlines() if line.startswith("State:")
        )
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return False
    if "Z" in state.split()[1]:  # killed, not yet reaped
        return False
    return f"--configFile={config_path()}".encode() in argv
