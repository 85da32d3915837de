"""What happens around the steps: going live, failing, retrying, retiring the old container."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.models import App, Environment
from deployments import jobs
from deployments.models import Deployment, Trigger
from deployments.services.notifications import NotificationEvent, notify
from deployments.services.promotion import announce_done
from deployments.workers import previews, routing
from deployments.workers.pipeline.steps import SWITCH_TIMEOUT

logger = logging.getLogger(__name__)

# step_data keys set when the deployment is created, not by a step: they survive a retry.
TRIGGER_DATA = frozenset({"archive"})


def go_live(ctx) -> None:
    """Succeeded, live, logged and the app's status settled in one transaction, so whoever
    sees the final status also sees the rest."""
    d = ctx.deployment
    with transaction.atomic():
        env = Environment.objects.select_for_update(no_key=True).get(pk=d.environment_id)
        previous_id = env.live_deployment_id
        d.mark_succeeded()
        env.live_deployment, env.stopped = d, False
        env.save(update_fields=["live_deployment", "stopped"])
        ctx.deployment.environment.live_deployment_id = d.pk
        elapsed = (d.finished_at - d.started_at).total_seconds() if d.started_at else 0
        ctx.log(f"==> Live at {ctx.environment.url} ({elapsed:.1f}s)")
        ctx.app.refresh_status()
        if previous_id and previous_id != d.pk:
            jobs.retire_deployment(previous_id)
    notify(ctx.app, NotificationEvent.DEPLOYMENT_SUCCEEDED, d)
    previews.report(d, previews.SUCCESS)
    if d.trigger == Trigger.PROMOTE:
        announce_done(d)


def retire(deployment_id: int, runtime) -> bool:
    """Stop and remove a deployment's containers unless it is live again (a rollback)."""
    d = Deployment.objects.select_related("environment").filter(pk=deployment_id).first()
    if d is None or d.environment.live_deployment_id == d.pk:
        return False
    # SIGTERM first, each container its grace period: a worker finishes the job it has.
    runtime.stop_all(d.containers, settings.PAAS_STOP_GRACE_SECONDS)
    for container in d.containers:
        runtime.remove(container)
    prune_images(d.app, runtime)
    return True


def images_to_keep(app: App, keep: int) -> set[str]:
    """The live images, and the last `keep` successful ones of each environment: rollback
    and promote need them. An image can serve several deployments (promote, rollback and
    restart reuse it), so this works on image ids, not deployments."""
    kept: set[str] = set()
    for env in app.environments.select_related("live_deployment"):
        if env.live_deployment and env.live_deployment.image_id:
            kept.add(env.live_deployment.image_id)
        recent = env.deployments.successful().exclude(image_id="").order_by("-number")
        kept.update(recent.values_list("image_id", flat=True)[:keep])
    return kept


def prune_images(app: App, runtime, keep: int | None = None) -> list[str]:
    """Untag the images of older successful deployments; layers shared with kept images stay."""
    kept = images_to_keep(app, settings.PAAS_KEEP_IMAGES if keep is None else keep)
    old = app.deployments.successful().exclude(image_id="").exclude(image_id__in=kept)
    names = set(old.exclude(image_tag="").values_list("image_tag", flat=True))
    names.update(old.pushed_images())
    removed = []
    for name in sorted(names):
        if runtime.image_exists(name) and runtime.remove_image(name):
            removed.append(name)
    return removed


def retry_later(d: Deployment, failure) -> None:
    d.mark_pending_again()
    # Forget what the undone attempt made, but keep what the trigger brought (an archive).
    kept = {k: v for k, v in d.step_data.items() if k in TRIGGER_DATA}
    Deployment.objects.filter(pk=d.pk).update(step="", step_data=kept, heartbeat_at=timezone.now())
    countdown = 2**d.attempt
    d.log(f"==> Platform error; retrying in {countdown}s (attempt {d.attempt + 1}).")
    jobs.run_deployment(d.pk, countdown)


def fail(d: Deployment, failure) -> None:
    with transaction.atomic():
        d.mark_failed(failure.code, failure.message)
        d.app.refresh_status()
    notify(d.app, NotificationEvent.DEPLOYMENT_FAILED, d)
    previews.report(d, previews.FAILURE)


def apply_power_state(environment_id: int, runtime, router) -> str:
    """Make the engine and the router match Environment.stopped (set by stop and start)."""
    env = (
        Environment.objects.select_related("app", "live_deployment")
        .filter(pk=environment_id)
        .first()
    )
    if env is None or env.live_deployment is None:
        return "nothing"
    live = env.live_deployment
    containers = live.web_containers
    if env.stopped:
        # The page first, then the stop: no request is sent to a container going down.
        route = routing.apply(env, router, [])
        if route is not None:
            router.wait_applied(route, timeout=SWITCH_TIMEOUT)
        runtime.stop_all([*containers, *_other_processes(live)], settings.PAAS_STOP_GRACE_SECONDS)
        state = "stopped"
    else:
        upstreams = [_started(env, live, container, runtime) for container in containers]
        for container in _other_processes(live):
            runtime.restart(container)
        live.patch_step_data(upstreams=upstreams)
        routing.apply(env, router, upstreams, live.step_data.get("router_health"))
        state = "started"
    env.app.refresh_status()
    return state


def _other_processes(live: Deployment) -> list[str]:
    return [c for ids in live.process_containers.values() for c in ids]


def _started(env: Environment, live: Deployment, container: str, runtime) -> str:
    runtime.restart(container)
    endpoint = runtime.endpoint(container, env.app.network, live.web_port)
    runtime.wait_healthy(
        container, endpoint, env.app.health_check_path, settings.PAAS_HEALTH_TIMEOUT, logger.info
    )
    return str(endpoint)
