"""The warden: a periodic reconciliation of PostgreSQL (the truth) with Docker and the router.

It never fights a deployment in progress: it only touches deployments whose heartbeat went
quiet, pending ones nobody took, and environments with nothing running for them.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.models import App, AppStatus, Environment
from apps.models.addons import AddOn, AddOnStatus, InvalidAddOnTransition
from deployments import jobs
from deployments.adapters.router import ProxyError, Route, Router
from deployments.adapters.runtime import ContainerExited, RuntimeBackend
from deployments.models import Deployment, Status
from deployments.models.deployment import HANDOVER, WAITING_STAGES
from deployments.services import audit
from deployments.services.notifications import NotificationEvent, notify
from deployments.workers import routing
from deployments.workers.auto_rollback import check_recent_releases
from deployments.workers.deliveries import requeue_lost_deliveries
from deployments.workers.networks import ensure_app_network
from deployments.workers.pipeline import (
    MAX_PLATFORM_ATTEMPTS,
    lifecycle,
)
from deployments.workers.pipeline.context import Context
from deployments.workers.pipeline.errors import StepFailed
from deployments.workers.pipeline.steps import STEPS, SWITCH_TIMEOUT, container_spec
from deployments.workers.runs import reconcile_runs

logger = logging.getLogger(__name__)

# A pending deployment whose task was lost (Redis restarted, say) is enqueued again after
# this long; the claim makes a duplicate harmless.
PENDING_REQUEUE_SECONDS = 30


def reconcile(runtime: RuntimeBackend, router: Router) -> dict:
    heal_gateway(runtime)
    return {
        # First: a release gone bad is rolled back before its crashes are revived.
        "rolled_back": check_recent_releases(runtime),
        "recovered": recover_stale_deployments(runtime, router),
        "requeued": requeue_lost_pending(),
        "restarted": restart_crashed(runtime, router),
        "addons": revive_addons(runtime),
        "routes": sync_routes(router, runtime),
        "notifications": requeue_lost_deliveries(),
        "runs": reconcile_runs(runtime),
    }


def heal_gateway(runtime) -> None:
    """A backend whose apps the host reaches through a gateway (Swarm's overlays) has it
    running and routed again: a dockerd restart or a reboot loses its namespace settings
    and the host's route until then."""
    gateway = getattr(runtime, "gateway", None)
    if gateway is None:
        return
    try:
        gateway.ensure()
    except Exception:  # noqa: BLE001 - the rest of the round must run
        logger.exception("the warden could not set the overlay gateway up")


def revive_addons(runtime) -> int:
    """A running add-on whose container died or vanished goes back up on its volume (Docker's
    restart policy covers a crash; this covers a removed container or an engine that gave up)."""

    revived = 0
    running = AddOn.objects.filter(
        status=AddOnStatus.RUNNING,
        environment__app__cleanup_requested_at=None,
        environment__cleanup_requested_at=None,
    )
    for addon in running.select_related("environment__app"):
        if addon.container_id and runtime.is_running(addon.container_id):
            continue
        try:
            addon.mark_stopped()
        except InvalidAddOnTransition:
            continue  # detached or restarted meanwhile
        logger.warning("add-on %s is not running; starting it again", addon)
        jobs.restart_addon(addon.pk)
        revived += 1
    return revived


def recover_stale_deployments(runtime, router) -> int:
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.PAAS_HEARTBEAT_TIMEOUT)
    # Waiting in a queue for a build node (or back for a manager): nothing beats then.
    waiting = Q(step_data__has_key=HANDOVER) & Q(step_data__handover__in=WAITING_STAGES)
    wait_cutoff = now - timedelta(seconds=settings.PAAS_BUILD_WAIT_TIMEOUT)
    stale = (
        Deployment.objects.filter(status__in=[Status.BUILDING, Status.STARTING])
        .filter(
            (Q(heartbeat_at__lt=cutoff) & ~waiting) | (Q(heartbeat_at__lt=wait_cutoff) & waiting)
        )
        .select_related("app", "environment__app")
    )
    count = 0
    for deployment in stale:
        if recover(deployment, runtime, router):
            count += 1
    return count


def recover(deployment: Deployment, runtime, router) -> bool:
    """Undo what a dead worker's run made, then run it again or fail it cleanly."""
    claimed = Deployment.objects.filter(
        pk=deployment.pk, status=deployment.status, heartbeat_at=deployment.heartbeat_at
    ).update(heartbeat_at=timezone.now())
    if not claimed:
        return False  # its worker is alive after all, or another warden took it
    deployment.refresh_from_db()
    deployment.log("==> The worker running this deployment stopped answering; undoing its work.")
    audit.record("deployment.recover", deployment.app, f"#{deployment.number}")
    ctx = Context(deployment, runtime, router)
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
        jobs.run_deployment(pk)
    return len(ids)


