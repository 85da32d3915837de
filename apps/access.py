"""Who may see and do what: the one lookup per object, used by the dashboard, the API and
the admin.

An app belongs to a team (apps/models/teams.py), and is reached for one of five purposes
(`to=`), each its own circle of users — by their role on the app's team, and the
platform's staff:

- READ: its status, deployments, deploy logs, settings without secrets, resource use,
  metrics — every member (viewer and up) and staff.
- MANAGE: run it — stop, start, restart, cancel a deployment — developers and up, and
  staff.
- CHANGE: anything that changes what runs or can read what it holds — source, commands,
  env vars, routing, domains, volumes, scale, deploy/redeploy/rollback/promote, one-off
  runs and jobs, the runtime log and run output — developers and up, and superusers. A
  staff user may not deploy a team's code with its owner's provider token.
- ADMIN: delete the app — admins and owners, and staff.
- OWN: reveal a stored secret (an env value, the webhook secret), add-ons and their
  credentials, notification targets, log drains — admins and owners alone.

Whatever a user may not do answers Http404, exactly like an app that does not exist, so an
outsider cannot probe for names and every refusal has one shape (the API's 404, the
dashboard's 404 page).
"""

from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.models import AddOn, App, Environment, Invitation, Membership, Role, Team, rank
from apps.validators import could_be_environment_name
from deployments.models import Deployment, PromotionRequest

READ, MANAGE, CHANGE, ADMIN, OWN = "read", "manage", "change", "admin", "own"

# (the least role on the app's team, and which of the platform's users may anyway)
RULES = {
    READ: (Role.VIEWER, "is_staff"),
    MANAGE: (Role.DEVELOPER, "is_staff"),
    CHANGE: (Role.DEVELOPER, "is_superuser"),
    ADMIN: (Role.ADMIN, "is_staff"),
    OWN: (Role.ADMIN, None),
}


def may(user, app: App, to: str) -> bool:
    """Whether `user` may do `to` to `app` (templates use it to offer only what works)."""
    if to not in RULES:
        raise ValueError(f"unknown access {to!r}")
    least, platform_flag = RULES[to]
    if platform_flag and getattr(user, platform_flag, False):
        return True
    return rank(app.team.role_of(user)) >= rank(least)


def app_for(user, name: str, to: str = READ, owner_only: bool = False) -> App:
    """The app called `name`, if `user` may do `to` to it; else Http404.
    `owner_only=True` is the older spelling of `to=OWN`."""
    to = OWN if owner_only else to
    app = get_object_or_404(App.objects.visible_to(user), name=name.lower())
    if not may(user, app, to):
        raise Http404("no such app")
    return app


def addon_for(user, name: str, addon_id: int) -> AddOn:
    """An add-on of the user's own app (add-ons hold credentials: the owner's alone)."""
    app = app_for(user, name, to=OWN)
    return get_object_or_404(
        AddOn.objects.select_related("environment__app"), pk=addon_id, environment__app=app
    )


def deployment_for(app: App, number: int) -> Deployment:
    return get_object_or_404(
        app.deployments.select_related("environment", "requested_by"), number=number
    )


def environment_for(app: App, name: str) -> Environment:
    if not could_be_environment_name(name):
        raise Http404("no such environment")
    return get_object_or_404(app.environments.select_related("live_deployment"), name=name)


def promotion_request_for(app: App, request_id: int) -> PromotionRequest:
    return get_object_or_404(PromotionRequest.objects.select_related("app"), pk=request_id, app=app)


def team_for(user, team_id: int) -> Team:
    """A team the user is a member of; any other answers 404 (no probing for ids)."""
    return get_object_or_404(Team.reached_by(user), pk=team_id)


def member_for(team: Team, username: str) -> Membership:
    return get_object_or_404(
        team.memberships.select_related("user"), user__username=username[:150]
    )


def invitation_for(team: Team, invitation_id: int) -> Invitation:
    return get_object_or_404(team.invitations.select_related("team"), pk=invitation_id)
