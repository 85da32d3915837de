"""Promotion requests waiting for a second person, on the app page."""

from django.shortcuts import render

from apps.access import CHANGE, app_for, may
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
        # Deciding deploys: an admin or owner of the team or a superuser (apps/access.py),
        # never the requester.
        item.decidable = can_decide(item, request.user) and may(request.user, app, CHANGE)
    return render(request, "apps/_promotions.html", {"app": app, "pending": pending})
