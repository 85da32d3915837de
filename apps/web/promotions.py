"""Promotion requests waiting for a second person, on the app page."""

from django.shortcuts import render

from apps.access import app_for
from apps.web.pages import login_required
from deployments.models.promotion import PromotionRequest, PromotionStatus
from deployments.services.promotion import can_decide


@login_required
def promotions(request, name):
    app = app_for(request.user, name)
    pending = list(
        PromotionRequest.objects.filter(app=app, status=PromotionStatus.PENDING)
        .select_related("requested_by", "source_deployment", "app")
        .order_by("-created_at")
    )
    for item in pending:
        item.decidable = can_decide(item, request.user)
    return render(request, "apps/_promotions.html", {"app": app, "pending": pending})
