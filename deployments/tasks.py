"""Celery tasks: thin. Ids in; the pipeline, cleanup or warden does the work."""

import logging

from celery import shared_task
from celery.signals import worker_ready

logger = logging.getLogger(__name__)

# Platform hiccups (engine restarting, Caddy reloading) are retried; user errors never are.
RETRY = {
    "autoretry_for": (Exception,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "max_retries": 8,
}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_deployment(deployment_id: int) -> str:
    from deployments.workers.pipeline import run

    return run(deployment_id)


@shared_task(acks_late=True, **RETRY)
def retire_deployment(deployment_id: int) -> bool:
    from deployments.workers.pipeline import default_runtime
    from deployments.workers.pipeline.lifecycle import retire

    return retire(deployment_id, default_runtime())


@shared_task(acks_late=True, **RETRY)
def apply_power_state(environment_id: int) -> str:
    from deployments.workers.pipeline import default_proxy, default_runtime
    from deployments.workers.pipeline.lifecycle import apply_power_state as apply

    return apply(environment_id, default_runtime(), default_proxy())


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def cleanup_app(app_id: int) -> bool:
    from deployments.workers.cleanup import cleanup_app as do_cleanup

    return do_cleanup(app_id)


@shared_task(acks_late=True)
def register_webhook(app_id: int) -> str:
    from apps.models import App
    from deployments.services.webhook_registration import register

    app = App.objects.filter(pk=app_id).first()
    return register(app) if app else "gone"


@shared_task(acks_late=False, expires=30)
def warden() -> dict:
    from deployments.workers.warden import reconcile

    return reconcile()


@shared_task(acks_late=True, **RETRY)
def remove_volume(name: str) -> bool:
    """Retried while a retiring container still holds the volume."""
    from deployments.workers.pipeline import default_runtime

    if not default_runtime().remove_volume(name):
        raise RuntimeError(f"volume {name} is still in use")
    return True


@shared_task(**RETRY)
def sync_routes() -> int:
    from deployments.workers.warden import sync_routes as do_sync

    return do_sync()


@worker_ready.connect
def _restore_routes_at_start(sender=None, **kwargs):
    """A restarted Caddy, or a fresh host, gets every live route back when a worker starts."""
    try:
        sync_routes.delay()
    except Exception:  # noqa: BLE001 - the broker may be starting too; the warden repeats it
        logger.warning("could not queue the route sync at worker start", exc_info=True)


from deployments.addon_tasks import *  # noqa: E402,F401,F403
from deployments.notification_tasks import *  # noqa: E402,F401,F403
