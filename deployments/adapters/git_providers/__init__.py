"""Git providers (GitHub, GitLab, Gitea/Forgejo) seen through one small interface.

Views and services call the functions at the bottom with a Django user; each provider is one
module (github.py, gitlab.py, gitea.py) implementing ProviderClient over its REST API, with the
user's OAuth token (refreshed when it expires — see deployments.adapters.git_providers.tokens).
"""

import hashlib

from django.conf import settings
from django.core.cache import cache

from apps.models.providers import ProviderCredential
from deployments.adapters.git_providers.base import (  # noqa: F401 - the package's interface
    CiState,
    CiStatus,
    CommitStatus,
    ProviderClient,
    ProviderError,
    Repository,
    RepositoryPage,
    connected_providers,
    credential_for,
    credential_for_url,
    split_clone_url,
)
from deployments.adapters.git_providers.gitea import GiteaClient
from deployments.adapters.git_providers.github import GitHubClient
from deployments.adapters.git_providers.gitlab import GitLabClient


def client_for(credential: ProviderCredential) -> ProviderClient:
    classes = {"github": GitHubClient, "gitlab": GitLabClient, "gitea": GiteaClient}
    return classes[credential.provider](credential)


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
        raise ProviderError(
            "not_found", f"Branch {branch!r} does not exist in {full_name}.", field="branch"
        )
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


def commit_ci_status(user, clone_url: str, sha: str) -> CiStatus:
    """What CI says about a commit of clone_url, asked with the user's token. Never raises:
    a provider that cannot be asked makes the state unknown, with the reason (never the
    token) in detail."""
    found = credential_for_url(user, clone_url)
    if found is None:
        detail = "the repository is on none of the owner's connected Git providers"
        return CiStatus(CiState.UNKNOWN, detail=detail)
    credential, full_name = found
    try:
        return client_for(credential).commit_ci_status(full_name, sha)
    except ProviderError as exc:
        return CiStatus(CiState.UNKNOWN, credential.display_name, detail=exc.message)


def post_commit_status(user, provider: str, full_name: str, sha: str, status: CommitStatus) -> None:
    """Set a status on a commit of full_name with the user's token for that provider.
    Raises ProviderError (a message fit to show, never the token)."""
    client_for(credential_for(user, provider)).post_commit_status(full_name, sha, status)


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
