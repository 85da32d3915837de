"""Custom domains and volumes on the app's settings page: one partial each, re-rendered by
every add or remove."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.access import CHANGE, READ, app_for
from apps.models import Domain, Volume
from apps.web.pages import login_required
from deployments.services import ServiceError
from deployments.services import domains as service


def _respond(request, app, template: str, context: dict, status: int = 200):
    if not request.htmx:
        if context.get("error"):
            messages.error(request, context["error"])
        elif context.get("done"):
            messages.success(request, context["done"])
        return redirect("app-settings", app.name)
    return render(request, template, {"app": app, **context}, status=status)


def domains_context(app) -> dict:
    return {"domains": Domain.objects.filter(environment__app=app).select_related("environment")}


def volumes_context(app) -> dict:
    volumes = list(Volume.objects.filter(environment__app=app).select_related("environment__app"))
    sizes = service.volume_sizes(volumes)
    for volume in volumes:
        volume.size = sizes.get(volume.pk)
    return {"volumes": volumes}


def _error_text(exc) -> str:
    if isinstance(exc, ServiceError):
        return exc.message
    return " ".join(exc.messages)


@login_required
def domains(request, name):
    app = app_for(request.user, name, to=CHANGE if request.method == "POST" else READ)
    if request.method != "POST":
        return render(request, "apps/_domains.html", {"app": app, **domains_context(app)})
    host = request.POST.get("hostname", "")
    try:
        domain = service.add_domain(app, request.POST.get("environment", "production"), host)
    except (ValidationError, ServiceError) as exc:
        context = {**domains_context(app), "error": _error_text(exc), "hostname": host}
        return _respond(request, app, "apps/_domains.html", context, 400)
    done = f"{domain.hostname} added for {domain.environment.name}: verify it to route it."
    return _respond(request, app, "apps/_domains.html", {**domains_context(app), "done": done})


@login_required
@require_POST
def domain_verify(request, name, hostname):
    app = app_for(request.user, name, to=CHANGE)
    get_object_or_404(Domain, environment__app=app, hostname=hostname)
    try:
        domain = service.verify_domain(app, hostname)
    except ServiceError as exc:
        context = {**domains_context(app), "error": exc.message}
        return _respond(request, app, "apps/_domains.html", context, 400)
    done = f"{domain.hostname} is verified and now routes to {domain.environment.name}."
    return _respond(request, app, "apps/_domains.html", {**domains_context(app), "done": done})


@login_required
@require_POST
def domain_delete(request, name, hostname):
    app = app_for(request.user, name, to=CHANGE)
    get_object_or_404(Domain, environment__app=app, hostname=hostname)
    service.remove_domain(app, hostname)
    done = f"{hostname} removed."
    return _respond(request, app, "apps/_domains.html", {**domains_context(app), "done": done})


@login_required
def volumes(request, name):
    app = app_for(request.user, name, to=CHANGE if request.method == "POST" else READ)
    if request.method != "POST":
        return render(request, "apps/_volumes.html", {"app": app, **volumes_context(app)})
    post = request.POST
    try:
        service.add_volume(
            app,
            post.get("environment", "production"),
            post.get("name", ""),
            post.get("mount_path", ""),
        )
    except (ValidationError, ServiceError) as exc:
        context = {**volumes_context(app), "error": _error_text(exc)}
        return _respond(request, app, "apps/_volumes.html", context, 400)
    done = "Volume added; it is mounted from the next deployment."
    return _respond(request, app, "apps/_volumes.html", {**volumes_context(app), "done": done})


@login_required
@require_POST
def volume_delete(request, name, volume_id):
    app = app_for(request.user, name, to=CHANGE)
    volume = get_object_or_404(
        Volume.objects.select_related("environment__app"), pk=volume_id, environment__app=app
    )
    deleted = service.remove_volume(volume, delete_data=request.POST.get("delete_data") == "on")
    done = "Volume removed" + (" and its data deleted." if deleted else "; its data is kept.")
    return _respond(request, app, "apps/_volumes.html", {**volumes_context(app), "done": done})
