"""Archive source: a .tar.gz (or plain .tar) a user uploaded, unpacked into the build dir.

An archive is hostile input, so everything is checked before a byte is written: every
entry's name, type and size, the entry count, the total size, and where each symlink
points. Only then does tarfile extract it — with filter="data" as a second line of
defence, not the first.

Rules, and why:
- Names are relative, without `..`, and unique: a later entry replacing an earlier one is
  how link tricks swap a directory for a link.
- Only files, directories and symlinks. Devices and fifos have no place in source code.
- No hardlinks at all. Source archives (git archive, GitHub tarballs) have none, and a
  hardlink is a second name for an inode: one pointing at a file that a later entry or a
  symlink redirects is the root of several tarfile escapes (CVE-2025-4517 among them).
- A symlink's target is relative, stays inside the tree, and goes through no other
  symlink; no entry's path goes through a symlink either. Then resolving a path by its
  text is the same as resolving it on disk, which is what makes the check sound.
- The decompressed stream is capped too, so a tiny gzip cannot make tarfile read
  gigabytes (tarfile reads a pax header into memory whole).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from deployments.adapters.sources.git import SourceError, clear_dest

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 20_000
GZIP_MAGIC = b"\x1f\x8b"
# Headers and padding on top of the members' data: a 512-byte header per entry, padding
# up to 512 bytes, plus room for long names (pax / GNU headers).
HEADER_ALLOWANCE_PER_ENTRY = 1024
HEADER_ALLOWANCE = 1024 * 1024
MAX_SINGLE_READ = 1024 * 1024  # tarfile reads headers whole; nothing legitimate is bigger


def archive_limits() -> tuple[int, int]:
    """(max_bytes, max_entries) from the settings."""
    return (
        getattr(settings, "PAAS_ARCHIVE_MAX_BYTES", DEFAULT_MAX_BYTES),
        getattr(settings, "PAAS_ARCHIVE_MAX_ENTRIES", DEFAULT_MAX_ENTRIES),
    )


def invalid(message: str) -> SourceError:
    return SourceError("invalid_archive", message)


@dataclass
class Entry:
    member: tarfile.TarInfo
    path: PurePosixPath  # where it lands under dest, the wrapping directory stripped


@dataclass
class ArchivePlan:
    entries: list[Entry]
    files: int
    total_bytes: int


def inspect_archive(archive_path: Path, max_bytes: int, max_entries: int) -> ArchivePlan:
    """Check the whole archive without writing anything; raise SourceError if it is unsafe."""
    with _open(archive_path, max_bytes, max_entries) as tar:
        return _plan(tar, max_bytes, max_entries)


def extract_archive(archive_path: Path, dest: Path, max_bytes: int, max_entries: int) -> int:
    """Unpack a checked archive into dest (absent or empty); return the number of files."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} must not exist or be empty")
    existed = dest.exists()
    try:
        with _open(archive_path, max_bytes, max_entries) as tar:
            plan = _plan(tar, max_bytes, max_entries)
            dest.mkdir(parents=True, exist_ok=True)
            _extract(tar, plan, dest)
    except BaseException:
        clear_dest(dest, existed)
        raise
    return plan.files


# --- reading --------------------------------------------------------------------------


class _StreamTooLong(Exception):
    pass


class _CappedReader(io.RawIOBase):
    """A seekable view of the (decompressed) archive that refuses to go past `cap` bytes
    or to read a huge block at once: decompression bombs stop here, early."""

    def __init__(self, raw, cap: int):
        self.raw, self.cap = raw, cap

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_SINGLE_READ:
            raise _StreamTooLong("an entry header is too large")
        if self.raw.tell() + size > self.cap:
            raise _StreamTooLong("the unpacked archive is too large")
        return self.raw.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # Checked before seeking too: a forward seek in a gzip stream decompresses up to it.
        if whence == io.SEEK_SET and offset > self.cap:
            raise _StreamTooLong("the unpacked archive is too large")
        target = self.raw.seek(offset, whence)
        if target > self.cap:
            raise _StreamTooLong("the unpacked archive is too large")
        return target

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()


# Whatever a broken or hostile archive makes tarfile, gzip or zlib raise while reading.
_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, _StreamTooLong)


class _open:
    """tarfile.open on the capped stream, with read errors turned into invalid_archive."""

    def __init__(self, archive_path: Path, max_bytes: int, max_entries: int):
        self.path, self.max_bytes, self.max_entries = Path(archive_path), max_bytes, max_entries

    def __enter__(self) -> tarfile.TarFile:
        size = self.path.stat().st_size
        if size > self.max_bytes:
            raise invalid(f"The archive is larger than {_mib(self.max_bytes)}.")
        cap = self.max_bytes + HEADER_ALLOWANCE + HEADER_ALLOWANCE_PER_ENTRY * self.max_entries
        self.file = self.path.open("rb")
        gzipped = self.file.read(2) == GZIP_MAGIC
        self.file.seek(0)
        raw = gzip.GzipFile(fileobj=self.file, mode="rb") if gzipped else self.file
        self.stream = _CappedReader(raw, cap)
        try:
            self.tar = tarfile.open(fileobj=self.stream, mode="r:")
        except _READ_ERRORS as exc:
            self._close()
            if isinstance(exc, _StreamTooLong):
                raise invalid(f"The archive cannot be read: {exc}.") from None
            raise invalid("This is not a .tar.gz or .tar archive.") from None
        return self.tar

    def _close(self) -> None:
        self.stream.close()
        self.file.close()  # GzipFile does not close a file object it was given

    def __exit__(self, exc_type, exc, tb):
        self.tar.close()
        self._close()
        if exc_type is not None and issubclass(exc_type, _READ_ERRORS):
            raise invalid(f"The archive cannot be read: {_reason(exc)}.") from None
        return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, _StreamTooLong):
        return str(exc)
    if isinstance(exc, tarfile.FilterError):
        return f"an entry was refused by the safety filter ({exc})"
    return "it is damaged or truncated"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


