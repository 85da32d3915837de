"""Run one deployment: claim it, run the steps, and roll back exactly what was made on failure.

Only one deployment per app environment runs at a time: a task that finds its environment
busy puts itself back on the queue a moment later (seelf does the same).

With PAAS_BUILD_QUEUE set, a deployment that builds is three tasks: this one claims it and
queues `build` on that queue, which only build nodes consume; the build node fetches,
builds and pushes the image to the registry, then queues `resume`, which a worker on a
manager runs (release, start, health check, switch). The deployment stays `building`
throughout, and each task keeps its heartbeat: a lost hand-over is the warden's, as a lost
worker is.
"""

import logging
import socket
import threading

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.models import Environment
from deployments import jobs
from deployments.adapters.registry import Registry
from deployments.adapters.router import Router
from deployments.adapters.runtime import RuntimeBackend
from deployments.models import Deployment, InvalidTransition, Status
from deployments.models.deployment import BUILDING_ON_NODE, BUILT, FINAL_STATUSES, QUEUED, RESUMED
from deployments.models.pipeline import IMAGE_REUSING_TRIGGERS, reuses_image
from deployments.services.notifications import NotificationEvent, notify
from deployments.workers import previews
from deployments.workers.pipeline import lifecycle
from deployments.workers.pipeline.context import Context
from deployments.workers.pipeline.errors import Cancelled, StepFailed, as_step_failure
from deployments.workers.pipeline.steps import BUILD_STEPS, RUN_STEPS, STEPS

logger = logging.getLogger(__name__)

MAX_PLATFORM_ATTEMPTS = 3
BUSY, CLAIMED, GONE = "busy", "claimed", "gone"


def run(
    deployment_id: int, runtime: RuntimeBackend, router: Router, return_queue: str = "celery"
) -> str:
    outcome = claim(deployment_id)
    if outcome == BUSY:
        jobs.run_deployment(deployment_id, countdown=1)
    if outcome != CLAIMED:
        return outcome
    # Beating from the claim on: a forge slow to take the preview's status is no dead worker.
    with Heartbeat(deployment_id):
        deployment = Deployment.objects.select_related("app", "environment__app").get(
            pk=deployment_id
        )
        notify(deployment.app, NotificationEvent.DEPLOYMENT_STARTED, deployment)
        previews.report(deployment, previews.PENDING)
        ctx = Context(deployment, runtime, router)
        if settings.PAAS_BUILD_QUEUE and not ctx.reuses_image:
            if deployment.hand_over("", QUEUED, deployment.attempt):
                ctx.log(f"==> Waiting for a build node (queue {settings.PAAS_BUILD_QUEUE})")
                jobs.build_deployment(deployment_id, return_queue, deployment.attempt)
            return deployment.status
        execute(ctx)
    return deployment.status


def build(
    deployment_id: int,
    runtime: RuntimeBackend,
    registry: Registry | None,
    return_queue: str,
    attempt: int,
) -> str:
    """On a build node: fetch, build, push the image where every node pulls it, and hand
    the deployment back to a manager's worker (resume)."""
    deployment = _load(deployment_id)
    if deployment is None or not deployment.hand_over(QUEUED, BUILDING_ON_NODE, attempt):
        return GONE
    ctx = Context(deployment, runtime, None)
    ctx.log(f"==> Building on {socket.gethostname()}")
    with Heartbeat(deployment_id):
        execute(ctx, BUILD_STEPS, lambda ctx: hand_back(ctx, registry, return_queue))
    return Deployment.objects.get(pk=deployment_id).status


def hand_back(ctx: Context, registry: Registry | None, queue: str) -> None:
    d = ctx.deployment
    ensure_not_cancelled(d)  # cancelled during the build: the build's rollback runs
    if registry is not None:
        repository = registry.repository(settings.PAAS_INSTANCE, ctx.app.name)
        d.image_id = registry.publish(ctx.runtime.client, d.image_id, repository)
        d.save(update_fields=["image_id"])
        ctx.save("build", image_id=d.image_id)
        ctx.log(f"==> Pushed {d.image_id}")
    if not d.hand_over(BUILDING_ON_NODE, BUILT, d.attempt):
        raise Cancelled()  # cancelled (or recovered) meanwhile: the push is undone
    jobs.resume_deployment(d.pk, queue, d.attempt)


def resume(deployment_id: int, runtime: RuntimeBackend, router: Router, attempt: int) -> str:
    """After a build node's build: the rest of the steps, here."""
    deployment = _load(deployment_id)
    if deployment is None:
        return GONE
    ctx = Context(deployment, runtime, router)
    built = [step for step in BUILD_STEPS if not step.skip(ctx)]  # undone too on failure
    if not deployment.hand_over(BUILT, RESUMED, attempt):
        if deployment.status in FINAL_STATUSES and deployment.attempt == attempt:
            rollback(ctx, built)  # cancelled while queued here: the pushed image goes
        return GONE
    with Heartbeat(deployment_id):
        execute(ctx, RUN_STEPS, done=built)
    return deployment.status


def _load(deployment_id: int) -> Deployment | None:
    return (
        Deployment.objects.select_related("app", "environment__app")
        .filter(pk=deployment_id)
        .first()
    )


