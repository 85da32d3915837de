"""Bearer tokens for /api/v1: `Authorization: Bearer <token>` names the caller."""

from ninja.security import HttpBearer

from apps.models import ApiToken


class BearerToken(HttpBearer):
    """The token's active user, or None (ninja then answers 401 through errors.py)."""

    def authenticate(self, request, token: str):
        raw = token.strip()
        user = ApiToken.authenticate(raw) if raw else None
        if user is not None:
            # Anything reading request.user (logging, error reports) sees the caller, not
            # whoever a session cookie on the same request might name.
            request.user = user
        return user
