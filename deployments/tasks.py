"""Every Celery task, and the composition root for the workers: ids in, adapters built here
(through deployments.wiring) and handed to the worker that does the job.

Nothing imports this module but the Celery app (autodiscovery); everyone else sends tasks
by name through deployments.jobs.
"""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from apps.models import App
from deployments import wiring
from deployments.services import addon_backups as backup_requests
from deployments.services import runs as run_requests
from deployments.workers import (
    addons,
    alerts,
    backups,
    cleanup,
    deliveries,
    previews,
    retention,
    warden,
)
from deployments.workers import log_drains as drains
from deployments.workers import metrics as metric_samples
from deployments.workers import runs as one_off_runs
from deployments.workers import webhook_registration as webhooks
from deployments.workers.pipeline import build, lifecycle, resume, run
from paas.actor import Actor, acting

logger = logging.getLogger(__name__)
WARDEN = Actor("warden", name="warden")

# Platform hiccups (engine restarting, Caddy reloading) are retried; user errors never are.
RETRY = {
    "autoretry_for": (Exception,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 8,
}
DEFAULT_QUEUE = "celery"  # Celery's, which every worker but a build node's consumes
# A receiver that drips its answer must not hold a worker slot for long.
DELIVERY_SOFT_LIMIT = 60


# --- deployments ------------------------------------------------------------------------------


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def run_deployment(self, deployment_id: int) -> str:
    queue = (self.request.delivery_info or {}).get("routing_key") or DEFAULT_QUEUE
    return run(deployment_id, wiring.runtime(), wiring.router(), return_queue=queue)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def build_deployment(deployment_id: int, return_queue: str, attempt: int) -> str:
    """On a build node (PAAS_BUILD_QUEUE): its own engine builds; the registry carries the
    image to the nodes that run it."""
    return build(deployment_id, wiring.build_runtime(), wiring.registry(), return_queue, attempt)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def resume_deployment(deployment_id: int, attempt: int) -> str:
    return resume(deployment_id, wiring.runtime(), wiring.router(), attempt)


@shared_task(acks_late=True, **RETRY)
def retire_deployment(deployment_id: int) -> bool:
    return lifecycle.retire(deployment_id, wiring.runtime())


@shared_task(acks_late=True, **RETRY)
def apply_power_state(environment_id: int) -> str:
    return lifecycle.apply_power_state(environment_id, wiring.runtime(), wiring.router())


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def cleanup_app(app_id: int) -> bool:
    return cleanup.cleanup_app(app_id, wiring.runtime(), wiring.router())


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def cleanup_environment(environment_id: int) -> bool:
    return cleanup.cleanup_environment(environment_id, wiring.runtime(), wiring.router())


@shared_task(acks_late=True)
def register_webhook(app_id: int) -> str:
    app = App.objects.filter(pk=app_id).first()
    return webhooks.register(app) if app else "gone"


@shared_task(acks_late=True, **RETRY)
def remove_volume(name: str) -> bool:
    """Retried while a retiring container still holds the volume."""
    if not wiring.runtime().remove_volume(name):
        raise RuntimeError(f"volume {name} is still in use")
    return True


# --- one-off runs and scheduled jobs ------------------------------------------------------------

# A run may take PAAS_RUN_TIMEOUT, after which run_once kills its container itself; the
# task's own limits are only a backstop. A redelivered message finds the run claimed.
RUN_TASK_LIMIT = settings.PAAS_RUN_TIMEOUT + 120


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=RUN_TASK_LIMIT,
    time_limit=RUN_TASK_LIMIT + 60,
)
def run_command(run_id: int) -> str:
    return one_off_runs.execute(run_id, wiring.runtime())


@shared_task(acks_late=False, expires=60)
def schedule_jobs() -> int:
    """Celery beat's cron tick: start the scheduled jobs that are due."""
    return run_requests.schedule_due_jobs()


# --- retention --------------------------------------------------------------------------------


@shared_task(acks_late=False, expires=600)
def prune_old_logs() -> dict:
    """Celery beat: log lines past PAAS_LOG_RETENTION_DAYS go."""
    return retention.prune_logs()


@shared_task(acks_late=False, expires=600)
def prune_old_archives() -> int:
    """Celery beat: uploaded archives past PAAS_ARCHIVE_RETENTION_DAYS go."""
    return retention.prune_archives()