def claim(deployment_id: int) -> str:
    """pending -> building, unless the environment already has a deployment running."""
    with transaction.atomic():
        deployment = Deployment.objects.filter(pk=deployment_id).first()
        if deployment is None or deployment.status != Status.PENDING:
            return GONE
        # NO KEY UPDATE: claims queue on each other, but a push inserting a deployment
        # (whose foreign key takes KEY SHARE on this row) is not blocked, so a claim and
        # a push superseding the claimed row cannot deadlock (seen with 8 pushes at once).
        Environment.objects.select_for_update(no_key=True).get(pk=deployment.environment_id)
        busy = (
            Deployment.objects.filter(
                environment_id=deployment.environment_id,
                status__in=[Status.BUILDING, Status.STARTING],
            )
            .exclude(pk=deployment_id)
            .exists()
        )
        if busy or owner_builds_full(deployment):
            return BUSY
        return CLAIMED if deployment.claim() else GONE


def owner_builds_full(deployment: Deployment) -> bool:
    """The owner already runs PAAS_BUILDS_PER_USER builds (status building: fetch to release).
    The owner's row is locked until the claim commits, so two workers claiming for one
    owner (in different environments) count in turn and cannot both take the last slot."""
    if reuses_image(deployment.trigger):
        return False  # promote, roll back, restart, scale: nothing to build
    owner_id = deployment.app.owner_id
    # NO KEY UPDATE: claims for one owner still count in turn, but a push inserting a row
    # that references the user (its FK check takes KEY SHARE) is not blocked: FOR UPDATE
    # there deadlocked racing pushes (tests/deployments/test_concurrent_triggers.py).
    get_user_model().objects.select_for_update(no_key=True).filter(pk=owner_id).first()
    running = (
        Deployment.objects.filter(app__owner_id=owner_id, status=Status.BUILDING)
        .exclude(trigger__in=IMAGE_REUSING_TRIGGERS)
        .exclude(pk=deployment.pk)
        .count()
    )
    return running >= settings.PAAS_BUILDS_PER_USER


def execute(ctx: Context, steps=STEPS, finish=None, done=()) -> None:
    """`steps` in turn, then `finish` (go live). On failure the steps reached, and those
    `done` before (by a build node), are rolled back."""
    reached = list(done)
    try:
        for step in steps:
            if step.skip(ctx):
                continue
            ensure_not_cancelled(ctx.deployment)
            reached.append(step)
            step.execute(ctx)
        (finish or lifecycle.go_live)(ctx)
    except BaseException as exc:  # noqa: BLE001 - every failure must roll back first
        rollback(ctx, reached)
        handle_failure(ctx, exc)


def ensure_not_cancelled(deployment: Deployment) -> None:
    status = Deployment.objects.filter(pk=deployment.pk).values_list("status", flat=True).first()
    if status not in (Status.BUILDING, Status.STARTING):
        deployment.status = status
        raise Cancelled()


def rollback(ctx: Context, reached) -> None:
    for step in reversed(reached):
        try:
            step.rollback(ctx)
        except Exception:  # noqa: BLE001 - keep undoing the rest; the warden retries leftovers
            logger.exception("rollback of %s failed for %s", step.name, ctx.deployment)
            ctx.log(f"Warning: could not undo step {step.name}; it will be cleaned up later.")


def handle_failure(ctx: Context, exc: BaseException) -> None:
    d = ctx.deployment
    if isinstance(exc, (Cancelled, InvalidTransition)):
        ctx.log(f"==> Stopped: the deployment is {Deployment.objects.get(pk=d.pk).status}.")
        ctx.app.refresh_status()
        return
    failure = classify(exc)
    ctx.log(f"==> Failed ({failure.code}): {failure.message}")
    if not failure.user_fault and d.attempt + 1 < MAX_PLATFORM_ATTEMPTS:
        lifecycle.retry_later(d, failure)
    else:
        lifecycle.fail(d, failure)
    if not isinstance(exc, Exception):
        raise exc  # KeyboardInterrupt/SystemExit: recorded, now let the worker stop


def classify(exc: BaseException) -> StepFailed:
    if isinstance(exc, StepFailed):
        return exc
    if isinstance(exc, SoftTimeLimitExceeded):
        return StepFailed("build_timeout", "The deployment took longer than the time limit.", True)
    failure = as_step_failure(exc)
    if failure is not None:
        return failure
    logger.exception("unexpected pipeline error", exc_info=exc)
    return StepFailed("internal_error", f"Unexpected error: {type(exc).__name__}", False)


class Heartbeat:
    """Touch heartbeat_at every PAAS_HEARTBEAT_SECONDS while the pipeline runs, from a thread
    of its own, so the warden can tell a slow build from a dead worker."""

    def __init__(self, deployment_id: int, every: float | None = None):
        self.deployment_id = deployment_id
        self.every = every or settings.PAAS_HEARTBEAT_SECONDS
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)

    def _loop(self):
        try:
            while not self.stopped.wait(self.every):
                self._beat()
        finally:
            connection.close()

    def _beat(self) -> None:
        try:
            Deployment.objects.filter(pk=self.deployment_id).update(heartbeat_at=timezone.now())
        except DatabaseError:
            # PostgreSQL restarted or away for a moment: beat again on a new connection at
            # the next tick. A thread that died here would pass its live build off as lost.
            logger.warning(
                "heartbeat of deployment %s missed: database unavailable", self.deployment_id
            )
            connection.close()
