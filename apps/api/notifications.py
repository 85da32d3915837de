"""/api/v1 notification targets of an app and their delivery logs. Owner only: a target's
secret signs what Slipway sends, so even staff get 404 for another user's app here."""

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404

from apps.access import app_for
from apps.api.auth import api_view
from apps.models.notifications import NotificationDelivery, NotificationTarget
from deployments.services import notifications

DELIVERY_PAGE = 100


def _iso(value):
    return value.isoformat() if value else None


def target_json(target: NotificationTarget, secret: str | None = None) -> dict:
    body = {
        "id": target.pk,
        "url": target.url,
        "events": target.events or "all",
        "created_at": _iso(target.created_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_json(d: NotificationDelivery) -> dict:
    return {
        "id": str(d.delivery_id),
        "event": d.event,
        "status": d.status,
        "attempts": d.attempts,
        "last_response_code": d.last_response_code,
        "error": {"code": d.error_code, "message": d.last_error} if d.error_code else None,
        "created_at": _iso(d.created_at),
        "updated_at": _iso(d.updated_at),
        "delivered_at": _iso(d.delivered_at),
    }


@api_view(["GET", "POST"])
def targets_collection(request, name):
    app = app_for(request.user, name, owner_only=True)
    if request.method == "GET":
        return JsonResponse({"targets": [target_json(t) for t in app.notification_targets.all()]})
    target, secret = notifications.add_target(
        app, str(request.json.get("url", "")), request.json.get("events")
    )
    # The only answer that carries the secret unasked; GET on the target shows it again.
    return JsonResponse(target_json(target, secret), status=201)


@api_view(["GET", "DELETE"])
def target_detail(request, name, target_id):
    app = app_for(request.user, name, owner_only=True)
    target = get_object_or_404(app.notification_targets, pk=target_id)
    if request.method == "DELETE":
        notifications.remove_target(app, target.pk)
        return HttpResponse(status=204)
    return JsonResponse(target_json(target, target.secret))


@api_view(["GET"])
def target_deliveries(request, name, target_id):
    app = app_for(request.user, name, owner_only=True)
    target = get_object_or_404(app.notification_targets, pk=target_id)
    deliveries = target.deliveries.all()[:DELIVERY_PAGE]
    return JsonResponse({"deliveries": [delivery_json(d) for d in deliveries]})
