"""Promotion requests waiting for a second person, on the app page."""

from django.shortcuts import render

from apps.views import _get_app_for_user, login_required
from deployments.promotion_models import PromotionRequest, PromotionStatus
from deployments.services.promotion import can_decide


@login_required
def promotions(request, name):
    app = _get_app_for_user(request, name)
    pending = list(
        PromotionRequest.objects.filter(app=app, status=PromotionStatus.PENDING)
        .select_related("requested_by", "source_deployment", "app")
        .order_by("-created_at")
    )
    for item in pending:
        item.decidable = can_decide(item, request.user)
    return render(request, "apps/_promotions.html", {"app": app, "pending": pending})
