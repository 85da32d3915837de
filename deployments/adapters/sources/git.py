"""Git source: validate what users type, then fetch one commit of a repository.

Everything a user types ends up as an argument to git, so validation is strict and the
fetch never puts a secret where git or we might print it: a provider token travels in the
environment (GIT_CONFIG_*), never in argv, the URL or the log.

The fetch is `git init` + `git fetch --depth=1` rather than `git clone`, the way CI
checkouts do it: GitPython can time out a fetch (kill_after_timeout) but not a clone, and
`ls-remote` first tells the default branch and a missing branch apart from other errors.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from deployments.adapters.sources.size_watch import SizeWatch

if TYPE_CHECKING:
    import git

# GitPython (`import git`, which also runs `git version` once) is imported by the functions
# that fetch, which run in the worker only: the web processes validate URLs and branches
# with this module, and would otherwise each hold GitPython for nothing (bench/run --memory).

MAX_URL_LENGTH = 500
MAX_BRANCH_LENGTH = 255
MAX_MESSAGE_LENGTH = 500
CLONE_TIMEOUT_SECONDS = 300
REDACTED = "***"

SHA_RE = re.compile(r"\A[0-9a-fA-F]{7,64}\Z")  # \Z: "$" would pass a final newline
USER_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = re.compile(rf"^{HOST_LABEL}(?:\.{HOST_LABEL})*\.?$")
# user@host:path — git's scp-like syntax (no scheme, no slash before the colon).
SCP_RE = re.compile(r"^(?P<user>[^@/:]+)@(?P<host>[^@/:]+):(?P<path>.*)$")
# <transport>::<address> runs a remote helper; ext:: runs any command.
REMOTE_HELPER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")

# Protocols git may use at all (GIT_ALLOW_PROTOCOL): no ext, fd or other remote helpers, and
# no plain http or git:// (unencrypted). With local repositories allowed (development and
# tests), file and http are added: the test suite's git servers listen on loopback http.
ALLOWED_PROTOCOLS = ("https", "ssh")
LOCAL_PROTOCOLS = ("file", "http")


class SourceError(Exception):
    """A fetch that failed. `code` is stable; the message is safe to show to the user."""

    def __init__(self, code: str, message: str, user_fault: bool = True):
        super().__init__(message)
        self.code = code
        self.message = message
        self.user_fault = user_fault


@dataclass
class FetchedSource:
    path: Path
    commit_sha: str
    commit_message: str
    branch: str


# --- validation -----------------------------------------------------------------------


def validate_repository_url(url: str) -> str:
    """Return the normalized URL of a repository a user may deploy, or raise ValidationError."""
    url = (url or "").strip()
    _check_text(url)
    if url.startswith("-"):
        raise _invalid("A repository URL cannot start with “-”.")
    if REMOTE_HELPER_RE.match(url):
        raise _invalid("Git remote helpers (such as ext::) are not allowed.")
    scp = SCP_RE.match(url) if "://" not in url else None
    if scp:
        return _validate_scp(scp["user"], scp["host"], scp["path"])
    if url.startswith("/"):
        return _validate_local_path(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("https", "ssh"):
        return _validate_network_url(url)
    if scheme == "file":
        return _validate_file_url(url)
    if scheme == "http":
        raise _invalid(
            "Plain http:// sends your code and credentials unencrypted; use https:// instead."
        )
    raise _invalid(
        "Use an https:// URL, an ssh:// URL or git@host:owner/repo.git.", code="unsupported"
    )


def validate_branch(name: str) -> str:
    """Return the branch name (empty = the default branch) or raise ValidationError."""
    if name == "":
        return name
    if len(name) > MAX_BRANCH_LENGTH:
        raise _invalid(f"A branch name has at most {MAX_BRANCH_LENGTH} characters.")
    if name.startswith("-"):
        raise _invalid("A branch name cannot start with “-”.")
    # NUL cannot go into argv; "@{" would let --branch expand @{-1} from the cwd's repo.
    if "\x00" in name or "@{" in name or name == "@":
        raise _invalid("This is not a valid branch name.")
    result = subprocess.run(
        ["git", "check-ref-format", "--branch", name],
        capture_output=True,
        cwd="/",
        timeout=10,
        check=False,
    )
    if result.returncode != 0:
        raise _invalid("This is not a valid branch name.")
    return name


def _invalid(message: str, code: str = "invalid") -> ValidationError:
    return ValidationError(message, code=code)


def _check_text(url: str) -> None:
    if not url:
        raise _invalid("A repository URL is required.", code="required")
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"A repository URL has at most {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise _invalid("A repository URL cannot contain spaces or control characters.")


def _validate_scp(user: str, host: str, path: str) -> str:
    if not USER_RE.match(user):
        raise _invalid("The user in git@host:path holds only letters, digits, “.”, “_” and “-”.")
    _check_host(host)
    if path.startswith("/"):
        raise _invalid("For an absolute path on the server use ssh://user@host/path.")
    _check_path(path)
    return f"{user}@{host.lower()}:{path}"


def _validate_network_url(url: str) -> str:
    parts = _split(url)
    if parts.password is not None or (parts.scheme.lower() == "https" and "@" in parts.netloc):
        raise _invalid(
            "Do not put a user name or password in the URL; connect a provider token instead.",
            code="credentials",
        )
    if parts.username is not None and not USER_RE.match(parts.username):
        raise _invalid(
            "The user in ssh://user@host/path holds only letters, digits, “.”, “_”, “-”."
        )
    try:
        port = parts.port
    except ValueError:
        raise _invalid("The port in the URL is not a number between 1 and 65535.") from None
    if port == 0:
        raise _invalid("The port in the URL is not a number between 1 and 65535.")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _invalid("A repository URL has no query (?) or fragment (#).")
    _check_host(parts.hostname or "", bracketed="[" in parts.netloc)
    _check_path(parts.path.lstrip("/"))
    netloc = parts.netloc.rsplit("@", 1)
    netloc[-1] = netloc[-1].lower()
    return urlunsplit((parts.scheme.lower(), "@".join(netloc), parts.path, "", ""))


def _validate_file_url(url: str) -> str:
    if not settings.PAAS_ALLOW_LOCAL_REPOSITORIES:
        raise _invalid("Local repositories are not allowed on this server.", code="local")
    parts = _split(url)
    if parts.netloc or not parts.path.startswith("/") or parts.query or parts.fragment:
        raise _invalid("A file URL looks like file:///absolute/path/to/repo.")
    _check_path(parts.path.lstrip("/"))
    _check_local_dir(parts.path)
    return url


def _split(url: str):
    # urlsplit raises on a bracketed host that is no IPv6 address (ssh://[-oX]/y).
    try:
        return urlsplit(url)
    except ValueError:
        raise _invalid("The host in the URL is not a host name or an [IPv6] address.") from None


def repository_host(url: str) -> str:
    """The host a validated repository URL points to ("" for a local repository)."""
    scp = SCP_RE.match(url) if "://" not in url else None
    if scp:
        return scp["host"]
    if url.startswith("/") or url.lower().startswith("file:"):
        return ""
    return _split(url).hostname or ""


def _validate_local_path(path: str) -> str:
    if not settings.PAAS_ALLOW_LOCAL_REPOSITORIES:
        raise _invalid("Local repositories are not allowed on this server.", code="local")
    _check_path(path.lstrip("/"))
    _check_local_dir(path)
    return path


def _check_local_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise _invalid("This local path is not an existing directory.")


def _check_host(host: str, bracketed: bool = False) -> None:
    if not host:
        raise _invalid("The repository URL has no host.")
    if host.startswith("-"):
        raise _invalid("A host name cannot start with “-”.")
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
            return
        except ValueError:
            raise _invalid("The host is not a valid IPv6 address.") from None
    if not HOSTNAME_RE.match(host):
        raise _invalid("The host is not a valid host name.")


def _check_path(path: str) -> None:
    if not path.strip("/"):
        raise _invalid("The repository URL has no path to a repository.")
    if any(part.startswith("-") for part in path.split("/")):
        raise _invalid("No part of the repository path may start with “-”.")


# --- fetching -------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str]) -> str:
    """Text with every secret and every user:password@ in URLs replaced by ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return URL_CREDENTIALS_RE.sub(lambda m: m["scheme"] + REDACTED + "@", text)


