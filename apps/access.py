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
- OWN: reveal a stored secret (the webhook secret, a protected env var's value), add-ons
  and their credentials, notification targets, log drains — admins and owners alone.

Env vars (may_touch_env_var): an unprotected one is CHANGE's to set or remove, and its
value is shown to the team's developers and up; a protected one is OWN's to see, set or
remove, and so is marking one protected or not. A value is the team's: no platform flag
reveals one (a superuser may set an unprotected var, not read it). The services enforce
it on every write (deployments.services.set_env_vars takes the answer), refusing with
403 protected_env_var.

Whatever a user may not do answers Http404, exactly like an app that does not exist, so an
outsider cannot probe for names and every refusal has one shape (the API's 404, the
dashboard's 404 page).
"""

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.models import (
    AddOn,
    App,
    Environment,
    EnvVar,
    Invitation,
    Membership,
    Role,
    Team,
    app_poll_state,
    rank,
)
from apps.validators import could_be_environment_name, validate_env_key
from deployments.models import Deployment, PromotionRequest
from deployments.services import ProtectedEnvVar

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
    return _role_may(user, app, to)


def _role_may(user, app: App, to: str) -> bool:
    """By the user's role on the app's team alone, whatever their platform flags."""
    return rank(app.team.role_of(user)) >= rank(RULES[to][0])


def may_touch_env_var(user, app: App, protected: bool, reveal: bool = False) -> bool:
    """Whether `user` may set or remove (or, with reveal, see the value of) one of `app`'s
    env vars that is `protected` or not; marking one is as touching a protected one."""
    to = OWN if protected else CHANGE
    return _role_may(user, app, to) if reveal else may(user, app, to)


def app_for(user, name: str, to: str = READ, owner_only: bool = False) -> App:
    """The app called `name`, if `user` may do `to` to it; else Http404.
    `owner_only=True` is the older spelling of `to=OWN`."""
    to = OWN if owner_only else to
    app = get_object_or_404(App.objects.with_role_of(user), name=name.lower())
    app.team.remember_role(user, app.viewer_role)
    if not may(user, app, to):
        raise Http404("no such app")
    return app


def readable_app_poll_state(user, name: str) -> tuple:
    """app_poll_state of the app called `name` if `user` may READ it, else Http404: what the
    status strip's poll needs on nearly every answer, in one statement that loads no model
    (bench/run --dashboard). visible_to is READ's whole check: every member of the app's
    team (viewer and up) and staff may READ, and it is exactly they whom it lets see."""
    assert RULES[READ] == (Role.VIEWER, "is_staff"), "READ changed: ask may() here too"
    state = app_poll_state(user, name.lower())
    if state is None:
        raise Http404("no such app")
    return state


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


def env_var_for(environment: Environment, key: str) -> EnvVar:
    try:
        validate_env_key(key)
    except ValidationError:
        raise Http404("no such variable") from None
    return get_object_or_404(environment.env_vars, key=key)


def env_var_to_reveal(user, app: App, environment: Environment, key: str) -> EnvVar:
    """The var whose value `user` may see: Http404 for anyone who may see no value at all
    (viewers, staff, outsiders), ProtectedEnvVar (403) for a developer and a protected one."""
    if not may_touch_env_var(user, app, protected=False, reveal=True):
        raise Http404("no such variable")
    var = env_var_for(environment, key)
    if not may_touch_env_var(user, app, var.protected, reveal=True):
        raise ProtectedEnvVar([var.key])
    return var


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
