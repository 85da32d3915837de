"""The settings page's log drains card: add, remove, and each drain's status.

Drains are the owner's alone — a drain receives everything the app prints — so anyone
else, staff included, gets 404.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.access import OWN, app_for
from apps.models import App
from apps.web.pages import login_required
from deployments.services import ServiceError, log_drains


def _answer(request, app: App, status: int = 200, **extra):
    if not request.htmx and request.method == "POST":
        # A plain form post (no JavaScript): say what happened on the settings page.
        if extra.get("error"):
            messages.error(request, extra["error"])
        else:
            messages.success(request, "Log drains updated.")
        return redirect("app-settings", app.name)
    context = {"app": app, "drains": app.log_drains.all(), **extra}
    return render(request, "apps/_log_drains.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def app_drains(request, name):
    """The drains and their status; a POST adds one."""
    app = app_for(request.user, name, to=OWN)
    if request.method == "GET":
        return _answer(request, app)
    url = request.POST.get("url", "")
    try:
        drain = log_drains.add_drain(app, url)
    except ServiceError as exc:
        return _answer(request, app, 400, error=exc.message, url=url)
    # An HTTPS drain's secret is shown now only; the API's POST answer carries it too.
    return _answer(request, app, created=drain)


@login_required
@require_POST
def drain_delete(request, name, drain_id):
    app = app_for(request.user, name, to=OWN)
    if not log_drains.remove_drain(app, drain_id):
        raise Http404("no such drain")
    return _answer(request, app)