def desired_routes(runtime: RuntimeBackend, router: Router) -> list[Route]:
    """Every route the database says this installation serves, the platform's own aside."""
    routes = []
    envs = Environment.objects.filter(live_deployment__isnull=False).select_related(
        "app", "live_deployment"
    )
    switching = set(
        Deployment.objects.filter(status=Status.STARTING).values_list("environment_id", flat=True)
    )
    # An app or environment being deleted has its route removed by its cleanup.
    gone = Q(app__cleanup_requested_at__isnull=False) | Q(cleanup_requested_at__isnull=False)
    for env in envs.exclude(gone):
        if env.pk in switching and (current := router.get(env.route_id)) is not None:
            # A deployment may be switching this route right now; the database still names
            # the old replicas, so leave the router's current file alone this round.
            routes.append(current)
            continue
        health = env.live_deployment.step_data.get("router_health")
        route = routing.route_for(env, routing.live_upstreams(env, runtime), health)
        if route is not None:
            routes.append(route)
    return routes + _first_switches(switching, envs, router) + routing.domain_check_routes()


def _first_switches(switching: set[int], live_envs, router: Router) -> list[Route]:
    """An environment's first deployment has written its route before it is recorded live:
    the route stays, or a round between the two would take the new app off the router."""
    first = Environment.objects.filter(pk__in=switching).exclude(pk__in=live_envs.values("pk"))
    current = (router.get(env.route_id) for env in first.select_related("app"))
    return [route for route in current if route is not None]


def sync_routes(router: Router, runtime: RuntimeBackend) -> int:
    """Rebuild the router's files from PostgreSQL: a router that lost them, or a fresh host,
    serves every route again; files of routes that should not exist go."""
    routes = desired_routes(runtime, router)
    router.sync(routes)
    if settings.PAAS_PUBLIC_HOST:
        router.ensure_platform(settings.PAAS_PUBLIC_HOST, settings.PAAS_DASHBOARD_UPSTREAM)
    return len(routes)


# --- crashed apps -----------------------------------------------------------------------------


def restart_crashed(runtime, router) -> int:
    """Bring back live containers that died or vanished: never a stopped environment, an app
    being deleted, or an environment with a deployment in progress (it would fight it)."""
    restarted = 0
    for env in crash_candidates():
        try:
            restarted += revive(env, runtime, router)
        except Exception:  # noqa: BLE001 - one environment must not keep the others down
            logger.exception("the warden could not check or revive %s", env)
    return restarted


def crash_candidates():
    busy = Deployment.objects.active().values("environment_id")
    return (
        Environment.objects.filter(
            live_deployment__isnull=False,
            stopped=False,
            app__cleanup_requested_at__isnull=True,
            cleanup_requested_at__isnull=True,
        )
        .exclude(pk__in=busy)
        .select_related("app", "live_deployment")
    )


def revive(env: Environment, runtime, router) -> bool:
    live = env.live_deployment
    live.app, live.environment = env.app, env  # share the rows already loaded
    quiet = not _replicas_down(live, runtime) and not _processes_down(live, runtime)
    if quiet and "crashed_at" not in live.step_data:
        moved = _moved_replicas(env, live, runtime)
        if moved and _take_revive_lease(live):
            try:
                return _follow_moved(env, live, moved, runtime, router)
            finally:
                live.patch_step_data(revive_until=None)
        return False  # all is well (the common case: no lock taken)
    if not _take_revive_lease(live):
        return False  # another warden round is bringing it back right now
    try:
        # Again under the lease: the round that held it may have just brought them back.
        workers_back = _revive_processes(env, live, _processes_down(live, runtime), runtime)
        down = _replicas_down(live, runtime)
        if not down:
            if "crashed_at" in live.step_data:
                _recovered(env, live)  # back by Docker's restart policy or a start
            return workers_back > 0
        return _revive(env, live, down, runtime, router)
    finally:
        live.patch_step_data(revive_until=None)


def _moved_replicas(env: Environment, live: Deployment, runtime) -> list[int]:
    """Web replicas answering at another address than the route has: a backend that moves
    replicas by itself (Swarm, when a node goes away) started them again elsewhere."""
    if not getattr(runtime, "moves_replicas", False):
        return []
    recorded = live.recorded_upstreams
    current = routing.live_upstreams(env, runtime)
    if len(current) != len(recorded):
        return []
    return [i for i, (old, new) in enumerate(zip(recorded, current, strict=True)) if old != new]


