"""The Procfile (one process type per `name: command` line) and how its commands run.

A command runs through `sh -c` so that $PORT expands when the container starts. When the
command is a simple command (or the last of an `&&`/`;` chain), `exec` makes the app
replace the shell: it is then the process that receives SIGTERM on stop (tini passes it
on), not a shell that ignores it.
"""

import re
from pathlib import Path

from deployments.adapters.builders.errors import BuildError
from deployments.adapters.builders.files import is_file, read

PROCFILE = "Procfile"
PROCESS_LINE_RE = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\s*:\s*(?P<command>.*?)\s*$")
# Anything that makes the line more than one command: after `exec` only the first would
# replace the shell and the rest would never run. `${PORT}` is expansion, not `$(`.
SHELL_OPERATOR_RE = re.compile(r"&&|\|\||[;|&<>`\n]|\$\(")
# Leading `NAME=value` words (unquoted values only: a quoted one may hold spaces).
ASSIGNMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^\s'\"]*$")
LEADING_ASSIGNMENTS_RE = re.compile(r"^((?:[A-Za-z_][A-Za-z0-9_]*=[^\s'\"]*\s+)*)(.*)$", re.DOTALL)
# First words that `exec` cannot run: shell syntax and builtins, not programs.
NOT_A_PROGRAM = frozenset(
    "! { ( if then else elif fi for while until do done case esac function "
    ". : cd eval exec export set source ulimit umask unset alias".split()
    # Builtins too: `exec exit 7` is "exit: not found", 127 (a release ending in `exit 7`
    # reported 127).
    + "exit return break continue shift trap readonly times wait read getopts local".split()
)


def parse_procfile(text: str) -> dict[str, str]:
    """Process type -> command, for every `name: command` line; # comments are skipped."""
    processes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, command = _process_line(number, line)
        if name in processes:
            raise _invalid(number, f"process type “{name}” is defined twice")
        processes[name] = command
    return processes


def read_procfile(path: Path) -> dict[str, str]:
    """The checkout's Procfile, parsed; {} when there is none (or it leads outside)."""
    if not is_file(Path(path), PROCFILE):
        return {}
    return parse_procfile(read(Path(path), PROCFILE))


def is_simple_command(command: str) -> bool:
    """One command with its arguments: no operator, redirection or command substitution."""
    words = command.split()
    program = next((w for w in words if not ASSIGNMENT_RE.match(w)), None)
    if program is None or SHELL_OPERATOR_RE.search(command.strip()):
        return False
    # A word with "=" here is an assignment we cannot split safely (a quoted value).
    if "=" in program or program.startswith(("(", "{")):
        return False
    return program not in NOT_A_PROGRAM


def shell_command(command: str) -> list[str]:
    """The argv that runs `command`: the app replaces the shell when it is a simple command,
    or the last of a chain (`a && b`, `a; b`: b replaces the shell once a is done)."""
    command = command.strip()
    if is_simple_command(command):
        return ["sh", "-c", _with_exec(command)]
    cut = _last_link(command)
    if cut is not None and is_simple_command(command[cut:]):
        return ["sh", "-c", f"{command[:cut]} {_with_exec(command[cut:].strip())}"]
    return ["sh", "-c", command]


def _last_link(command: str) -> int | None:
    """Where the last command of a plain `&&`/`;` chain starts; None for anything else at
    the top level (pipes, background jobs, subshells, substitutions), where a shell must stay."""
    quote, escaped, cut, index = "", False, None, 0
    while index < len(command):
        char = command[index]
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif command.startswith("&&", index):
            cut, index = index + 2, index + 1
        elif char == ";":
            cut = index + 1
        elif char in "|&`()<>{}" or command.startswith("$(", index):
            return None
        index += 1
    return None if quote or escaped else cut


def _with_exec(command: str) -> str:
    # `FOO=1 exec app` keeps the assignment for the app; `exec FOO=1 app` would fail.
    match = LEADING_ASSIGNMENTS_RE.match(command)
    return f"{match[1]}exec {match[2]}"


def _process_line(number: int, line: str) -> tuple[str, str]:
    match = PROCESS_LINE_RE.match(line.strip())
    if not match:
        raise _invalid(number, "expected “name: command” (name: letters, digits, - and _)")
    if not match["command"]:
        raise _invalid(number, f"process type “{match['name']}” has no command")
    return match["name"], match["command"]


def _invalid(number: int, problem: str) -> BuildError:
    return BuildError("procfile_invalid", f"Procfile line {number}: {problem}.")
