"""The shell scripts' own logic, run by bash."""

import subprocess
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
