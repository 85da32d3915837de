"""The Procfile parser, and how a command is run so that the app itself gets SIGTERM."""

import os
import subprocess

import pytest

from deployments.adapters.builders import (
    BuildError,
    is_simple_command,
    parse_procfile,
    read_procfile,
    shell_command,
)


def test_every_line_is_a_process_type():
    text = (
        "# processes\n"
        "web: gunicorn app:app --bind 0.0.0.0:$PORT\n"
        "\n"
        "worker:celery -A proj worker\r\n"
        "  release :  python manage.py migrate  \n"
        "clock_2-b: python clock.py\n"
    )
    assert parse_procfile(text) == {
        "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "worker": "celery -A proj worker",
        "release": "python manage.py migrate",
        "clock_2-b": "python clock.py",
    }


def test_an_empty_procfile_has_no_process():
    assert parse_procfile("# nothing yet\n\n") == {}


def test_a_command_keeps_its_own_colons():
    assert parse_procfile("web: gunicorn 'site.app:create()'\n") == {
        "web": "gunicorn 'site.app:create()'"
    }


@pytest.mark.parametrize(
    "text,line,says",
    [
        ("web: a\nweb: b\n", 2, "defined twice"),
        ("web: a\njust a command\n", 2, "name: command"),
        ("# c\n\nweb:\n", 3, "has no command"),
        ("web:   \n", 1, "has no command"),
        ("my web: a\n", 1, "name: command"),
        ("web.1: a\n", 1, "name: command"),
        (": a\n", 1, "name: command"),
    ],
)
def test_a_malformed_procfile_is_the_users_to_fix(text, line, says):
    with pytest.raises(BuildError) as info:
        parse_procfile(text)
    assert (info.value.code, info.value.user_fault) == ("procfile_invalid", True)
    assert f"Procfile line {line}:" in info.value.message
    assert says in info.value.message


def test_no_procfile_is_no_process(tmp_path):
    assert read_procfile(tmp_path) == {}


def test_the_procfile_is_read_from_the_checkout(tmp_path):
    (tmp_path / "Procfile").write_text("web: python app.py\nworker: python work.py\n")
    assert read_procfile(tmp_path) == {"web": "python app.py", "worker": "python work.py"}


def test_a_procfile_that_leads_out_of_the_checkout_is_not_read(tmp_path):
    (tmp_path / "host-file").write_text("web: secret\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Procfile").symlink_to(tmp_path / "host-file")
    assert read_procfile(repo) == {}


def test_a_procfile_directory_is_no_procfile(tmp_path):
    (tmp_path / "Procfile").mkdir()
    assert read_procfile(tmp_path) == {}


# --- shell_command --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "gunicorn --bind 0.0.0.0:$PORT app:app",
        "busybox httpd -f -p ${PORT} -h /srv",
        "gunicorn 'site.app:create()'",
        "python -c 'print(1)'",
        "WEB_CONCURRENCY=3 gunicorn app:app",
    ],
)
def test_a_simple_command_replaces_the_shell(command):
    assert is_simple_command(command)
    assert shell_command(command)[:2] == ["sh", "-c"]
    assert "exec " in shell_command(command)[2]


@pytest.mark.parametrize(
    "command",
    [
        "a || b",
        "a | b",
        "a &",
        "a > log",
        "a < input",
        "echo $(date)",
        "echo `date`",
        "a\nb",
        "cd app",
        "exit 7",
        "exec gunicorn app:app",
        "(a)",
        'FOO="a b" app',
        "",
    ],
)
def test_anything_else_runs_as_written(command):
    assert not is_simple_command(command)
    assert shell_command(command) == ["sh", "-c", command]


@pytest.mark.parametrize(
    "command,argv",
    [
        ("python migrate.py && gunicorn app:app", "python migrate.py && exec gunicorn app:app"),
        ("a; b --x", "a; exec b --x"),
        ("a && B=1 b", "a && B=1 exec b"),
        ("a && (b)", "a && (b)"),
        ("echo migrating && exit 7", "echo migrating && exit 7"),  # a builtin: no exec
        ("a && b | c", "a && b | c"),
        ("echo 'x && y'", "echo 'x && y'"),  # quoted: no chain, and not simple either
    ],
)
def test_the_last_command_of_a_plain_chain_replaces_the_shell(command, argv):
    assert shell_command(command) == ["sh", "-c", argv]


def test_exec_comes_after_leading_assignments():
    assert shell_command("A=1 B=2 app --x") == ["sh", "-c", "A=1 B=2 exec app --x"]
    assert shell_command("  app  ") == ["sh", "-c", "exec app"]


def test_the_app_is_the_shells_replacement():
    """With exec the app takes the shell's process: its parent is whoever started the shell
    (tini, in a container), so the SIGTERM sent on stop reaches it."""
    simple = _run(shell_command("FOO=bar sh -c 'echo $PPID $FOO'"))
    assert simple == f"{os.getpid()} bar"
    chained = _run(shell_command("true && sh -c 'echo $PPID'"))
    assert chained == str(os.getpid())  # the chain's last command replaces the shell too
    piped = _run(shell_command("sh -c 'echo $PPID' | cat"))
    assert piped != str(os.getpid())  # a pipe keeps the shell between


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