def _follow_moved(env: Environment, live: Deployment, moved: list[int], runtime, router) -> bool:
    """Route to where they run now, then say so (the log, the audit, a crash notice) and
    that the app runs again."""
    which = ", ".join(str(i + 1) for i in moved)
    message = (
        f"Web replica {which} of deployment #{live.number} stopped where it ran (its node "
        "went away, or the engine restarted it) and runs elsewhere now; the warden is "
        "routing to it."
    )
    if not _route(env, live, runtime, router):
        return False  # a deployment or a stop took over: nothing to say
    live.log(f"==> {message}")
    audit.record("app.replicas_moved", env.app, f"#{live.number} {env.name} {which}")
    notify(env.app, NotificationEvent.APP_CRASHED, live, env, error=("replicas_moved", message))
    live.patch_step_data(crashed_at=timezone.now().isoformat())
    _recovered(env, live)
    return True


def _processes_down(live: Deployment, runtime) -> list[tuple[str, int, str]]:
    """(process type, replica index, container) of each non-web container not running."""
    return [
        (kind, index, container)
        for kind, containers in live.process_containers.items()
        for index, container in enumerate(containers)
        if not runtime.is_running(container)
    ]


def _revive_processes(env: Environment, live: Deployment, down, runtime) -> int:
    """Restart each stopped worker-type container, or start a fresh one when it is gone; no
    health check (they serve no requests), only the same settle time as at deploy."""
    revived = 0
    for kind, index, container in down:
        try:
            if _container_exists(runtime, env, live, container):
                runtime.restart(container)
            else:
                container = _start_fresh_process(env, live, kind, index, runtime)
            runtime.wait_running(container, settings.PAAS_PROCESS_SETTLE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            live.log(f"==> The warden could not bring {kind} back ({_reason(exc)}); retrying soon.")
            continue
        live.log(f"==> The {kind} process of deployment #{live.number} stopped; restarted it.")
        audit.record("process.restart_crashed", env.app, f"#{live.number} {env.name} {kind}")
        revived += 1
    return revived


def _start_fresh_process(env: Environment, live: Deployment, kind: str, index: int, runtime):
    ensure_app_network(env.app, runtime)
    spec = container_spec(Context(live, runtime, None), index, kind)
    runtime.remove(spec.name)
    started = runtime.start(spec)
    processes = live.process_containers
    old, processes[kind][index] = processes[kind][index], started
    live.containers = [c for c in live.containers if c != old] + [started]
    Deployment.objects.filter(pk=live.pk).update(containers=live.containers)
    live.patch_step_data(process_containers=processes)
    return started


def _replicas_down(live: Deployment, runtime) -> list[int]:
    if live.web_containers == [] and "container_ids" in live.step_data:
        return []  # web scaled to 0
    containers = live.web_containers or [None]
    return [i for i, c in enumerate(containers) if not (c and runtime.is_running(c))]


def _revive(env: Environment, live: Deployment, down: list[int], runtime, router) -> bool:
    try:
        containers = live.web_containers or [None]
        exists = [_container_exists(runtime, env, live, containers[i]) for i in down]
        _crashed(env, live, all(exists))
        for index, there in zip(down, exists, strict=True):
            _bring_back(env, live, index, containers[index] if there else None, runtime)
        revived = _route(env, live, runtime, router)
    except Exception as exc:  # noqa: BLE001 - stays crashed; the next round tries again
        live.log(f"==> The warden could not bring the app back ({_reason(exc)}); retrying soon.")
        logger.warning("could not revive %s: %s", env, _reason(exc))
        return False
    if revived:
        _recovered(env, live)
    return revived


def _reason(exc: Exception) -> str:
    return getattr(exc, "message", None) or type(exc).__name__


def _revive_lease() -> timedelta:
    # Long enough for a restart, a fresh start and their health checks.
    return timedelta(seconds=3 * settings.PAAS_HEALTH_TIMEOUT + 30)


def _take_revive_lease(live: Deployment) -> bool:
    now = timezone.now()

    def free(data: dict) -> bool:
        until = data.get("revive_until")
        return not until or datetime.fromisoformat(until) < now

    until = (now + _revive_lease()).isoformat()
    return live.patch_step_data(free, revive_until=until) is not None


def _container_exists(runtime, env: Environment, live: Deployment, container: str | None) -> bool:
    if not container:
        return False
    labels = {
        **env.app.resource_labels,
        "slipway.environment": env.name,
        "slipway.deployment": str(live.number),
    }
    return any(c.id == container for c in runtime.containers_with_labels(labels))


def _crashed(env: Environment, live: Deployment, exists: bool) -> None:
    """Mark the app crashed; the first round that sees this crash tells the owner."""
    first = "crashed_at" not in live.step_data
    live.patch_step_data(crashed_at=timezone.now().isoformat())
    App.objects.filter(pk=env.app_id, cleanup_requested_at__isnull=True).update(
        status=AppStatus.CRASHED
    )
    if not first:
        return
    what = "stopped" if exists else "is gone"
    message = f"The container of deployment #{live.number} {what}; the warden is restarting it."
    live.log(f"==> {message}")
    audit.record("app.restart_crashed", env.app, f"#{live.number} {env.name}")
    notify(env.app, NotificationEvent.APP_CRASHED, live, env, error=("app_crashed", message))


def _bring_back(env: Environment, live: Deployment, index: int, container, runtime) -> None:
    """Restart replica `index`, or start a fresh one from the live image, until healthy."""
    if container:
        runtime.restart(container)
        try:
            _wait_healthy(runtime, env, container)
            return
        except ContainerExited:
            # Docker's earlier automatic restarts count as a crash for the health check even
            # when this run is fine: a fresh container starts with a clean slate.
            runtime.remove(container)
    container = _start_fresh(env, live, index, runtime)
    _wait_healthy(runtime, env, container)


def _wait_healthy(runtime, env: Environment, container: str):
    endpoint = runtime.endpoint(container, env.app.network, env.live_deployment.web_port)
    runtime.wait_healthy(
        container, endpoint, env.app.health_check_path, settings.PAAS_HEALTH_TIMEOUT, logger.info
    )
    return endpoint


def _start_fresh(env: Environment, live: Deployment, index: int, runtime) -> str:
    ctx = Context(live, runtime, None)
    ensure_app_network(env.app, runtime)
    spec = container_spec(ctx, index)
    runtime.remove(spec.name)  # a dead replica of that name may still be there
    started = runtime.start(spec)
    # Recorded at once, so the deployment's retirement (or the next round) finds it.
    replicas = live.web_containers or [None]
    old, replicas[index] = replicas[index], started
    live.containers = [c for c in live.containers if c != old] + [started]
    Deployment.objects.filter(pk=live.pk).update(containers=live.containers)
    live.patch_step_data(container_ids=replicas, container_id=None)
    live.log(f"==> Started a fresh container from the image of deployment #{live.number}")
    return started


def _route(env: Environment, live: Deployment, runtime, router) -> bool:
    """Point the route at the replicas, unless a deployment or a stop took over meanwhile:
    the environment's row lock orders this against a deployment's claim."""
    route = None
    with transaction.atomic():
        locked = Environment.objects.select_for_update().get(pk=env.pk)
        busy = Deployment.objects.active().filter(environment_id=env.pk).exists()
        taken_over = locked.live_deployment_id != live.pk or busy
        if not taken_over and not locked.stopped:
            upstreams = routing.live_upstreams(env, runtime)
            health = live.step_data.get("router_health")
            route = routing.apply(locked, router, upstreams, health)
            live.patch_step_data(upstreams=upstreams, upstream=None)
    if locked.stopped and not taken_over:
        for container in live.web_containers:
            runtime.stop(container)  # stopped while it came back: honour the stop
    if route is not None:
        _wait_routed(router, route)
    return not taken_over and not locked.stopped


def _wait_routed(router: Router, route: Route) -> None:
    """Announce an app as back only once the router sends it requests (outside the lock:
    Traefik takes a few hundred milliseconds); a router that lags is set right again by
    the next round's sync."""
    try:
        router.wait_applied(route, timeout=SWITCH_TIMEOUT)
    except ProxyError as exc:
        logger.warning("the router has not applied %s yet: %s", route.route_id, exc)


def _recovered(env: Environment, live: Deployment) -> None:
    live.patch_step_data(crashed_at=None)
    env.app.refresh_status()
    still_crashed = (
        Environment.objects.filter(
            app_id=env.app_id, stopped=False, live_deployment__step_data__has_key="crashed_at"
        )
        .exclude(pk=env.pk)
        .exists()
    )
    if still_crashed:  # the app's other environment is still down
        App.objects.filter(pk=env.app_id, cleanup_requested_at__isnull=True).update(
            status=AppStatus.CRASHED
        )
    live.log("==> The app is running again.")
    notify(env.app, NotificationEvent.APP_RECOVERED, live, env)
