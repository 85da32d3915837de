"""API tokens: only a SHA-256 hash of each is stored.

A token belongs to a user and to one of their teams: it reaches that team's apps alone,
with its user's role there. It has a scope (read: safe methods only; write: everything its
user may do) and an optional expiry.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.models.teams import Team

# The methods that change nothing (RFC 9110 §9.2.1): all a read-only token may use.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A token meant to live longer than this is a mistake (a typo in a date, days for hours).
MAX_LIFETIME = timedelta(days=366)
# last_used_at is written at most this often per token: a busy CI token is one UPDATE a
# minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_MAX = 100


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class TokenScope(models.TextChoices):
    READ = "read", "Read-only"
    WRITE = "write", "Read and write"


class TokenExpired(Exception):
    """The token is known but past its expiry: it names nobody."""


def expiry_from(value, now: datetime | None = None) -> datetime | None:
    """An expiry given as a number of days from now or an ISO 8601 date-time (with its time
    zone); None or "never" is none. Raises ValidationError on anything else. Whether it is
    in range is ApiToken.clean's to say."""
    now = now or timezone.now()
    if value is None or value == "never":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdecimal()):
        # Clamped just past the limit: clean() refuses it, where a huge count would overflow.
        return now + timedelta(days=min(int(value), MAX_LIFETIME.days + 1))
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well formed but no such date, e.g. month 13
        moment = None
    if moment is None:
        raise ValidationError("Give a number of days, an ISO 8601 date-time or never.")
    if timezone.is_naive(moment):
        raise ValidationError("Give the date-time's time zone, e.g. Z or +02:00.")
    return moment


class ApiToken(models.Model):
    """A bearer token for /api/v1. Only its SHA-256 is stored; the token is shown once."""

    PREFIX = "slw_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    team = models.ForeignKey(
        "apps.Team",
        on_delete=models.CASCADE,
        related_name="api_tokens",
        help_text="The one team whose apps it reaches.",
    )
    name = models.CharField(max_length=NAME_MAX, default="token")
    scope = models.CharField(max_length=5, choices=TokenScope.choices, default=TokenScope.WRITE)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    def clean(self):
        self.name = (self.name or "").strip()
        if not self.name:
            raise ValidationError({"name": "Give the token a name, such as its machine."})
        if self.expires_at is not None:
            self._check_expiry(self.created_at or timezone.now())

    def _check_expiry(self, now: datetime) -> None:
        if self.expires_at <= now:
            raise ValidationError({"expires_at": "The expiry must be in the future."})
        if self.expires_at > now + MAX_LIFETIME:
            raise ValidationError(
                {"expires_at": f"A token lives at most {MAX_LIFETIME.days} days; choose never."}
            )

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def is_read_only(self) -> bool:
        return self.scope == TokenScope.READ

    def allows(self, method: str) -> bool:
        """Whether a request with this HTTP method may go ahead on this token."""
        return not self.is_read_only or method.upper() in SAFE_METHODS

    @classmethod
    def issue(
        cls,
        user,
        name: str = "token",
        scope: str = TokenScope.WRITE,
        expires_at=None,
        team=None,
    ) -> tuple["ApiToken", str]:
        """A new token for `team` (the user's personal team if None; the caller checks they
        are a member) and its raw value (shown once). Raises ValidationError, saving
        nothing, on a blank or too long name, an unknown scope or an expiry out of range."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls(
            user=user,
            team=team or Team.personal_for(user),
            name=name,
            scope=scope,
            expires_at=expires_at,
            token_hash=_hash_token(raw),
            hint=raw[:8],
        )
        token.full_clean(exclude=["user", "team", "token_hash"])
        token.save()
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> "ApiToken | None":
        """The active user's token this raw value is, or None; raises TokenExpired when it
        is theirs but expired. One indexed lookup whatever the outcome."""
        token = cls.objects.select_related("user").filter(token_hash=_hash_token(raw)).first()
        if token is None or not token.user.is_active:
            return None
        now = timezone.now()
        if token.is_expired(now):
            raise TokenExpired()
        token._touch(now)
        return token

    def principal(self):
        """The token's user, narrowed to the token's team: Team.reached_by (and so every
        app and team lookup) honours it for the rest of the request."""
        user = self.user
        user.token_team_id = self.team_id
        return user

    def _touch(self, now: datetime) -> None:
        since = now - LAST_USED_RESOLUTION
        if self.last_used_at is not None and self.last_used_at >= since:
            return  # fresh enough: not even a query
        # Conditional, so two requests at once write it once.
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=since)
        if ApiToken.objects.filter(stale, pk=self.pk).update(last_used_at=now):
            self.last_used_at = now
