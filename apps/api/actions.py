"""/api/v1 actions on a running app: restart, stop, start, promote, rollback, redeploy."""

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from apps.access import app_for
from apps.api.applications import deployment_json
from apps.api.auth import api_view
from deployments import services
from deployments.services import promotion


def _environment(request) -> str:
    name = request.json.get("environment", "production")
    if name not in ("production", "staging"):
        raise ValidationError({"environment": ["Use production or staging."]})
    return name


def _queued(deployment) -> JsonResponse:
    return JsonResponse(deployment_json(deployment), status=202)


@api_view(["POST"])
def restart(request, name):
    app = app_for(request.user, name)
    return _queued(services.restart(app, _environment(request), requested_by=request.user))


@api_view(["POST"])
def stop(request, name):
    app = app_for(request.user, name)
    environment = _environment(request)
    services.stop(app, environment)
    return JsonResponse({"environment": environment, "stopped": True}, status=202)


@api_view(["POST"])
def start(request, name):
    app = app_for(request.user, name)
    environment = _environment(request)
    services.start(app, environment)
    return JsonResponse({"environment": environment, "stopped": False}, status=202)


@api_view(["POST"])
def promote(request, name):
    """Through the promotion gates: either a deployment (202) or a pending approval (202)."""
    app = app_for(request.user, name)
    outcome = promotion.request_promotion(app, request.user)
    if hasattr(outcome, "number"):
        return _queued(outcome)
    return JsonResponse({"approval": {"id": outcome.pk, "status": outcome.status}}, status=202)


@api_view(["POST"])
def rollback(request, name, number):
    app = app_for(request.user, name)
    target = get_object_or_404(app.deployments.select_related("environment"), number=number)
    return _queued(services.rollback(target, requested_by=request.user))


@api_view(["POST"])
def redeploy(request, name, number):
    app = app_for(request.user, name)
    target = get_object_or_404(app.deployments.select_related("environment"), number=number)
    return _queued(services.redeploy(target, requested_by=request.user))


@api_view(["GET"])
def webhook(request, name):
    """What to paste into a provider's webhook settings (the secret is the owner's to see)."""
    from deployments.services.webhook_registration import webhook_url

    app = app_for(request.user, name)
    return JsonResponse(
        {
            "urls": {
                provider: webhook_url(app, provider) for provider in ("github", "gitlab", "gitea")
            },
            # Staff may see the app, but the secret is the owner's (as on the settings page).
            "secret": app.webhook_secret if app.owner_id == request.user.pk else None,
            "environment": app.webhook_environment,
            "registered": bool(app.webhook_hook_id),
            "provider": app.webhook_provider or None,
            "note": app.webhook_note,
        }
    )
