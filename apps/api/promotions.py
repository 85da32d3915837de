"""/api/v1 promotion gates: the policy, and requests waiting for a second person."""

from ninja import Router, Status

from apps.access import CHANGE, READ, app_for, promotion_request_for
from apps.api.schemas import (
    AppName,
    DeploymentOut,
    EnvironmentChoice,
    Id,
    PolicyIn,
    PolicyOut,
    PromotionRequestListOut,
    PromotionRequestOut,
    answers,
)
from deployments.models import PromotionRequest
from deployments.services import environment_named, promotion

router = Router(tags=["promotion gates"])

REQUESTS_LISTED = 50
# The body is optional: without one, nothing changes.
NO_BODY = PolicyIn()


@router.get("/apps/{name}/promotion-policy", response=answers(200, PolicyOut, 400, 404))
def get_policy(request, name: AppName, to: EnvironmentChoice = "production"):
    """The gates of the pipeline step into `to` (the environment promoted into)."""
    app = app_for(request.auth, name, to=READ)
    return promotion.policy_of(environment_named(app, to))


@router.put("/apps/{name}/promotion-policy", response=answers(200, PolicyOut, 400, 404))
def set_policy(
    request, name: AppName, payload: PolicyIn = NO_BODY, to: EnvironmentChoice = "production"
):
    """Only the gates given change: require_approval, check_path, check_expected_status,
    check_timeout, require_ci_success — of the pipeline step into `to`."""
    app = app_for(request.auth, name, to=CHANGE)
    return promotion.set_policy(app, payload.dict(exclude_unset=True), to)


@router.get("/apps/{name}/promotions", response=answers(200, PromotionRequestListOut, 404))
def list_requests(request, name: AppName):
    """The newest first."""
    items = PromotionRequest.objects.filter(app=app_for(request.auth, name, to=READ))
    items = items.select_related(
        "requested_by", "source_deployment", "source_environment", "target_environment"
    ).order_by("-created_at")
    return {"requests": items[:REQUESTS_LISTED]}


@router.post(
    "/apps/{name}/promotions/{int:request_id}/approve",
    response=answers(202, DeploymentOut, 400, 403, 404, 409),
)
def approve(request, name: AppName, request_id: Id):
    """Not the requester: the owner or staff. The gate's check runs again first."""
    item = promotion_request_for(app_for(request.auth, name, to=CHANGE), request_id)
    return Status(202, promotion.approve(item, request.auth))


@router.post(
    "/apps/{name}/promotions/{int:request_id}/reject",
    response=answers(200, PromotionRequestOut, 403, 404, 409),
)
def reject(request, name: AppName, request_id: Id):
    item = promotion_request_for(app_for(request.auth, name, to=CHANGE), request_id)
    return promotion.reject(item, request.auth)
