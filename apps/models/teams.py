"""Teams: apps belong to a team, and what a member may do to them is their role's.

Every user has a personal team, made with the user (the receiver at the end), where they
are the owner; existing apps moved into their owner's personal team (migration 0019).
Who may do what, by role, is apps/access.py's alone.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from paas import transitions

logger = logging.getLogger(__name__)

# Whether a user is in a team that requires two-factor sign-in is asked on every signed-in
# request (apps.two_factor's middleware): the cache keeps the answer, so a request makes
# one query fewer. It is forgotten at once when a membership or a team's switch changes
# (the receivers at the end, Team.forget_mfa_rule); the expiry bounds a change the cache
# missed (Redis away at that moment).
MFA_RULE_SECONDS = 60


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    VIEWER = "viewer", "Viewer"


# Each role may do everything the ones below it may.
ROLE_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def rank(role: str | None) -> int:
    """-1 for no role (not a member)."""
    return ROLE_RANK.get(role, -1)


class Team(models.Model):
    name = models.CharField(max_length=63)
    personal_of = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personal_team",
        help_text="Set for a user's personal team, made with the user.",
    )
    require_mfa = models.BooleanField(
        default=False,
        help_text="Every member must sign in with a second factor to see the team's apps.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def reached_by(cls, user):
        """The teams whose apps `user` may reach: those they are a member of, narrowed to
        one when they came through an API token (ApiToken.principal)."""
        teams = cls.objects.filter(memberships__user=user)
        token_team_id = getattr(user, "token_team_id", None)
        return teams if token_team_id is None else teams.filter(pk=token_team_id)

    @property
    def is_personal(self) -> bool:
        return self.personal_of_id is not None

    @classmethod
    def personal_for(cls, user) -> "Team":
        """The user's personal team, made (with them as its owner) if it is not yet."""
        team, made = cls.objects.get_or_create(
            personal_of=user, defaults={"name": user.get_username()}
        )
        if made:
            Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.OWNER})
        return team

    @classmethod
    def one_requires_mfa_of(cls, user) -> bool:
        """Whether a team of the user's requires two-factor sign-in (cached, see above)."""
        key = _mfa_rule_key(user.pk)
        known = _cache_call(cache.get, key)
        if known is None:
            known = cls.objects.filter(memberships__user=user, require_mfa=True).exists()
            _cache_call(cache.set, key, known, MFA_RULE_SECONDS)
        return known

    def forget_mfa_rule(self) -> None:
        """Its members' cached answers, after its switch changed."""
        _forget_mfa_rule(list(self.memberships.values_list("user_id", flat=True)))

    def remember_role(self, user, role: str | None) -> None:
        """The user's role as a query already read it (AppQuerySet.with_role_of): role_of
        answers from it for the rest of this object's life, without a query."""
        self.__dict__.setdefault("_known_roles", {})[user.pk] = role

    def role_of(self, user) -> str | None:
        if user is None or not user.is_authenticated:
            return None
        known = self.__dict__.get("_known_roles", {})
        if user.pk in known:
            return known[user.pk]
        # The role alone, unordered: one indexed row (team and user are unique together),
        # and no model, whose deferred team_id the related manager would load in a second
        # query. Every request for an app asks this at least once (apps/access.py).
        roles = self.memberships.filter(user=user).order_by().values_list("role", flat=True)
        return next(iter(roles[:1]), None)


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role, default=Role.DEVELOPER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def personal_team_for_a_new_user(sender, instance, created, raw=False, **kwargs):
    """However a user is made (sign-up, an invitation, the admin, createsuperuser)."""
    if created and not raw:
        Team.personal_for(instance)


def _mfa_rule_key(user_id) -> str:
    return f"team-mfa-rule:{user_id}"


def _cache_call(method, *args):
    """A cache call that never fails the request: with Redis away, the database answers."""
    try:
        return method(*args)
    except Exception:  # the cache backend's own errors (redis-py's), whichever they are
        logger.warning("the cache did not answer; asking the database", exc_info=True)
        return None


def _forget_mfa_rule(user_ids: list[int]) -> None:
    keys = [_mfa_rule_key(user_id) for user_id in user_ids]
    if not keys:
        return
    # At once, and again once the change is committed: a request between the two would
    # have cached what the database still said.
    _cache_call(cache.delete_many, keys)
    transaction.on_commit(lambda: _cache_call(cache.delete_many, keys))


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def _membership_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        _forget_mfa_rule([instance.user_id])


@receiver(post_save, sender=Team)
def _team_saved(sender, instance, created, raw=False, **kwargs):
    if not created and not raw:
        instance.forget_mfa_rule()


class InvitationStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"


# An invitation is answered or revoked once, from pending; every outcome is final.
INVITATION_TRANSITIONS: dict[str, frozenset[str]] = {
    InvitationStatus.PENDING: frozenset(
        {InvitationStatus.ACCEPTED, InvitationStatus.DECLINED, InvitationStatus.REVOKED}
    ),
    InvitationStatus.ACCEPTED: frozenset(),
    InvitationStatus.DECLINED: frozenset(),
    InvitationStatus.REVOKED: frozenset(),
}


class Invitation(models.Model):
    """An e-mailed invitation into a team with a role. Its link carries a signed token
    (deployments/services/teams.py); the row makes it single-use and revocable."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role, default=Role.DEVELOPER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=InvitationStatus, default=InvitationStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One waiting invitation per address and team: inviting again says so.
            models.UniqueConstraint(
                Lower("email"),
                "team",
                condition=Q(status="pending"),
                name="one_pending_invitation_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.team} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == InvitationStatus.PENDING

    def is_expired(self, now) -> bool:
        return now >= self.expires_at

    def answer(self, status: str, user, now) -> None:
        """Accept, decline or revoke: once, from pending (a guarded move)."""
        transitions.move(
            self, "status", INVITATION_TRANSITIONS, status, answered_by=user, answered_at=now
        )