# --- the warden -------------------------------------------------------------------------------


@shared_task(acks_late=False, expires=30)
def run_warden() -> dict:
    with acting(WARDEN):  # what it changes is the warden's doing in the audit log
        return warden.reconcile(wiring.runtime(), wiring.router())


# --- metrics and alerts -------------------------------------------------------------------


@shared_task(acks_late=False, expires=30)
def sample_metrics() -> dict:
    """Celery beat, every PAAS_METRICS_SECONDS: sample, check the alerts, compact old rows."""
    written = metric_samples.sample(wiring.runtime(), wiring.router_metrics())
    fired = alerts.check()
    return {**written, "alerts": fired, **metric_samples.compact()}


@shared_task(**RETRY)
def sync_routes() -> int:
    return warden.sync_routes(wiring.router(), wiring.runtime())


@worker_ready.connect
def _restore_routes_at_start(sender=None, **kwargs):
    """A restarted router, or a fresh host, gets every live route back when a worker starts."""
    try:
        sync_routes.delay()
    except Exception:  # noqa: BLE001 - the broker may be starting too; the warden repeats it
        logger.warning("could not queue the route sync at worker start", exc_info=True)


@worker_ready.connect
def _apply_firewall_at_start(sender=None, **kwargs):
    """A rebooted host has lost its iptables rules: the worker puts the egress rules back
    before it takes a build."""
    try:
        wiring.firewall().apply()
    except Exception:  # noqa: BLE001 - not root, or no iptables: say so loudly, keep serving
        logger.error("could not apply the egress firewall rules at worker start", exc_info=True)


# --- add-ons and backups ----------------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True)
def provision_addon(addon_id: int) -> str:
    return addons.provision(addon_id, wiring.runtime())


@shared_task(acks_late=True, reject_on_worker_lost=True)
def restart_addon(addon_id: int) -> str:
    return addons.restart_container(addon_id, wiring.runtime())


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def teardown_addon(addon_id: int, delete_data: bool) -> str:
    return addons.teardown(addon_id, delete_data, wiring.runtime())


@shared_task(acks_late=True)
def run_backup(backup_id: int) -> str:
    return backups.run_backup(backup_id, wiring.runtime())


@shared_task(acks_late=True)
def run_restore(backup_id: int) -> str:
    return backups.run_restore(backup_id, wiring.runtime())


# --- preview environments ---------------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True)
def prepare_preview(preview_id: int) -> str:
    return previews.prepare(preview_id, wiring.runtime())


# A status is a courtesy to the pull request: one attempt, never held up by a slow forge.
@shared_task(acks_late=False, soft_time_limit=DELIVERY_SOFT_LIMIT)
def post_deployment_status(deployment_id: int, state: str) -> str:
    return previews.post_deployment_status(deployment_id, state)


@shared_task(acks_late=False, soft_time_limit=DELIVERY_SOFT_LIMIT)
def post_commit_status(
    app_id: int, provider: str, repository: str, sha: str, state: str, description: str
) -> str:
    return previews.post_status(app_id, provider, repository, sha, state, description)


@shared_task(acks_late=False, expires=3600)
def scheduled_backups() -> int:
    return backup_requests.scheduled_backups()


# --- notifications ----------------------------------------------------------------------------


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=None,
    soft_time_limit=DELIVERY_SOFT_LIMIT,
    time_limit=DELIVERY_SOFT_LIMIT + 30,
)
def deliver_notification(self, delivery_id: int, attempt: int = 1) -> str:
    delay = deliveries.attempt_delivery(delivery_id, attempt)
    if delay is None:
        return "done"
    # The next attempt carries its number: a copy of this message (redelivered after a
    # worker died) finds the attempt already made and does nothing.
    raise self.retry(args=(delivery_id, attempt + 1), countdown=delay)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=6,
)
def email_notification(app_id: int, body: str) -> bool:
    return deliveries.email_owner(app_id, body)


# --- log drains -------------------------------------------------------------------------------


@shared_task(acks_late=False)
def forward_log_drains() -> int:
    """Celery beat: each drain that is due gets the app's next lines (a tick that overlaps
    the previous one skips the drains that tick still holds)."""
    return drains.forward_all(wiring.syslog())
