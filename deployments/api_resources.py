"""/api/v1 resource usage of an app's live containers (CPU, memory)."""

from django.http import JsonResponse

from deployments.api import _app_for
from deployments.api_auth import api_view, error
from deployments.runtime import RuntimeBackendError
from deployments.services.resources import resource_usage


@api_view(["GET"])
def app_stats(request, name):
    app = _app_for(request, name)
    try:
        usage = resource_usage(app)
    except RuntimeBackendError as exc:
        return error(503, f"The container engine did not answer: {exc.message}", exc.code)
    return JsonResponse({"app": app.name, "environments": usage})
