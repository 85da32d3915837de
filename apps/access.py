"""Who may see and do what: the one lookup per object, used by the dashboard, the API and
the admin.

An app is reached for one of four purposes (`to=`), each its own circle of users:

- READ: its status, deployments, deploy logs, settings without secrets, resource use —
  the owner and staff.
- MANAGE: run the platform — stop, start, restart, cancel a deployment, delete the app —
  the owner and staff.
- CHANGE: anything that changes what runs or can read what it holds — source, commands,
  env vars, routing, domains, volumes, scale, deploy/redeploy/rollback/promote, one-off
  runs and jobs, the runtime log and run output — the owner and superusers. A staff user
  may not deploy another owner's code with the owner's provider token.
- OWN: reveal a stored secret (an env value, the webhook secret), add-ons and their
  credentials, notification targets — the owner alone.

Whatever a user may not do answers Http404, exactly like an app that does not exist, so an
outsider cannot probe for names and every refusal has one shape (the API's 404, the
dashboard's 404 page).
"""

from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.models import AddOn, App, Environment
from apps.validators import could_be_environment_name
from deployments.models import Deployment, PromotionRequest

READ, MANAGE, CHANGE, OWN = "read", "manage", "change", "own"


def may(user, app: App, to: str) -> bool:
    """Whether `user` may do `to` to `app` (templates use it to offer only what works)."""
    if user.pk == app.owner_id:
        return True
    if to in (READ, MANAGE):
        return user.is_staff
    if to == CHANGE:
        return user.is_superuser
    if to == OWN:
        return False
    raise ValueError(f"unknown access {to!r}")


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
