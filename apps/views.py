"""Dashboard pages. Thin: look up what the user may see, call a service, render."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from apps.models import App


def _get_app_for_user(request, name: str) -> App:
    """Another user's app is indistinguishable from a missing one: 404."""
    return get_object_or_404(App.objects.visible_to(request.user), name=name.lower())


@login_required
def home(request):
    apps = App.objects.visible_to(request.user).prefetch_related("environments")
    return render(request, "apps/home.html", {"apps": apps})


@login_required
def app_detail(request, name):
    app = _get_app_for_user(request, name)
    deployments = app.deployments.select_related("environment", "requested_by")[:50]
    return render(request, "apps/app_detail.html", {"app": app, "deployments": deployments})
