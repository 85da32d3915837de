"""The provider interface and the credential lookups every provider module shares."""

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from apps.models.providers import ProviderCredential, ProviderKind


class ProviderError(Exception):
    """A provider call that failed, with a stable code and a message fit for the user.

    code: unauthorized | rate_limited | timeout | not_found | provider_error. The message never
    holds a token nor the provider's raw error page.
    """

    # What the user can fix (sign in again, name an existing repo) versus what may pass.
    USER_FAULTS = {"unauthorized", "not_found"}

    def __init__(
        self,
        code: str,
        message: str,
        retry_at: datetime | None = None,
        field: str | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.retry_at = code, message, retry_at
        self.field = field  # the form field it is about ("branch"), when it is about one

    @property
    def user_fault(self) -> bool:
        return self.code in self.USER_FAULTS


@dataclass
class Repository:
    provider: str
    full_name: str
    clone_url: str
    default_branch: str
    private: bool
    updated_at: datetime | None
    html_url: str


@dataclass
class RepositoryPage:
    items: list[Repository] = field(default_factory=list)
    page: int = 1
    has_next: bool = False
    query: str = ""


class CiState:
    SUCCESS, PENDING, FAILURE, UNKNOWN = "success", "pending", "failure", "unknown"


@dataclass(frozen=True)
class CiStatus:
    """What the provider's CI says about one commit. pending and failed name the checks
    (GitHub's contexts and check runs, GitLab's pipeline, Gitea's contexts); detail says
    why the state is unknown; url is where to look."""

    state: str
    provider: str = ""
    pending: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    detail: str = ""
    url: str = ""


# Each provider's own words for a check's outcome, sorted into the gate's three; anything
# unlisted counts as a failure, so a state a provider adds later never lets a commit through.
CI_PASSED = frozenset({"success", "neutral", "skipped"})
CI_RUNNING = frozenset(
    {"pending", "queued", "in_progress", "waiting", "requested", "expected"}
    | {"created", "waiting_for_resource", "preparing", "running", "scheduled", "manual"}
)


def combine_checks(provider: str, checks: list[tuple[str, str, str]]) -> CiStatus:
    """One state for (name, outcome, url) checks: failure if any failed, else pending if any
    runs, else success; unknown when there are none."""
    if not checks:
        return CiStatus(CiState.UNKNOWN, provider)
    failed = tuple(name for name, outcome, _ in checks if _sorted_as(outcome) == "failure")
    pending = tuple(name for name, outcome, _ in checks if _sorted_as(outcome) == "pending")
    url = next((url for _, outcome, url in checks if url and outcome not in CI_PASSED), "")
    if failed:
        return CiStatus(CiState.FAILURE, provider, pending, failed, url=url)
    if pending:
        return CiStatus(CiState.PENDING, provider, pending, url=url)
    return CiStatus(CiState.SUCCESS, provider)


def _sorted_as(outcome: str) -> str:
    outcome = (outcome or "").lower()
    if outcome in CI_PASSED:
        return "success"
    return "pending" if outcome in CI_RUNNING else "failure"


@dataclass(frozen=True)
class CommitStatus:
    """A status Slipway posts on a commit: state is pending, success or failure (each
    provider's own word for it is the client's business)."""

    state: str
    description: str
    target_url: str = ""
    context: str = "slipway/preview"


class ProviderClient(ABC):
    """One provider's API for one credential. full_name is "owner/repo" (GitLab: the full path)."""

    def __init__(self, credential: ProviderCredential):
        self.credential = credential

    @abstractmethod
    def list_repositories(self, query: str, page: int, per_page: int) -> RepositoryPage: ...

    @abstractmethod
    def list_branches(self, full_name: str) -> list[str]: ...

    @abstractmethod
    def get_repository(self, full_name: str) -> Repository: ...

    @abstractmethod
    def has_branch(self, full_name: str, branch: str) -> bool: ...

    @abstractmethod
    def create_webhook(self, full_name: str, url: str, secret: str) -> str: ...

    @abstractmethod
    def delete_webhook(self, full_name: str, hook_id: str) -> None: ...

    @abstractmethod
    def commit_ci_status(self, full_name: str, sha: str) -> CiStatus:
        """The CI state of a commit; raises ProviderError when the provider cannot say."""

    @abstractmethod
    def post_commit_status(self, full_name: str, sha: str, status: CommitStatus) -> None:
        """Set one status (by its context) on a commit; raises ProviderError."""


def connected_providers(user) -> list[ProviderCredential]:
    return list(ProviderCredential.objects.filter(user=user))


def credential_for(user, provider: str) -> ProviderCredential:
    credential = ProviderCredential.objects.filter(user=user, provider=provider).first()
    if credential is None:
        name = ProviderKind(provider).label if provider in ProviderKind.values else provider
        raise ProviderError("unauthorized", f"Sign in with {name} first to use its repositories.")
    return credential


def credential_for_url(user, clone_url: str) -> tuple[ProviderCredential, str] | None:
    """The user's credential whose web host serves clone_url, and the repo's full name."""
    host, path = split_clone_url(clone_url)
    for credential in connected_providers(user):
        web = urlsplit(credential.web_url)
        if host and _netloc(web.hostname, web.port) == host:
            return credential, _strip_prefix(path, web.path.rstrip("/"))
    return None


_SCP_LIKE = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>[^/].*)$")


def split_clone_url(url: str) -> tuple[str, str]:
    """(host[:port], path) of a clone URL, lowercased host, default ports dropped."""
    url = url.strip()
    if match := _SCP_LIKE.match(url):
        return match["host"].lower(), "/" + match["path"]
    try:
        parts = urlsplit(url)
        return _netloc(parts.hostname, parts.port), parts.path
    except ValueError:  # a malformed port or bracket: no provider serves it
        return "", ""


def _netloc(hostname: str | None, port: int | None) -> str:
    host = (hostname or "").lower()
    return f"{host}:{port}" if port and port not in (80, 443) else host


def _strip_prefix(path: str, prefix: str) -> str:
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    path = path.strip("/")
    return path[:-4] if path.endswith(".git") else path
