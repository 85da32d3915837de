"""/api/v1 resource usage of an app's live containers (CPU, memory)."""

from ninja import Router

from apps.access import READ, app_for
from apps.api.schemas import AppName, StatsOut, answers
from deployments.services.resources import resource_usage

router = Router(tags=["apps"])


@router.get("/apps/{name}/stats", response=answers(200, StatsOut, 404, 503))
def app_stats(request, name: AppName):
    """Takes about a second: the engine samples each running container."""
    app = app_for(request.auth, name, to=READ)
    return StatsOut(app=app.name, environments=resource_usage(app))