def fetch(
    url: str,
    branch: str,
    dest: Path,
    commit_sha: str = "",
    token: str = "",
    log: Callable[[str], None] = print,
    token_user: str = "x-access-token",
    timeout: float = CLONE_TIMEOUT_SECONDS,
    max_bytes: int | None = None,
    ref: str = "",
) -> FetchedSource:
    """Fetch `branch` (or the default branch) of `url` into `dest`, pinned to `commit_sha`.
    With `ref` (a pull request's refs/pull/<n>/head), that ref instead of the branch: a
    fork's branch is not in the base repository, its pull request's ref is.

    The caller validated the URL (the service layer refuses http:// and friends); here
    the branch and sha are checked again because they go to git as arguments. `dest`
    may hold at most `max_bytes` (default PAAS_CLONE_MAX_BYTES), .git included.
    """
    if max_bytes is None:
        max_bytes = settings.PAAS_CLONE_MAX_BYTES
    _check_fetch_arguments(url, branch, commit_sha)
    _check_ref(ref)
    commit_sha = commit_sha.lower()
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} must not exist or be empty")
    auth = _Auth(url, token, token_user)
    deadline = time.monotonic() + timeout
    shown_url = redact(url, auth.secrets)
    log(f"Cloning {shown_url} ({f'branch {branch}' if branch else 'default branch'})…")
    existed = dest.exists()
    watch = SizeWatch(dest, max_bytes)
    import git

    try:
        repo = git.Repo.init(dest)
        with watch, repo.git.custom_environment(**auth.environment()):
            fetched = _fetch_into(repo, url, branch, commit_sha, deadline, log, ref)
        if watch.tripped:
            raise _too_large(max_bytes)
        return fetched
    except BaseException as exc:
        clear_dest(dest, existed)
        if watch.tripped:
            # Whatever git said after it was killed, the size is why it stopped.
            raise _too_large(max_bytes) from None
        if isinstance(exc, git.GitCommandError):
            raise _map_git_error(exc, auth.secrets) from None
        if isinstance(exc, (git.UnsafeProtocolError, git.UnsafeOptionError)):
            raise SourceError("invalid_repository", "This repository URL is not allowed.") from None
        raise


