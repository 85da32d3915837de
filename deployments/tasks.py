"""Celery tasks: thin. Ids in, the pipeline or a service does the work."""

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_deployment(deployment_id: int) -> None:
    from deployments.pipeline import run

    run(deployment_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def cleanup_app(app_id: int) -> None:
    from deployments.cleanup import cleanup_app as do_cleanup

    do_cleanup(app_id)


@shared_task
def warden() -> None:
    from deployments.warden import reconcile

    reconcile()
