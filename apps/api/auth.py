"""Bearer tokens for /api/v1: `Authorization: Bearer <token>` names the caller.

The token's scope is enforced here, the one place every operation passes through before
its body is read: a read-only token gets 403 on any method but GET/HEAD/OPTIONS, so no
operation needs a check of its own (tests/apps/test_token_scopes.py walks them all).
"""

from ninja.security import HttpBearer

from apps.models import ApiToken
from apps.two_factor import MfaRequired, must_set_up_mfa


class ReadOnlyToken(Exception):
    """A read-only token on an operation that changes something (answered 403)."""


class BearerToken(HttpBearer):
    """The token's active user, or None (ninja then answers 401 through errors.py).
    Raises TokenExpired for an expired token, ReadOnlyToken for a write with a read one and
    MfaRequired while its user must set up two-factor sign-in (apps/two_factor.py)."""

    def authenticate(self, request, token: str):
        raw = token.strip()
        api_token = ApiToken.authenticate(raw) if raw else None
        if api_token is None:
            return None
        if not api_token.allows(request.method):
            raise ReadOnlyToken()
        if must_set_up_mfa(api_token.user):  # the dashboard's rule, on the token's user
            raise MfaRequired(api_token.user)
        # Anything reading request.user (logging, error reports) sees the caller, not
        # whoever a session cookie on the same request might name.
        request.user = api_token.principal()
        request.api_token = api_token
        return request.user


def reveals_secrets(request) -> bool:
    """Whether this API request may see secret values: never on a read-only token (like a
    viewer's, it reads status and history, not secrets)."""
    api_token = getattr(request, "api_token", None)
    return api_token is not None and not api_token.is_read_only
