"""/api/v1 promotion gates: the policy, and requests waiting for a second person."""

from django.core.exceptions import ValidationError
from django.http import JsonResponse

from apps.access import app_for, promotion_request_for
from apps.api.applications import deployment_json
from apps.api.auth import api_view
from deployments.models.promotion import PromotionPolicy, PromotionRequest
from deployments.services import promotion

POLICY_FIELDS = ("require_approval", "check_path", "check_expected_status", "check_timeout")


def policy_json(policy: PromotionPolicy) -> dict:
    return {field: getattr(policy, field) for field in POLICY_FIELDS}


def request_json(item: PromotionRequest) -> dict:
    return {
        "id": item.pk,
        "status": item.status,
        "requested_by": item.requested_by.username if item.requested_by else None,
        "source": item.source_deployment.number if item.source_deployment else None,
        "created_at": item.created_at.isoformat(),
    }


@api_view(["GET", "PUT"])
def policy(request, name):
    app = app_for(request.user, name)
    current = promotion.policy_of(app)
    if request.method == "PUT":
        unknown = set(request.json) - set(POLICY_FIELDS)
        if unknown:
            raise ValidationError({field: ["Unknown field."] for field in sorted(unknown)})
        for field, value in request.json.items():
            setattr(current, field, value)
        current.full_clean()
        current.save()
    return JsonResponse(policy_json(current))


@api_view(["GET"])
def requests_collection(request, name):
    app = app_for(request.user, name)
    items = PromotionRequest.objects.filter(app=app).select_related(
        "requested_by", "source_deployment"
    )
    return JsonResponse({"requests": [request_json(i) for i in items.order_by("-created_at")[:50]]})


@api_view(["POST"])
def approve(request, name, request_id):
    app = app_for(request.user, name)
    deployment = promotion.approve(promotion_request_for(app, request_id), request.user)
    return JsonResponse(deployment_json(deployment), status=202)


@api_view(["POST"])
def reject(request, name, request_id):
    app = app_for(request.user, name)
    item = promotion.reject(promotion_request_for(app, request_id), request.user)
    return JsonResponse(request_json(item))
