"""The app page's metrics chart data (JSON, read by static/js/metrics.js), and /metrics for
the operators' Prometheus: staff sessions, or the bearer token PAAS_METRICS_TOKEN."""

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from apps.access import READ, app_for
from apps.errors import error_response
from apps.web.pages import login_required
from deployments.services import ServiceError
from deployments.services.metrics import prometheus_text, series

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@require_GET
@login_required
def app_metrics(request, name):
    """The same series as GET /api/v1/apps/<name>/metrics, for the signed-in user."""
    app = app_for(request.user, name, to=READ)
    try:
        since, step = _query(request)
        data = series(app, request.GET.get("environment", "production"), since, step)
    except ServiceError as exc:
        return error_response(400, exc.message, exc.code)
    return JsonResponse({**data, "since": data["since"].isoformat()})


def _query(request):
    raw_since, raw_step = request.GET.get("since"), request.GET.get("step")
    try:
        since = parse_datetime(raw_since) if raw_since else None
    except ValueError:  # well formed, but not a date (month 13)
        since = None
    if raw_since and since is None:
        raise ServiceError("since must be an ISO 8601 date and time.")
    if raw_step and not (raw_step.isascii() and raw_step.isdigit()):
        raise ServiceError("step must be a whole number of seconds.")
    return since, int(raw_step) if raw_step else None


@require_GET
def prometheus(request):
    if not _may_scrape(request):
        # A wrong token is told so; anyone else is not told that the endpoint exists.
        if request.headers.get("Authorization"):
            return HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        raise Http404
    return HttpResponse(prometheus_text(), content_type=PROMETHEUS_TYPE)


def _may_scrape(request) -> bool:
    if request.user.is_authenticated and request.user.is_staff:
        return True
    token = settings.PAAS_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
