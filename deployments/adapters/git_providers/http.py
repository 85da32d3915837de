"""HTTP for the provider clients: short timeouts, the user's token, one refresh on a 401, and
every failure turned into a ProviderError whose message is fit to show (no token, no raw page)."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils import timezone

from deployments.adapters.git_providers.base import CommitStatus, ProviderError

# Enough for any real repository's branches; a runaway pagination stops here.
MAX_PAGES = 10
_FULL_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)+$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def send(method: str, url: str, label: str, **kwargs) -> requests.Response:
    timeout = settings.PAAS_GIT_PROVIDER_TIMEOUT
    try:
        return requests.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout:
        message = f"{label} did not answer within {timeout:g} seconds; try again."
    except requests.RequestException:
        message = f"Slipway could not reach {label}; try again in a moment."
    # Raised outside the except blocks, so the requests error (and its URL) is not chained.
    raise ProviderError("timeout", message)


def error_for(response: requests.Response, label: str) -> ProviderError:
    status = response.status_code
    if status == 401:
        return ProviderError("unauthorized", f"Your {label} sign-in has expired; sign in again.")
    if status == 429 or (status == 403 and response.headers.get("X-RateLimit-Remaining") == "0"):
        return _rate_limited(response, label)
    if status == 404:
        return ProviderError(
            "not_found", f"{label} found nothing there, or your account cannot see it."
        )
    if status >= 500:
        return ProviderError("provider_error", f"{label} failed (HTTP {status}); try again later.")
    return ProviderError(
        "provider_error", f"{label} refused the request (HTTP {status}){_detail(response)}."
    )


def _rate_limited(response: requests.Response, label: str) -> ProviderError:
    retry_at = _retry_at(response.headers)
    when = f"after {retry_at:%H:%M} UTC" if retry_at else "in a few minutes"
    return ProviderError(
        "rate_limited", f"{label}'s API rate limit is used up; try again {when}.", retry_at
    )


def _retry_at(headers) -> datetime | None:
    after = headers.get("Retry-After", "")
    if after.isdigit():
        return timezone.now() + timedelta(seconds=int(after))
    # GitHub and Gitea say X-RateLimit-Reset, GitLab RateLimit-Reset: epoch seconds.
    reset = headers.get("X-RateLimit-Reset") or headers.get("RateLimit-Reset") or ""
    return datetime.fromtimestamp(int(reset), tz=UTC) if reset.isdigit() else None


def _detail(response: requests.Response) -> str:
    """The provider's own one-line reason (GitHub, GitLab and Gitea all say "message")."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f": {message[:200]}" if isinstance(message, str) and message else ""


def json_of(response: requests.Response, label: str):
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            "provider_error", f"{label} answered with something unreadable."
        ) from None


def parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def repo_path(full_name: str, label: str) -> str:
    """full_name checked and quoted for a URL path: no "..", no query, nothing to smuggle."""
    if not _FULL_NAME.match(full_name) or ".." in full_name.split("/"):
        raise ProviderError("not_found", f"{full_name!r} is not a {label} repository name.")
    return quote(full_name, safe="/")


def commit_path(sha: str, label: str) -> str:
    """A commit id checked for a URL path: hex only (SHA-1 or SHA-256), nothing to smuggle."""
    if not _SHA.match(sha or ""):
        raise ProviderError("not_found", f"{sha!r} is not a commit id {label} knows.")
    return sha


# Descriptions longer than this are refused (GitHub) or cut (GitLab, Gitea).
STATUS_DESCRIPTION_MAX = 140


def status_body(status: CommitStatus, state: str) -> dict:
    """A new commit status in the fields all three providers read (GitLab names the
    context `name`; the caller adds it)."""
    body = {"state": state, "description": status.description[:STATUS_DESCRIPTION_MAX]}
    if status.target_url:
        body["target_url"] = status.target_url
    return body
