"""Git providers (GitHub, GitLab, Gitea/Forgejo) seen through one small interface.

Views and services call the functions at the bottom with a Django user; each provider is one
module (github.py, gitlab.py, gitea.py) implementing ProviderClient over its REST API, with the
user's OAuth token (refreshed when it expires — see deployments.adapters.git_providers.tokens).
"""

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache

from apps.models.providers import ProviderCredential, ProviderKind


class ProviderError(Exception):
    """A provider call that failed, with a stable code and a message fit for the user.

    code: unauthorized | rate_limited | timeout | not_found | provider_error. The message never
    holds a token nor the provider's raw error page.
    """

    # What the user can fix (sign in again, name an existing repo) versus what may pass.
    USER_FAULTS = {"unauthorized", "not_found"}

    def __init__(self, code: str, message: str, retry_at: datetime | None = None):
        super().__init__(message)
        self.code, self.message, self.retry_at = code, message, retry_at

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


def client_for(credential: ProviderCredential) -> ProviderClient:
    # Imported here: the implementations import this module's names.
    from deployments.adapters.git_providers.gitea import GiteaClient
    from deployments.adapters.git_providers.github import GitHubClient
    from deployments.adapters.git_providers.gitlab import GitLabClient

    classes = {"github": GitHubClient, "gitlab": GitLabClient, "gitea": GiteaClient}
    return classes[credential.provider](credential)


def connected_providers(user) -> list[ProviderCredential]:
    return list(ProviderCredential.objects.filter(user=user))


def credential_for(user, provider: str) -> ProviderCredential:
    credential = ProviderCredential.objects.filter(user=user, provider=provider).first()
    if credential is None:
        name = ProviderKind(provider).label if provider in ProviderKind.values else provider
        raise ProviderError("unauthorized", f"Sign in with {name} first to use its repositories.")
    return credential


def list_repositories(
    user, provider: str, query: str = "", page: int = 1, per_page: int = 20
) -> RepositoryPage:
    """The user's repositories on a provider, most recently updated first (cached briefly)."""
    # 100 is the most any of the three providers returns in one page.
    query, page, per_page = query.strip(), max(page, 1), min(max(per_page, 1), 100)
    key = _cache_key("repos", user, provider, query, page, per_page)
    return _cached(
        key,
        lambda: client_for(credential_for(user, provider)).list_repositories(query, page, per_page),
    )


def list_branches(user, provider: str, full_name: str) -> list[str]:
    key = _cache_key("branches", user, provider, full_name)
    return _cached(key, lambda: client_for(credential_for(user, provider)).list_branches(full_name))


def check_repository(user, clone_url: str, branch: str = "") -> Repository | None:
    """The repository behind clone_url, checked with the user's token; None when the URL's host
    is none of the user's providers (the caller then treats it as a public URL)."""
    found = credential_for_url(user, clone_url)
    if found is None:
        return None
    credential, full_name = found
    if not full_name:
        raise ProviderError("not_found", f"{clone_url} names no repository.")
    client = client_for(credential)
    try:
        repository = client.get_repository(full_name)
    except ProviderError as exc:
        raise _not_found(
            exc,
            f"Repository {full_name} does not exist on {credential.display_name}"
            f", or your account {credential.login} cannot see it.",
        ) from None
    if branch and not client.has_branch(full_name, branch):
        raise ProviderError("not_found", f"Branch {branch!r} does not exist in {full_name}.")
    return repository


def create_webhook(user, provider: str, full_name: str, url: str, secret: str) -> str:
    """Ask the provider to POST push events to url, signed with secret; returns the hook id."""
    return client_for(credential_for(user, provider)).create_webhook(full_name, url, secret)


def delete_webhook(user, provider: str, full_name: str, hook_id: str) -> None:
    """Remove a hook; one already gone (deleted by hand on the provider) counts as removed."""
    try:
        client_for(credential_for(user, provider)).delete_webhook(full_name, str(hook_id))
    except ProviderError as exc:
        if exc.code != "not_found":
            raise


def credential_for_url(user, clone_url: str) -> tuple[ProviderCredential, str] | None:
    """The user's credential whose web host serves clone_url, and the repo's full name."""
    host, path = split_clone_url(clone_url)
    for credential in connected_providers(user):
        web = urlsplit(credential.web_url)
        if host and _netloc(web.hostname, web.port) == host:
            return credential, _strip_prefix(path, web.path.rstrip("/"))
    return None


# "git@host:owner/repo.git", the scp-like form git accepts beside URLs.
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


def _not_found(exc: ProviderError, message: str) -> ProviderError:
    return ProviderError("not_found", message) if exc.code == "not_found" else exc


def _cache_key(kind: str, user, provider: str, *parts) -> str:
    # Hashed: a search query may hold anything, and memcached refuses spaces in keys.
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
    return f"slipway:providers:{kind}:{user.pk}:{provider}:{digest}"


def _cached(key: str, compute):
    """Errors are not cached: the next request tries the provider again."""
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, settings.PAAS_GIT_PROVIDER_CACHE_SECONDS)
    return value
