"""Reading and writing inside a checkout without ever leaving it.

A repository may hold symlinks to anywhere on the host: a file counts only when it
resolves inside the checkout, so a symlinked "manifest" never puts a host file in a log,
and what we write never lands outside through a symlinked directory.
"""

from pathlib import Path

from deployments.adapters.builders.errors import BuildError

GENERATED_DIR = ".slipway"
MAX_MANIFEST_BYTES = 1024 * 1024


def is_file(path: Path, name: str) -> bool:
    """A regular file inside the checkout; a symlink counts only if it stays inside."""
    candidate = path / name
    try:
        inside = candidate.resolve().is_relative_to(path.resolve())
    except OSError:
        return False
    return inside and candidate.is_file()


def is_dir(path: Path, name: str) -> bool:
    """A directory inside the checkout, by the same rule as is_file."""
    candidate = path / name
    try:
        inside = candidate.resolve().is_relative_to(path.resolve())
    except OSError:
        return False
    return inside and candidate.is_dir()


def read(path: Path, name: str) -> str:
    """The text of a file that is_file() accepted, at most 1 MiB."""
    with (path / name).open("rb") as fh:
        data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise BuildError("detect_failed", f"{name} is larger than 1 MiB.")
    return data.decode("utf-8", "replace")


def make_generated_dir(path: Path) -> None:
    target = path / GENERATED_DIR
    # A .slipway symlink in the repository must not make us write outside the checkout.
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    target.mkdir(exist_ok=True)


def write(path: Path, name: str, text: str) -> None:
    target = path / name
    if target.is_symlink():
        target.unlink()
    target.write_text(text)


def ignore_in_context(path: Path, name: str) -> None:
    """Keep a file we generated out of the build context's COPY . ."""
    if is_file(path, ".dockerignore"):
        if name in read(path, ".dockerignore").splitlines():
            return  # a second build of the same checkout: the same context as the first
        with (path / ".dockerignore").open("a") as fh:
            fh.write(f"\n{name}\n")
    else:
        write(path, ".dockerignore", f"{name}\n")
