"""The warden: a periodic reconciliation of PostgreSQL (the truth) with Docker and Caddy.

It never fights a deployment in progress: it only touches deployments whose heartbeat went
quiet, pending ones nobody took, and environments with nothing running for them.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.models import Environment
from deployments.models import Deployment, Status
from deployments.pipeline import MAX_PLATFORM_ATTEMPTS, default_proxy, default_runtime
from deployments.pipeline import lifecycle
from deployments.pipeline.context import Context
from deployments.pipeline.errors import StepFailed
from deployments.pipeline.steps import STEPS

logger = logging.getLogger(__name__)

# A pending deployment whose task was lost (Redis restarted, say) is enqueued again after
# this long; the claim makes a duplicate harmless.
PENDING_REQUEUE_SECONDS = 30


def reconcile(runtime=None, proxy=None) -> dict:
    runtime = runtime or default_runtime()
    proxy = proxy or default_proxy()
    return {
        "recovered": recover_stale_deployments(runtime, proxy),
        "requeued": requeue_lost_pending(),
        "routes": sync_routes(proxy, runtime),
    }


def recover_stale_deployments(runtime, proxy) -> int:
    cutoff = timezone.now() - timedelta(seconds=settings.PAAS_HEARTBEAT_TIMEOUT)
    stale = Deployment.objects.filter(
        status__in=[Status.BUILDING, Status.STARTING], heartbeat_at__lt=cutoff
    ).select_related("app", "environment__app")
    count = 0
    for deployment in stale:
        if recover(deployment, runtime, proxy):
            count += 1
    return count


def recover(deployment: Deployment, runtime, proxy) -> bool:
    """Undo what a dead worker's run made, then run it again or fail it cleanly."""
    claimed = Deployment.objects.filter(
        pk=deployment.pk, status=deployment.status, heartbeat_at=deployment.heartbeat_at
    ).update(heartbeat_at=timezone.now())
    if not claimed:
        return False  # its worker is alive after all, or another warden took it
    deployment.refresh_from_db()
    deployment.log("==> The worker running this deployment stopped answering; undoing its work.")
    ctx = Context(deployment, runtime, proxy)
    for step in reversed(STEPS):
        try:
            step.rollback(ctx)
        except Exception:  # noqa: BLE001 - try the rest; the next round retries
            logger.exception("warden rollback of %s failed for %s", step.name, deployment)
    lost = StepFailed("worker_lost", "The worker running this deployment was lost.", False)
    with transaction.atomic():
        if deployment.attempt + 1 < MAX_PLATFORM_ATTEMPTS:
            lifecycle.retry_later(deployment, lost)
        else:
            lifecycle.fail(deployment, lost)
    return True


def requeue_lost_pending() -> int:
    cutoff = timezone.now() - timedelta(seconds=PENDING_REQUEUE_SECONDS)
    lost = Deployment.objects.filter(status=Status.PENDING, created_at__lt=cutoff).exclude(
        heartbeat_at__gte=cutoff
    )
    ids = list(lost.values_list("pk", flat=True))
    Deployment.objects.filter(pk__in=ids).update(heartbeat_at=timezone.now())
    for pk in ids:
        lifecycle.enqueue(pk)
    return len(ids)


def desired_routes(runtime) -> list:
    from deployments.proxy import RouteSpec

    routes = []
    envs = Environment.objects.filter(live_deployment__isnull=False).select_related(
        "app", "live_deployment"
    )
    switching = set(
        Deployment.objects.filter(status=Status.STARTING).values_list("environment_id", flat=True)
    )
    for env in envs.exclude(app__cleanup_requested_at__isnull=False):
        if env.pk in switching:
            # A deployment may be switching this route right now; the database still names
            # the old container, so leave Caddy's current upstream alone this round.
            upstream = proxy_upstream(env) or live_upstream(env, runtime)
        else:
            upstream = live_upstream(env, runtime)
        routes.append(RouteSpec(env.route_id, [env.hostname], upstream))
    return routes


def proxy_upstream(env: Environment) -> str | None:
    return default_proxy().upstream_of(env.route_id)


def live_upstream(env: Environment, runtime) -> str | None:
    """Where the live container answers now (its address may change across restarts)."""
    if env.stopped:
        return None
    live = env.live_deployment
    container = live.step_data.get("container_id")
    if not container:
        return None
    try:
        return str(runtime.endpoint(container, env.app.network))
    except Exception:  # noqa: BLE001 - a dead container keeps its last known address
        return live.step_data.get("upstream")


def sync_routes(proxy=None, runtime=None) -> int:
    proxy = proxy or default_proxy()
    runtime = runtime or default_runtime()
    routes = desired_routes(runtime)
    proxy.sync(routes)
    return len(routes)