# --- checking -------------------------------------------------------------------------


def _plan(tar: tarfile.TarFile, max_bytes: int, max_entries: int) -> ArchivePlan:
    members, total = _read_members(tar, max_bytes, max_entries)
    paths = [_member_path(m) for m in members]
    kept = [(m, p) for m, p in zip(members, paths, strict=True) if p is not None]
    if not kept:
        raise invalid("The archive is empty.")
    kept = _strip_wrapper(kept)
    _check_unique([p for _, p in kept])
    _check_links(kept)
    entries = [Entry(m, p) for m, p in kept]
    files = sum(1 for e in entries if e.member.isreg())
    return ArchivePlan(entries, files, total)


def _read_members(tar, max_bytes: int, max_entries: int) -> tuple[list[tarfile.TarInfo], int]:
    """Every member, checked one at a time so a limit stops the reading right there."""
    members, total = [], 0
    for member in tar:
        members.append(member)
        if len(members) > max_entries:
            raise invalid(f"The archive has more than {max_entries} entries.")
        _check_type(member)
        total += member.size if member.isreg() else 0
        if total > max_bytes:
            raise invalid(f"The archive unpacks to more than {_mib(max_bytes)}.")
    return members, total


def _check_type(member: tarfile.TarInfo) -> None:
    name = member.name
    if member.islnk():
        raise invalid(f"“{name}” is a hard link; archives with hard links are not accepted.")
    if member.ischr() or member.isblk():
        raise invalid(f"“{name}” is a device file.")
    if member.isfifo():
        raise invalid(f"“{name}” is a named pipe (fifo).")
    if member.issparse():
        raise invalid(f"“{name}” is a sparse file; archives with sparse files are not accepted.")
    if not (member.isreg() or member.isdir() or member.issym()):
        raise invalid(f"“{name}” is of a kind of entry that is not accepted.")


def _member_path(member: tarfile.TarInfo) -> PurePosixPath | None:
    """The member's relative path, or None for the root itself ("." or "./")."""
    name = member.name
    if "\x00" in name or name.startswith("/"):
        raise invalid(f"“{name}” is an absolute path.")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise invalid(f"“{name}” points outside the archive (“..”).")
    return PurePosixPath(*parts) if parts else None


def _strip_wrapper(kept: list[tuple[tarfile.TarInfo, PurePosixPath]]):
    """Drop a single top-level directory that wraps everything (GitHub's tarballs do)."""
    tops = {p.parts[0] for _, p in kept}
    if len(tops) != 1:
        return kept
    top = PurePosixPath(tops.pop())
    if any(p == top and not m.isdir() for m, p in kept):
        return kept  # a lone file or a link, not a wrapping directory
    return [(m, p.relative_to(top)) for m, p in kept if p != top]


def _check_unique(paths: list[PurePosixPath]) -> None:
    seen: set[PurePosixPath] = set()
    for path in paths:
        if path in seen:
            raise invalid(f"“{path}” appears twice in the archive.")
        seen.add(path)


def _check_links(kept: list[tuple[tarfile.TarInfo, PurePosixPath]]) -> None:
    links = {p for m, p in kept if m.issym()}
    for member, path in kept:
        if any(parent in links for parent in path.parents):
            raise invalid(f"“{path}” is inside a symbolic link.")
        if member.issym():
            _check_link_target(path, member.linkname, links)


def _check_link_target(path: PurePosixPath, target: str, links: set[PurePosixPath]) -> None:
    if not target or target.startswith("/") or "\x00" in target:
        raise invalid(f"The link “{path}” points to an absolute path.")
    resolved: list[str] = list(path.parent.parts)
    steps = [part for part in target.split("/") if part not in ("", ".")]
    for index, part in enumerate(steps):
        if part == "..":
            if not resolved:
                raise invalid(f"The link “{path}” points outside the archive.")
            resolved.pop()
            continue
        resolved.append(part)
        if index < len(steps) - 1 and PurePosixPath(*resolved) in links:
            raise invalid(f"The link “{path}” goes through another link.")


# --- extracting -----------------------------------------------------------------------


def _extract(tar: tarfile.TarFile, plan: ArchivePlan, dest: Path) -> None:
    members = [e.member.replace(name=str(e.path), deep=False) for e in plan.entries]
    tar.extractall(dest, members=members, filter="data")
