"""The dashboard's team pages: the teams you are in, making one, a team's members and
roles, invitations by e-mail, requiring 2FA and deleting the team, the page an
invitation's link opens, and the header's team switcher. Plain forms that post and
redirect; every refusal is shown as a message and changes nothing
(deployments/services/teams.py decides)."""

from functools import wraps

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.access import invitation_for, member_for, team_for
from apps.models import Role
from apps.web.pages import login_required
from apps.web.switcher import choose_team
from deployments.services import ServiceError, teams

AUDIT_SHOWN = 30


def _refusal_text(exc) -> str:
    return exc.message if isinstance(exc, ServiceError) else " ".join(exc.messages)


def team_action(view):
    """POST only, on a team the user is in (else 404); back to the team's page with what
    happened, or why nothing did."""

    @login_required
    @require_POST
    @wraps(view)
    def wrapper(request, team_id, **kwargs):
        team = team_for(request.user, team_id)
        try:
            messages.success(request, view(request, team, **kwargs))
        except (ServiceError, ValidationError) as exc:
            messages.error(request, _refusal_text(exc))
        if not team.memberships.filter(user=request.user).exists():
            return redirect("teams")  # they left it
        return redirect("team-detail", team.pk)

    return wrapper


@login_required
def teams_page(request):
    if request.method == "POST":
        try:
            team = teams.create_team(request.user, request.POST.get("name", ""))
        except ValidationError as exc:
            messages.error(request, _refusal_text(exc))
            return redirect("teams")
        messages.success(request, f"Team {team.name} is made; you are its owner.")
        return redirect("team-detail", team.pk)
    mine = [(team, team.role_of(request.user)) for team in teams.teams_of(request.user)]
    return render(request, "teams/teams.html", {"teams": mine})


@login_required
def team_detail(request, team_id):
    team = team_for(request.user, team_id)
    role = team.role_of(request.user)
    manages = role in (Role.OWNER, Role.ADMIN)
    context = {
        "team": team,
        "role": role,
        "manages": manages,
        "members": team.memberships.select_related("user"),
        "invitations": team.invitations.filter(status="pending") if manages else [],
        "roles": Role.choices,
        "owns": role == Role.OWNER,
        "apps": team.apps.order_by("name"),
        # Its owners see the team's log: every entry of its apps and of the team itself.
        "audit": team.audit_entries.order_by("-id")[:AUDIT_SHOWN] if role == Role.OWNER else [],
    }
    return render(request, "teams/team.html", context)


@team_action
def member_role(request, team, username):
    member = teams.change_role(
        team, request.user, member_for(team, username), request.POST.get("role", "")
    )
    return f"{member.user.get_username()} is now {member.role}."


@team_action
def member_remove(request, team, username):
    member = member_for(team, username)
    teams.remove_member(team, request.user, member)
    return f"{member.user.get_username()} is no longer in {team.name}."


@team_action
def invite(request, team):
    email, role = request.POST.get("email", ""), request.POST.get("role", Role.DEVELOPER)
    invitation = teams.invite(team, request.user, email, role)
    return f"Invitation sent to {invitation.email} as {invitation.role}."


@team_action
def invitation_revoke(request, team, invitation_id):
    invitation = invitation_for(team, invitation_id)
    teams.revoke(invitation, request.user)
    return f"The invitation of {invitation.email} is revoked."


@team_action
def require_mfa(request, team):
    required = request.POST.get("require_mfa") == "on"
    teams.set_require_mfa(team, request.user, required)
    if required:
        return f"Every member of {team.name} must now use two-factor sign-in."
    return f"{team.name} no longer requires two-factor sign-in."


@login_required
@require_POST
def team_delete(request, team_id):
    """The team's name typed out, then the service's checks; on to the Teams page."""
    team = team_for(request.user, team_id)
    name = team.name
    try:
        if request.POST.get("confirm", "").strip() != name:
            raise ServiceError(f"Type “{name}” exactly to delete this team.", "invalid")
        teams.delete_team(team, request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("team-detail", team_id)
    messages.success(request, f"Team {name} is deleted.")
    return redirect("teams")


# --- the header's team switcher ----------------------------------------------------------------


@login_required
@require_POST
def switch_team(request):
    """One of the user's teams (another answers 404, nothing kept) or "" for All teams;
    back to the page it was chosen on, if that is one of this site's."""
    chosen = request.POST.get("team", "")
    if chosen and not chosen.isdigit():
        raise Http404("no such team")
    choose_team(request, team_for(request.user, int(chosen)) if chosen else None)
    return redirect(_back_to(request))


def _back_to(request) -> str:
    url = request.POST.get("next", "")
    local = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if local else reverse("home")


# --- an invitation's link ----------------------------------------------------------------------


@login_required
def invitation_page(request, token):
    """What the e-mailed link opens: the invitation, and buttons to accept or decline."""
    try:
        invitation = teams.invitation_from_token(token)
    except ServiceError as exc:
        return render(request, "teams/invitation.html", {"error": exc.message}, status=exc.status)
    if request.method == "POST":
        return _answer(request, invitation, request.POST.get("answer", ""))
    return render(request, "teams/invitation.html", {"invitation": invitation, "token": token})


def _answer(request, invitation, answer: str):
    try:
        if answer == "accept":
            teams.accept(invitation, request.user)
            messages.success(request, f"You are in {invitation.team.name} as {invitation.role}.")
            return redirect("team-detail", invitation.team.pk)
        if answer != "decline":
            raise ServiceError("Accept or decline the invitation.", "invalid")
        teams.decline(invitation, request.user)
    except ServiceError as exc:
        context = {"error": exc.message}
        return render(request, "teams/invitation.html", context, status=exc.status)
    messages.success(request, f"You declined the invitation to {invitation.team.name}.")
    return redirect("home")
