"""/api/v1 resource usage of an app's live containers (CPU, memory)."""

from django.http import JsonResponse

from apps.access import app_for
from apps.api.auth import api_view, error
from deployments.adapters.runtime import RuntimeBackendError
from deployments.services.resources import resource_usage


@api_view(["GET"])
def app_stats(request, name):
    app = app_for(request.user, name)
    try:
        usage = resource_usage(app)
    except RuntimeBackendError as exc:
        return error(503, f"The container engine did not answer: {exc.message}", exc.code)
    return JsonResponse({"app": app.name, "environments": usage})
