"""/api/v1 metrics history of an app environment, for charts and scripts."""

from datetime import datetime

from ninja import Router

from apps.access import READ, app_for
from apps.api.schemas import AppName, MetricsOut, WholeNumber, answers
from deployments.services.metrics import series

router = Router(tags=["apps"])


@router.get("/apps/{name}/metrics", response=answers(200, MetricsOut, 400, 404))
def app_metrics(
    request,
    name: AppName,
    environment: str = "production",
    since: datetime | None = None,
    step: WholeNumber | None = None,
):
    """Sampled every PAAS_METRICS_SECONDS, merged into 5-minute rows after a day. `since`
    (ISO 8601) defaults to an hour ago; `step` (seconds) to about 500 buckets over the span."""
    app = app_for(request.auth, name, to=READ)
    return series(app, environment, since, step)
