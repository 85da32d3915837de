"""What the app page's buttons do: each a POST (CSRF-checked) that calls one use case and
answers with a toast (htmx) or a message and a redirect (a plain form post).

An action's response tells the page which panels to refresh with an HX-Trigger event:
new-deployment (the current-deployment panel and the history) and app-changed (the
environments, the history).
"""

from functools import wraps

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from apps.access import (
    ADMIN,
    CHANGE,
    MANAGE,
    app_for,
    deployment_for,
    environment_for,
    promotion_request_for,
)
from apps.forms import DeleteAppForm, EnvironmentChoiceForm, PipelineForm, PromoteForm
from apps.web.pages import login_required
from apps.web.settings import settings_page
from deployments import services
from deployments.adapters.runtime import RuntimeBackendError
from deployments.models import Deployment
from deployments.services import ServiceError, environments, pipelines, promotion
from deployments.services.archives import deploy_archive as queue_archive

NEW_DEPLOYMENT = ("new-deployment", "app-changed")
CHANGED = ("app-changed",)


def feedback(request, app, message: str, level: str = "success", status: int = 200, events=()):
    if not request.htmx:
        add = messages.success if level == "success" else messages.error
        add(request, message)
        return redirect("app-detail", app.name)
    response = render(
        request, "apps/_toast.html", {"message": message, "level": level}, status=status
    )
    if events:
        response["HX-Trigger"] = ", ".join(events)
    return response


def app_action(to: str):
    """Look the app up for `to` (apps.access: 404 for anyone who may not), run the action,
    say what happened. The view returns (message, events); a refusal from a service is
    shown, not raised."""

    def decorate(view):
        @login_required
        @require_POST
        @wraps(view)
        def wrapper(request, name, **kwargs):
            app = app_for(request.user, name, to=to)
            try:
                message, events = view(request, app, **kwargs)
            except ServiceError as exc:
                return feedback(request, app, exc.message, "error", exc.status)
            except RuntimeBackendError as exc:
                text = f"The container engine did not answer ({exc.message}); try again shortly."
                return feedback(request, app, text, "error", 503)
            return feedback(request, app, message, events=events)

        return wrapper

    return decorate


def _environment(request) -> str:
    form = EnvironmentChoiceForm(request.POST)
    if not form.is_valid():
        raise ServiceError("Choose one of the app's environments.", "invalid_environment")
    return form.cleaned_data["environment"]


@app_action(to=CHANGE)
def deploy(request, app):
    environment = _environment(request)
    d = services.queue_deployment(app, environment, requested_by=request.user)
    return f"Deployment #{d.number} to {environment} is queued.", NEW_DEPLOYMENT


@app_action(to=CHANGE)
def deploy_archive(request, app):
    """Deploy an uploaded .tar.gz of the source (no git); a bad archive changes nothing."""
    upload = request.FILES.get("archive")
    if upload is None:
        raise ServiceError("Choose a .tar.gz file to upload.", "archive_missing")
    environment = _environment(request)
    d = queue_archive(app, environment, upload, request.user)
    return (
        f"Deployment #{d.number} of the uploaded archive to {environment} is queued.",
        NEW_DEPLOYMENT,
    )


@app_action(to=CHANGE)
def redeploy(request, app, number):
    source = deployment_for(app, number)
    d = services.redeploy(source, requested_by=request.user)
    return f"Redeploying #{source.number} as deployment #{d.number}.", NEW_DEPLOYMENT


@app_action(to=CHANGE)
def rollback(request, app, number):
    source = deployment_for(app, number)
    d = services.rollback(source, requested_by=request.user)
    where = source.environment.name
    return f"Rolling {where} back to #{source.number} (deployment #{d.number}).", NEW_DEPLOYMENT


@app_action(to=MANAGE)
def cancel(request, app, number):
    d = services.cancel_deployment(deployment_for(app, number))
    return f"Deployment #{d.number} is cancelled.", CHANGED


@app_action(to=MANAGE)
def restart(request, app):
    environment = _environment(request)
    d = services.restart(app, environment, requested_by=request.user)
    return (
        f"Restarting {environment} with a fresh container (deployment #{d.number}).",
        NEW_DEPLOYMENT,
    )


@app_action(to=MANAGE)
def stop(request, app):
    environment = _environment(request)
    services.stop(app, environment)
    return f"Stopping {environment}; its address answers “stopped” until you start it.", CHANGED


@app_action(to=CHANGE)
def environment_create(request, app):
    try:
        env = environments.create_environment(app, request.POST.get("name", "").strip())
    except ValidationError as exc:
        raise ServiceError(" ".join(exc.messages), "invalid_name") from None
    return f"Environment {env.name} is created: deploy it to serve {env.url}.", CHANGED


@app_action(to=CHANGE)
def environment_delete(request, app):
    env = environment_for(app, _environment(request))
    environments.delete_environment(env)
    return f"Deleting {env.name}: its containers, add-ons and volumes go first.", CHANGED


@app_action(to=MANAGE)
def start(request, app):
    environment = _environment(request)
    services.start(app, environment)
    return f"Starting {environment} again.", CHANGED


@app_action(to=CHANGE)
def promote(request, app):
    """Along one step of the pipeline, through its gates: promoted now, or waiting for a
    second person's approval."""
    form = PromoteForm(request.POST)
    if not form.is_valid():
        raise ServiceError("Choose a step of the pipeline to promote along.", "invalid")
    source, target = form.step()
    result = promotion.request_promotion(app, request.user, source, target)
    if isinstance(result, Deployment):
        message = f"Promoting {source} to {target} (deployment #{result.number})."
        return message, NEW_DEPLOYMENT
    return (
        "Promotion requested: someone else (an admin or owner of the team, or a superuser) "
        "must approve it.",
        CHANGED,
    )


@app_action(to=CHANGE)
def pipeline(request, app):
    form = PipelineForm(request.POST)
    if not form.is_valid():
        raise ServiceError("Name the stages in order, e.g. “staging production”.", "invalid")
    try:
        stages = pipelines.set_pipeline(app, form.cleaned_data["stages"])
    except ValidationError as exc:
        raise ServiceError(" ".join(exc.messages), "invalid_stages") from None
    return f"Pipeline: {pipelines.describe(stages)}.", CHANGED


@app_action(to=CHANGE)
def promotion_approve(request, app, request_id):
    deployment = promotion.approve(promotion_request_for(app, request_id), request.user)
    target = deployment.environment.name
    return f"Approved: promoting to {target} (deployment #{deployment.number}).", NEW_DEPLOYMENT


@app_action(to=CHANGE)
def promotion_reject(request, app, request_id):
    promotion.reject(promotion_request_for(app, request_id), request.user)
    return "Promotion rejected.", CHANGED


@login_required
@require_POST
def delete(request, name):
    """Typed confirmation, then services.request_cleanup (refused while a deployment runs)."""
    app = app_for(request.user, name, to=ADMIN)
    form = DeleteAppForm(request.POST, app=app)
    if not form.is_valid():
        return _danger_zone(request, app, form, 400)
    try:
        services.request_cleanup(app)
    except ServiceError as exc:
        form.add_error(None, exc.message)
        return _danger_zone(request, app, form, exc.status)
    messages.success(
        request,
        f"App {app.name} is being deleted: its containers, routes and images go in the background.",
    )
    if request.htmx:
        return HttpResponseClientRedirect(reverse("home"))
    return redirect("home")


def _danger_zone(request, app, form, status):
    if request.htmx:
        context = {"app": app, "delete_form": form}
        return render(request, "apps/_danger_zone.html", context, status=status)
    return settings_page(request, app, delete_form=form, status=status)
