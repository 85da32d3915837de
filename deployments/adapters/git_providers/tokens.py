"""The Git-provider tokens a user's sign-in left us: fresh ones for API calls and private clones.

GitLab and Gitea OAuth tokens expire (about two hours); their refresh token buys new ones at
the provider's token endpoint. Refresh tokens are single-use there, so the refresh happens
under a row lock: two workers that find the same expired token refresh it once.
"""

from datetime import timedelta

from allauth.socialaccount.adapter import get_adapter
from django.db import transaction
from django.utils import timezone

from apps.models.providers import ProviderCredential
from deployments.adapters.git_providers.base import ProviderError, credential_for_url
from deployments.adapters.git_providers.http import error_for, json_of, send

TOKEN_PATHS = {
    "github": "/login/oauth/access_token",  # only GitHub App tokens expire; OAuth app ones don't
    "gitlab": "/oauth/token",
    "gitea": "/login/oauth/access_token",
}
# The HTTP basic-auth user git sends with the token. GitLab wants "oauth2"; Gitea ignores the
# user when the password is an OAuth token (services/auth/basic.go), so its login does.
BASIC_AUTH_USERS = {"github": "x-access-token", "gitlab": "oauth2"}


def clone_token_for(app) -> tuple[str, str]:
    """(token, user name for HTTP basic auth); ("", …) when the owner has no provider token."""
    return clone_token_for_url(app.owner, app.repository)


def clone_token_for_url(user, url: str) -> tuple[str, str]:
    """The same for a repository URL before any app exists (the create form's preview)."""
    found = credential_for_url(user, url)
    if found is None:
        return "", "x-access-token"
    credential = found[0]
    return access_token(credential), _basic_auth_user(credential)


def _basic_auth_user(credential: ProviderCredential) -> str:
    return BASIC_AUTH_USERS.get(credential.provider) or credential.login or "oauth2"


def access_token(credential: ProviderCredential) -> str:
    """The access token, refreshed first when it is about to expire."""
    if credential.refresh_token and credential.expires_soon():
        return refresh(credential)
    return credential.access_token


def refresh(credential: ProviderCredential) -> str:
    """Trade the refresh token for new tokens (unless another process just did) and store them."""
    with transaction.atomic():
        locked = ProviderCredential.objects.select_for_update().get(pk=credential.pk)
        if locked.access_token == credential.access_token:
            _exchange(locked)
    credential.refresh_from_db()
    return credential.access_token


def _exchange(credential: ProviderCredential) -> None:
    if not credential.refresh_token:
        raise _expired(credential)
    url = credential.web_url.rstrip("/") + TOKEN_PATHS[credential.provider]
    form = {"grant_type": "refresh_token", "refresh_token": credential.refresh_token}
    headers = {"Accept": "application/json"}
    response = send(
        "POST", url, credential.display_name, data={**form, **_client(credential)}, headers=headers
    )
    if response.status_code >= 500:
        raise error_for(response, credential.display_name)
    data = json_of(response, credential.display_name) if response.status_code < 400 else {}
    if not isinstance(data, dict) or not data.get("access_token"):
        raise _expired(credential)  # invalid_grant: revoked, or used up elsewhere
    expires_in = data.get("expires_in")
    expires_at = timezone.now() + timedelta(seconds=int(expires_in)) if expires_in else None
    credential.set_tokens(data["access_token"], data.get("refresh_token", ""), expires_at)
    credential.save(update_fields=["access_token", "refresh_token", "expires_at", "updated_at"])


def _client(credential: ProviderCredential) -> dict[str, str]:
    """The OAuth client id and secret allauth knows for this provider (settings or admin)."""
    apps = get_adapter().list_apps(None, provider=credential.provider)
    if not apps:
        raise _expired(credential)
    return {"client_id": apps[0].client_id, "client_secret": apps[0].secret}


def _expired(credential: ProviderCredential) -> ProviderError:
    name = credential.display_name
    return ProviderError("unauthorized", f"Your {name} sign-in has expired; sign in again.")
