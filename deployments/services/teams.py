"""Teams: making one, members and their roles, and invitations by e-mail.

Admins and owners manage members; only an owner makes or unmakes another owner, and a
team always keeps one. Removing a member takes effect on their next request, page or API
call alike: access is asked of the membership every time (apps/access.py), and their API
tokens for the team are deleted with the membership.

An invitation's link carries a signed token (django.core.signing: the invitation's id and
a salt only this installation knows), good for PAAS_INVITATION_DAYS; the row makes it
single-use and revocable, and it is answered by the user whose e-mail it was sent to.

A team's owners may require two-factor sign-in of every member (apps/two_factor.py
enforces it) and delete the team once it holds no apps; a personal team goes only with its
user.
"""

from __future__ import annotations

from datetime import timedelta

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from apps.models import ApiToken, Invitation, InvitationStatus, Membership, Role, Team, rank
from deployments.services import Conflict, ServiceError
from deployments.services.audit import record
from paas.transitions import InvalidTransition

TOKEN_SALT = "slipway.team-invitation"
TEAM_NAME_MAX = 63


class Forbidden(ServiceError):
    status = 403


class Gone(ServiceError):
    status = 410


# --- teams -------------------------------------------------------------------------------------


def teams_of(user):
    return Team.reached_by(user).order_by("name", "pk")


def create_team(user, name: str) -> Team:
    name = (name or "").strip()
    if not name or len(name) > TEAM_NAME_MAX:
        raise ValidationError({"name": [f"A team name has 1 to {TEAM_NAME_MAX} characters."]})
    with transaction.atomic():
        team = Team.objects.create(name=name)
        Membership.objects.create(team=team, user=user, role=Role.OWNER)
    record("team.create", target=str(team.pk), team=team, name=name)
    return team


def set_require_mfa(team: Team, actor, required: bool) -> Team:
    """An owner requires two-factor sign-in of every member, or stops; they must use it
    themselves first, or they would lock themselves out of their own team."""
    require_role(team, actor, Role.OWNER)
    if required and not is_mfa_enabled(actor):
        raise Conflict(
            "Set up two-factor sign-in yourself first (the Security page), then require it "
            "of the team.",
            "mfa_not_set_up",
        )
    Team.objects.filter(pk=team.pk).update(require_mfa=required)
    team.require_mfa = required
    team.forget_mfa_rule()
    _audit("team.require_mfa", team, required=required)
    return team


def delete_team(team: Team, actor) -> None:
    """An owner deletes a team that holds no apps; its memberships, invitations and API
    tokens go with it. The audit entry keeps the team's name."""
    require_role(team, actor, Role.OWNER)
    if team.is_personal:
        raise Conflict(
            f"{team.name} is a personal team: it goes only with its user's account.",
            "personal_team",
        )
    with transaction.atomic():
        # FOR UPDATE: an app being made into the team (its insert's key-share lock) waits,
        # then fails, or goes first and is counted here.
        Team.objects.select_for_update().get(pk=team.pk)
        _check_holds_no_apps(team)
        _audit("team.delete", team)
        team.delete()


def _check_holds_no_apps(team: Team) -> None:
    count = team.apps.count()
    if count:
        raise Conflict(
            f"{team.name} still holds {count} app{pluralize(count)}: move or delete its "
            f"{count} app{pluralize(count)} first.",
            "team_has_apps",
        )


def team_to_deploy_in(user, team_id: int | None) -> Team | None:
    """The team a new app goes into: one the user is a developer or above in (a team they
    are not in is as unknown as one that does not exist); none named: a token's own team,
    or (None) their personal team."""
    team_id = team_id or getattr(user, "token_team_id", None)
    if team_id is None:
        return None
    team = teams_of(user).filter(pk=team_id).first()
    if team is None:
        raise ServiceError(f"You are in no team {team_id}.", "invalid_team")
    require_role(team, user, Role.DEVELOPER)
    return team


def require_role(team: Team, user, least: str) -> str:
    role = team.role_of(user)
    if rank(role) < rank(least):
        raise Forbidden(f"Only a team {least} or above may do this.", "forbidden")
    return role


# --- members -----------------------------------------------------------------------------------


def change_role(team: Team, actor, member: Membership, role: str) -> Membership:
    _check_role_name(role)
    _check_may_manage(team, actor, member.role, role)
    with transaction.atomic():
        _lock_owners(team)
        if member.role == Role.OWNER and role != Role.OWNER:
            _keep_an_owner(team, member)
        Membership.objects.filter(pk=member.pk).update(role=role)
    member.refresh_from_db()
    _audit("team.role", team, member=member.user.get_username(), role=role)
    return member


