"""The shell scripts' own logic, run by bash."""

import subprocess
import time
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "scripts" / "lib.sh"


def test_load_env_file_keeps_values_that_end_in_equals_signs(tmp_path):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()  # base64 with "=" padding
    env_file = tmp_path / "slipway.env"
    env_file.write_text(f"# a comment\n\nPAAS_ENCRYPTION_KEY={key}\nURL=postgres://a:b@h/db?x=1\n")
    show = 'printf "%s\\n%s" "$PAAS_ENCRYPTION_KEY" "$URL"'
    script = f'source "{LIB}"; load_env_file "{env_file}"; {show}'
    out = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    assert out.splitlines() == [key, "postgres://a:b@h/db?x=1"]


def test_load_env_file_lets_the_environment_win(tmp_path):
    env_file = tmp_path / "slipway.env"
    env_file.write_text("PAAS_DOMAIN=localhost\n")
    script = f'source "{LIB}"; load_env_file "{env_file}"; printf "%s" "$PAAS_DOMAIN"'
    out = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PAAS_DOMAIN": "paas.example.com"},
    ).stdout
    assert out == "paas.example.com"


FAKE_RUN = """trap 'kill $child 2>/dev/null; exit 143' TERM
{listen}
while :; do sleep 0.1; done
"""


def start_fake_run(root: Path, listen: str = "child=") -> subprocess.Popen:
    """A stand-in for a scripts/run already up in the checkout `root` (its cwd, as cd there)."""
    script = root / "scripts" / "run"
    script.parent.mkdir()
    script.write_text(FAKE_RUN.format(listen=listen))
    return subprocess.Popen(["bash", str(script)], cwd=root)


def stop_running_run(root: Path, pidfile: Path, upstream: str) -> str:
    script = (
        f'set -euo pipefail; source "{LIB}"; SLIPWAY_ROOT="{root}"; '
        f'stop_running_run "{pidfile}" "{upstream}"'
    )
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def test_a_second_run_stops_the_one_in_the_pidfile(tmp_path):
    run = start_fake_run(tmp_path)
    try:
        pidfile = tmp_path / "run.pid"
        pidfile.write_text(f"{run.pid}\n")
        out = stop_running_run(tmp_path, pidfile, "127.0.0.1:1")
        assert f"pid {run.pid}" in out
        assert run.wait(timeout=10) == 143
    finally:
        run.kill()


def test_a_second_run_finds_a_run_without_pidfile_by_its_dashboard_port(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen = f"python3 -m http.server {port} --bind 127.0.0.1 >/dev/null 2>&1 & child=$!"
    run = start_fake_run(tmp_path, listen)
    try:
        for _ in range(100):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        out = stop_running_run(tmp_path, tmp_path / "none.pid", f"127.0.0.1:{port}")
        assert f"pid {run.pid}" in out
        assert run.wait(timeout=10) == 143
    finally:
        run.kill()


def test_a_second_run_leaves_a_run_of_another_checkout_alone(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run = start_fake_run(tmp_path / "a")
    try:
        pidfile = tmp_path / "run.pid"
        pidfile.write_text(f"{run.pid}\n")
        assert stop_running_run(tmp_path / "b", pidfile, "127.0.0.1:1") == ""
        assert run.poll() is None
    finally:
        run.kill()