def _too_large(max_bytes: int) -> SourceError:
    return SourceError(
        "source_too_large",
        f"The repository takes more than {max_bytes / (1024 * 1024):g} MiB once fetched and "
        "checked out (PAAS_CLONE_MAX_BYTES), so the fetch was stopped: make it smaller "
        "(large files belong outside git) or ask the operator to raise the limit.",
    )


def clear_dest(dest: Path, existed: bool) -> None:
    """Leave `dest` as we found it, so a retry starts clean."""
    if not existed:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _check_fetch_arguments(url: str, branch: str, commit_sha: str) -> None:
    if not url or url.startswith("-") or REMOTE_HELPER_RE.match(url):
        raise SourceError("invalid_repository", "This repository URL is not allowed.")
    try:
        validate_branch(branch)
    except ValidationError as exc:
        raise SourceError("invalid_branch", exc.messages[0]) from None
    if commit_sha and not SHA_RE.match(commit_sha):
        raise SourceError("invalid_commit", "A commit id is 7 to 64 hexadecimal characters.")


def _check_ref(ref: str) -> None:
    if ref and not PULL_REF_RE.match(ref):
        raise SourceError("invalid_ref", "Only a pull or merge request's head ref is fetched.")


def _fetch_into(repo, url, branch, commit_sha, deadline, log, ref="") -> FetchedSource:
    import git

    origin = repo.create_remote("origin", url)
    if not ref:
        branch = _resolve_branch(repo, branch, deadline)
    local = "refs/remotes/origin/slipway-pull" if ref else f"refs/remotes/origin/{branch}"
    try:
        origin.fetch(
            f"+{ref or 'refs/heads/' + branch}:{local}",
            depth=1,
            no_tags=True,
            kill_after_timeout=_remaining(deadline),
        )
    except git.GitCommandError as exc:
        if ref and "couldn't find remote ref" in _stderr_of(exc).lower():
            raise SourceError("ref_not_found", f"The repository has no ref {ref}.") from None
        raise
    head = repo.commit(local)
    if commit_sha and not head.hexsha.startswith(commit_sha.lower()):
        head = _fetch_commit(repo, commit_sha, deadline)
    repo.git.checkout("--quiet", "--detach", head.hexsha, "--")
    message = head.message.strip().splitlines()[0][:MAX_MESSAGE_LENGTH] if head.message else ""
    log(f"Checked out {head.hexsha[:7]}: {message}")
    return FetchedSource(Path(repo.working_tree_dir), head.hexsha, message, branch)


# The only refs fetched besides branches: GitHub's and Gitea's refs/pull/<n>/head, GitLab's
# refs/merge-requests/<n>/head.
PULL_REF_RE = re.compile(r"^refs/(pull|merge-requests)/[1-9][0-9]{0,9}/head$")


def _resolve_branch(repo: git.Repo, branch: str, deadline: float) -> str:
    """The branch to fetch: `branch` if the remote has it, else the remote's default."""
    patterns = [f"refs/heads/{branch}"] if branch else ["HEAD"]
    out = repo.git.ls_remote(
        "--symref", "origin", *patterns, kill_after_timeout=_remaining(deadline)
    )
    if branch:
        if not any(line.endswith(f"\trefs/heads/{branch}") for line in out.splitlines()):
            raise SourceError("branch_not_found", f"The repository has no branch “{branch}”.")
        return branch
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/") : -len("\tHEAD")]
    raise SourceError("branch_not_found", "The repository has no default branch (is it empty?).")


