"""The app page's notification targets (with their delivery logs) and its resource panel.

Targets are the owner's alone — their secrets sign what Slipway sends — so anyone else,
staff included, gets 404. The resource panel is polled while the tab is visible.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.access import OWN, app_for
from apps.models import App
from apps.models.notifications import NotificationEvent
from apps.web.pages import STOP_POLLING, login_required
from deployments.adapters.runtime import RuntimeBackendError
from deployments.services import ServiceError, notifications
from deployments.services.resources import resource_usage

DELIVERIES_SHOWN = 10


def _notifications_context(app: App, revealed=None, **extra) -> dict:
    targets = list(app.notification_targets.all())
    for target in targets:
        target.recent = list(target.deliveries.all()[:DELIVERIES_SHOWN])
        target.shown_secret = (revealed or {}).get(target.pk)
    return {"app": app, "targets": targets, "events": NotificationEvent.choices, **extra}


def _answer(request, app: App, status: int = 200, **extra):
    if not request.htmx and request.method == "POST":
        # A plain form post (no JavaScript): say what happened on the app page.
        if extra.get("error"):
            messages.error(request, extra["error"])
        else:
            messages.success(request, "Done. Reveal a target's secret from the app page.")
        return redirect("app-detail", app.name)
    context = _notifications_context(app, **extra)
    return render(request, "apps/_notifications.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def app_notifications(request, name):
    """The targets and their recent deliveries; a POST adds a target."""
    app = app_for(request.user, name, to=OWN)
    if request.method == "GET":
        return _answer(request, app)
    url, events = request.POST.get("url", ""), request.POST.getlist("events")
    try:
        target, secret = notifications.add_target(app, url, events)
    except ServiceError as exc:
        return _answer(request, app, 400, error=exc.message, url=url)
    # Shown now, and after that only on an explicit reveal.
    return _answer(request, app, created=target.pk, revealed={target.pk: secret})


@login_required
@require_POST
def notification_delete(request, name, target_id):
    app = app_for(request.user, name, to=OWN)
    if not notifications.remove_target(app, target_id):
        raise Http404("no such target")
    return _answer(request, app)


@login_required
@require_POST
def notification_reveal(request, name, target_id):
    app = app_for(request.user, name, to=OWN)
    target = get_object_or_404(app.notification_targets, pk=target_id)
    return _answer(request, app, revealed={target.pk: target.secret})


@login_required
def app_resources(request, name):
    """CPU and memory of the live containers; polled, and stops once nothing is deployed."""
    app = app_for(request.user, name)
    context = {"app": app}
    try:
        context["usage"] = resource_usage(app)
    except RuntimeBackendError as exc:
        context["error"] = exc.message
    done = not context.get("error") and not context.get("usage")
    context["poll"] = not done
    status = STOP_POLLING if done and request.htmx else 200
    return render(request, "apps/_resources.html", context, status=status)
