"""/api/v1 teams: the ones you are in, making one, requiring 2FA of its members, deleting
it, members and their roles, invitations by e-mail. Managing members takes an admin or
owner of the team, the team itself an owner (deployments/services/teams.py); a team you are
not in answers 404."""

from ninja import Router, Status

from apps.access import invitation_for, member_for, team_for
from apps.api.schemas import (
    Id,
    InvitationIn,
    InvitationOut,
    RoleIn,
    TeamDetailOut,
    TeamIn,
    TeamListOut,
    TeamPatchIn,
    answers,
)
from deployments.services import teams

router = Router(tags=["teams"])


@router.get("/teams", response=answers(200, TeamListOut))
def list_teams(request):
    return {"teams": teams.teams_of(request.auth)}


@router.post("/teams", response=answers(201, TeamDetailOut, 400))
def create_team(request, payload: TeamIn):
    """You are its owner."""
    return Status(201, teams.create_team(request.auth, payload.name))


@router.get("/teams/{int:team_id}", response=answers(200, TeamDetailOut, 404))
def get_team(request, team_id: Id):
    return team_for(request.auth, team_id)


@router.patch("/teams/{int:team_id}", response=answers(200, TeamDetailOut, 400, 403, 404, 409))
def change_team(request, team_id: Id, payload: TeamPatchIn):
    """Owners only; requiring 2FA takes an owner who uses it (409 mfa_not_set_up)."""
    team = team_for(request.auth, team_id)
    return teams.set_require_mfa(team, request.auth, payload.require_mfa)


@router.delete("/teams/{int:team_id}", response=answers(204, None, 403, 404, 409))
def delete_team(request, team_id: Id):
    """Owners only; never a personal team (409 personal_team) nor one holding apps (409
    team_has_apps). Its memberships, invitations and API tokens go with it."""
    teams.delete_team(team_for(request.auth, team_id), request.auth)
    return Status(204, None)


@router.patch(
    "/teams/{int:team_id}/members/{username}",
    response=answers(200, TeamDetailOut, 400, 403, 404, 409),
)
def change_role(request, team_id: Id, username: str, payload: RoleIn):
    """Admins and owners; only an owner makes or unmakes an owner, and the last stays."""
    team = team_for(request.auth, team_id)
    teams.change_role(team, request.auth, member_for(team, username), payload.role)
    return team


@router.delete(
    "/teams/{int:team_id}/members/{username}", response=answers(204, None, 403, 404, 409)
)
def remove_member(request, team_id: Id, username: str):
    """Admins remove members (an owner, any one); anyone may remove themselves."""
    team = team_for(request.auth, team_id)
    teams.remove_member(team, request.auth, member_for(team, username))
    return Status(204, None)


@router.post(
    "/teams/{int:team_id}/invitations",
    response=answers(201, InvitationOut, 400, 403, 404, 409),
)
def invite(request, team_id: Id, payload: InvitationIn):
    """E-mails a link that works once, for PAAS_INVITATION_DAYS; the answer never holds it."""
    team = team_for(request.auth, team_id)
    return Status(201, teams.invite(team, request.auth, payload.email, payload.role))


@router.delete(
    "/teams/{int:team_id}/invitations/{int:invitation_id}",
    response=answers(204, None, 403, 404, 410),
)
def revoke_invitation(request, team_id: Id, invitation_id: Id):
    team = team_for(request.auth, team_id)
    teams.revoke(invitation_for(team, invitation_id), request.auth)
    return Status(204, None)