def _fetch_commit(repo: git.Repo, commit_sha: str, deadline: float) -> git.Commit:
    # Servers accept a want by full id only; an abbreviated id must already be local.
    import git

    try:
        repo.remotes.origin.fetch(
            commit_sha, depth=1, no_tags=True, kill_after_timeout=_remaining(deadline)
        )
        return repo.commit("FETCH_HEAD" if len(commit_sha) >= 40 else commit_sha)
    except git.GitCommandError as exc:
        if any(word in _stderr_of(exc).lower() for word in TRANSIENT_ERRORS):
            raise  # the network failed, not the commit: a platform fault, mapped by fetch()
        raise _commit_not_found(commit_sha) from None
    except (ValueError, git.BadName):
        raise _commit_not_found(commit_sha) from None


def _commit_not_found(commit_sha: str) -> SourceError:
    return SourceError(
        "commit_not_found", f"Commit {commit_sha[:12]} was not found in the repository."
    )


# stderr of a fetch that failed for reasons other than the commit it asked for.
TRANSIENT_ERRORS = (
    "process killed because it timed out",
    "did not complete in",
    "could not resolve host",
    "connection refused",
    "connection reset",
    "connection timed out",
)


def _remaining(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic())


class _Auth:
    """The environment git runs in: no prompts, no operator config, token as a header."""

    def __init__(self, url: str, token: str, token_user: str):
        self.url, self.token = url, token
        self.header = ""
        if token:
            basic = base64.b64encode(f"{token_user}:{token}".encode()).decode()
            self.header = f"Authorization: Basic {basic}"
        self.secrets = [s for s in (token, self.header.removeprefix("Authorization: ")) if s]

    def environment(self) -> dict[str, str]:
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": shutil.which("true") or "/bin/true",
            "SSH_ASKPASS": shutil.which("true") or "/bin/true",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
            "-o ConnectTimeout=30",
            # The operator's own git config (credential helpers, insteadOf) stays out.
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ALLOW_PROTOCOL": ":".join(_allowed_protocols()),
            "GIT_CONFIG_COUNT": "0",
        }
        if self.header and self._origin():
            # Scoped to the repository's origin so a redirect elsewhere gets no token.
            env.update(
                GIT_CONFIG_COUNT="1",
                GIT_CONFIG_KEY_0=f"http.{self._origin()}/.extraHeader",
                GIT_CONFIG_VALUE_0=self.header,
            )
        return env

    def _origin(self) -> str:
        parts = urlsplit(self.url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return ""
        return f"{parts.scheme.lower()}://{parts.netloc.rsplit('@', 1)[-1]}"


def _allowed_protocols() -> list[str]:
    local = LOCAL_PROTOCOLS if settings.PAAS_ALLOW_LOCAL_REPOSITORIES else ()
    return [*ALLOWED_PROTOCOLS, *local]


# Known git/ssh/curl phrasings, first match wins. Lower-case substrings of stderr.
_ERROR_PATTERNS: list[tuple[tuple[str, ...], str, str, bool]] = [
    (
        ("process killed because it timed out", "did not complete in"),
        "clone_failed",
        "Fetching the repository timed out.",
        False,
    ),
    (
        ("authentication failed", "could not read username", "could not read password",
         "terminal prompts disabled", "permission denied", "http 401", "http 403",
         "requested url returned error: 401", "requested url returned error: 403",
         "host key verification failed", "invalid credentials"),
        "auth_failed",
        "The repository refused access: check that it is public or that the connected "
        "token can read it.",
        True,
    ),
    (
        ("repository not found", "does not appear to be a git repository", "not found",
         "returned error: 404", "no such file or directory", "not a git repository",
         "does not exist"),
        "repository_not_found",
        "The repository was not found (check the URL, and the token for a private one).",
        True,
    ),
    (
        ("couldn't find remote ref", "could not find remote ref"),
        "branch_not_found",
        "The branch was not found in the repository.",
        True,
    ),
    (
        ("protocol '", "transport '", "unsafe"),
        "invalid_repository",
        "This kind of repository URL is not allowed.",
        True,
    ),
]  # fmt: skip


def _map_git_error(exc: git.GitCommandError, secrets: list[str]) -> SourceError:
    stderr = redact(_stderr_of(exc), secrets)
    lowered = stderr.lower()
    for needles, code, message, user_fault in _ERROR_PATTERNS:
        if any(needle in lowered for needle in needles):
            return SourceError(code, _with_detail(message, stderr), user_fault)
    return SourceError(
        "clone_failed", _with_detail("Fetching the repository failed.", stderr), False
    )


def _with_detail(message: str, stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    detail = " / ".join(lines[-3:])[:500]
    return f"{message} (git: {detail})" if detail else message


def _stderr_of(exc: git.GitCommandError) -> str:
    # GitPython wraps stderr as "\n  stderr: '<text>'"; a timeout only shows in `status`.
    text = str(exc.stderr or "")
    text = text.removeprefix("\n  stderr: '").removesuffix("'")
    return f"{text}\n{exc.status}" if isinstance(exc.status, str) else text