def remove_member(team: Team, actor, member: Membership) -> None:
    """An admin removes a member (an owner, any one); anyone may leave."""
    leaving = member.user_id == actor.pk
    if not leaving:
        _check_may_manage(team, actor, member.role, member.role)
    with transaction.atomic():
        _lock_owners(team)
        if member.role == Role.OWNER:
            _keep_an_owner(team, member)
        member.delete()
        # Their tokens for the team die with the membership; a request already past
        # authentication still finds no app (access asks the membership).
        revoked = ApiToken.objects.filter(team=team, user_id=member.user_id).delete()[0]
    _audit("team.remove", team, member=member.user.get_username(), tokens_revoked=revoked)


def _check_may_manage(team: Team, actor, old_role: str, new_role: str) -> None:
    actor_role = require_role(team, actor, Role.ADMIN)
    touches_owner = Role.OWNER in (old_role, new_role)
    if touches_owner and actor_role != Role.OWNER:
        raise Forbidden("Only an owner of the team makes or unmakes an owner.", "forbidden")


def _lock_owners(team: Team) -> None:
    # Two owners demoting each other at once: one of them stays.
    list(team.memberships.select_for_update().filter(role=Role.OWNER))


def _keep_an_owner(team: Team, member: Membership) -> None:
    if not team.memberships.filter(role=Role.OWNER).exclude(pk=member.pk).exists():
        raise Conflict(
            f"{member.user.get_username()} is the last owner of {team.name}: make someone "
            "else an owner first.",
            "last_owner",
        )


def _check_role_name(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": [f"Choose one of {', '.join(Role.values)}."]})


# --- invitations -------------------------------------------------------------------------------


def invite(team: Team, actor, email: str, role: str) -> Invitation:
    """Record the invitation and e-mail its link; the link is never shown anywhere else."""
    _check_role_name(role)
    _check_may_manage(team, actor, role, role)
    email = _checked_email(email)
    if team.memberships.filter(user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member of {team.name}.", "already_member")
    expires = timezone.now() + timedelta(days=settings.PAAS_INVITATION_DAYS)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                team=team, email=email, role=role, invited_by=actor, expires_at=expires
            )
    except IntegrityError:
        raise Conflict(f"{email} has an invitation waiting already.", "already_invited") from None
    _send_invitation(invitation)
    _audit("team.invite", team, email=email, role=role)
    return invitation


def _checked_email(email: str) -> str:
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": ["Enter a valid e-mail address."]}) from None
    return email


def link_token(invitation: Invitation) -> str:
    return signing.dumps(invitation.pk, salt=TOKEN_SALT)


def _send_invitation(invitation: Invitation) -> None:
    base = settings.PAAS_PUBLIC_URL or "http://localhost:8000"  # as webhook_url says
    link = f"{base}/teams/invitations/{link_token(invitation)}/"
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "Someone"
    send_mail(
        f"Join {invitation.team.name} on Slipway",
        f"{inviter} invites you to the team {invitation.team.name} as {invitation.role}.\n\n"
        f"Accept or decline: {link}\n\nThe link works once, until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC.",
        None,
        [invitation.email],
    )


def invitation_from_token(token: str) -> Invitation:
    """The invitation a link names, if the link is genuine and not expired."""
    max_age = timedelta(days=settings.PAAS_INVITATION_DAYS)
    try:
        pk = signing.loads(token, salt=TOKEN_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise Gone("This invitation has expired: ask for a new one.", "expired") from None
    except signing.BadSignature:
        raise ServiceError("This is not an invitation link.", "invalid_link") from None
    invitation = Invitation.objects.select_related("team").filter(pk=pk).first()
    if invitation is None:
        raise ServiceError("This is not an invitation link.", "invalid_link")
    return invitation


def accept(invitation: Invitation, user) -> Membership:
    _check_answerable(invitation, user)
    with transaction.atomic():
        _answer(invitation, InvitationStatus.ACCEPTED, user)
        member, _ = Membership.objects.get_or_create(
            team=invitation.team, user=user, defaults={"role": invitation.role}
        )
    _audit("team.join", invitation.team, role=member.role)
    return member


def decline(invitation: Invitation, user) -> None:
    _check_answerable(invitation, user)
    _answer(invitation, InvitationStatus.DECLINED, user)


def revoke(invitation: Invitation, actor) -> None:
    _check_may_manage(invitation.team, actor, invitation.role, invitation.role)
    _answer(invitation, InvitationStatus.REVOKED, actor)
    _audit("team.revoke", invitation.team, email=invitation.email)


def _check_answerable(invitation: Invitation, user) -> None:
    if (user.email or "").lower() != invitation.email.lower():
        raise Forbidden(
            f"This invitation is for {invitation.email}: sign in as that user to answer it.",
            "not_yours",
        )
    if invitation.is_pending and invitation.is_expired(timezone.now()):
        raise Gone("This invitation has expired: ask for a new one.", "expired")


def _answer(invitation: Invitation, status: str, user) -> None:
    try:
        invitation.answer(status, user, timezone.now())
    except InvalidTransition:
        raise Gone(f"This invitation was {invitation.status} already.", "used") from None


def _audit(action: str, team: Team, **details) -> None:
    """The actor is the request's (paas.actor); the team's name outlives the team."""
    record(action, target=team.name, team=team, **details)
