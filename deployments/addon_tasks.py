"""Celery tasks for add-ons and their backups: thin. Ids in; the services do the work.

Imported by deployments/tasks.py so the worker registers them.
"""

from celery import shared_task

from deployments.tasks import RETRY

__all__ = [
    "provision_addon",
    "restart_addon",
    "teardown_addon",
    "run_backup",
    "run_restore",
    "scheduled_backups",
]


@shared_task(acks_late=True, reject_on_worker_lost=True)
def provision_addon(addon_id: int) -> str:
    from deployments.services.addons import provision

    return provision(addon_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def restart_addon(addon_id: int) -> str:
    from deployments.services.addons import restart_container

    return restart_container(addon_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def teardown_addon(addon_id: int, delete_data: bool) -> str:
    from deployments.services.addons import teardown

    return teardown(addon_id, delete_data)


@shared_task(acks_late=True)
def run_backup(backup_id: int) -> str:
    from deployments.services.addon_backups import run_backup as do_backup

    return do_backup(backup_id)


@shared_task(acks_late=True)
def run_restore(backup_id: int) -> str:
    from deployments.services.addon_backups import run_restore as do_restore

    return do_restore(backup_id)


@shared_task(acks_late=False, expires=3600)
def scheduled_backups() -> int:
    from deployments.services.addon_backups import scheduled_backups as queue_all

    return queue_all()
