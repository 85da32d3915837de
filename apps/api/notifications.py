"""/api/v1 notification targets of an app and their delivery logs. Owner only: a target's
secret signs what Slipway sends, so even staff get 404 for another user's app here."""

from django.shortcuts import get_object_or_404
from ninja import Router, Status

from apps.access import OWN, app_for
from apps.api.auth import reveals_secrets
from apps.api.schemas import (
    AppName,
    DeliveryListOut,
    Id,
    TargetIn,
    TargetListOut,
    TargetWithSecretOut,
    answers,
)
from deployments.services import notifications

router = Router(tags=["notifications"])

DELIVERY_PAGE = 100
TARGET = "/apps/{name}/notifications/{int:target_id}"


@router.get("/apps/{name}/notifications", response=answers(200, TargetListOut, 404))
def list_targets(request, name: AppName):
    app = app_for(request.auth, name, to=OWN)
    return {"targets": app.notification_targets.all()}


@router.post(
    "/apps/{name}/notifications", response=answers(201, TargetWithSecretOut, 400, 404, 409)
)
def add_target(request, name: AppName, payload: TargetIn):
    """The only answer that carries the secret unasked; GET on the target shows it again."""
    app = app_for(request.auth, name, to=OWN)
    target, _secret = notifications.add_target(app, payload.url, payload.events)
    return Status(201, target)  # target.secret is that same secret, as just stored


@router.get(TARGET, response=answers(200, TargetWithSecretOut, 404))
def get_target(request, name: AppName, target_id: Id):
    """The secret is masked for a read-only token."""
    app = app_for(request.auth, name, to=OWN)
    target = get_object_or_404(app.notification_targets, pk=target_id)
    return TargetWithSecretOut.of(target, reveal=reveals_secrets(request))


@router.delete(TARGET, response=answers(204, None, 404))
def remove_target(request, name: AppName, target_id: Id):
    app = app_for(request.auth, name, to=OWN)
    target = get_object_or_404(app.notification_targets, pk=target_id)
    notifications.remove_target(app, target.pk)
    return Status(204, None)


@router.get(TARGET + "/deliveries", response=answers(200, DeliveryListOut, 404))
def list_deliveries(request, name: AppName, target_id: Id):
    """The newest deliveries first."""
    app = app_for(request.auth, name, to=OWN)
    target = get_object_or_404(app.notification_targets, pk=target_id)
    return {"deliveries": target.deliveries.all()[:DELIVERY_PAGE]}
