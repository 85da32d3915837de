"""Who may see what: the one lookup per object, used by the dashboard, the API and the admin.

Another user's object is indistinguishable from a missing one: every function raises Http404
for both, so nobody can probe for names they may not see.
"""

from django.http import Http404
from django.shortcuts import get_object_or_404

from apps.models import AddOn, App, Environment, EnvironmentName
from deployments.models import Deployment, PromotionRequest


def app_for(user, name: str, owner_only: bool = False) -> App:
    """The app called `name` as `user` may see it. Staff see every app unless the object
    carries secrets only its owner may touch (add-ons, notification targets): owner_only."""
    apps = App.objects.filter(owner=user) if owner_only else App.objects.visible_to(user)
    return get_object_or_404(apps, name=name.lower())


def addon_for(user, name: str, addon_id: int) -> AddOn:
    """An add-on of the user's own app (add-ons hold credentials: owner only, staff too)."""
    app = app_for(user, name, owner_only=True)
    return get_object_or_404(
        AddOn.objects.select_related("environment__app"), pk=addon_id, environment__app=app
    )


def deployment_for(app: App, number: int) -> Deployment:
    return get_object_or_404(
        app.deployments.select_related("environment", "requested_by"), number=number
    )


def environment_for(app: App, name: str) -> Environment:
    if name not in EnvironmentName.values:
        raise Http404("no such environment")
    return app.environments.select_related("live_deployment").get(name=name)


def promotion_request_for(app: App, request_id: int) -> PromotionRequest:
    return get_object_or_404(PromotionRequest.objects.select_related("app"), pk=request_id, app=app)
