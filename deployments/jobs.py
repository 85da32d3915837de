"""The one seam to Celery: one function per kind of background work.

Each sends its task by name once the current transaction commits, so a worker never sees a
row that is not there yet, and nothing here imports the task modules (only the Celery app
does). Outside a transaction, on_commit runs at once.
"""

from functools import partial

from django.conf import settings
from django.db import transaction

from paas.celery import app as celery_app

TASKS = "deployments.tasks."


def _send(task: str, *args, countdown: float = 0, queue: str | None = None) -> None:
    # A signature by name is send_task in production, and honours task_always_eager
    # where a test runs tasks in its own process. No queue: the router's (paas/celery.py).
    job = celery_app.signature(TASKS + task, args=args)
    options = {"queue": queue} if queue else {}
    transaction.on_commit(partial(job.apply_async, countdown=countdown or None, **options))


def run_deployment(deployment_id: int, countdown: float = 0) -> None:
    _send("run_deployment", deployment_id, countdown=countdown)


def build_deployment(deployment_id: int, return_queue: str, attempt: int) -> None:
    """To a build node (routed to PAAS_BUILD_QUEUE); it hands the deployment back on
    `return_queue`, the one the claiming worker consumes (a manager's). `attempt`: a
    message for an attempt the warden has retried since does nothing."""
    _send("build_deployment", deployment_id, return_queue, attempt)


def resume_deployment(deployment_id: int, queue: str, attempt: int) -> None:
    _send("resume_deployment", deployment_id, attempt, queue=queue)


def run_command(run_id: int) -> None:
    """A one-off run (deployments/workers/runs.py): the claim makes a duplicate harmless."""
    _send("run_command", run_id)


def retire_deployment(deployment_id: int) -> None:
    """After the drain period, so requests in flight to the old container finish first."""
    _send("retire_deployment", deployment_id, countdown=settings.PAAS_DRAIN_SECONDS)


def apply_power_state(environment_id: int) -> None:
    _send("apply_power_state", environment_id)


def cleanup_app(app_id: int) -> None:
    _send("cleanup_app", app_id)


def cleanup_environment(environment_id: int) -> None:
    _send("cleanup_environment", environment_id)


def register_webhook(app_id: int) -> None:
    _send("register_webhook", app_id)


def sync_routes() -> None:
    _send("sync_routes")


def remove_volume(name: str) -> None:
    _send("remove_volume", name)


def provision_addon(addon_id: int) -> None:
    _send("provision_addon", addon_id)


def restart_addon(addon_id: int) -> None:
    _send("restart_addon", addon_id)


def teardown_addon(addon_id: int, delete_data: bool) -> None:
    _send("teardown_addon", addon_id, delete_data)


def run_backup(backup_id: int) -> None:
    _send("run_backup", backup_id)


def run_restore(backup_id: int) -> None:
    _send("run_restore", backup_id)


def deliver_notification(delivery_id: int, attempt: int, countdown: float = 0) -> None:
    _send("deliver_notification", delivery_id, attempt, countdown=countdown)


def email_notification(app_id: int, body: str) -> None:
    _send("email_notification", app_id, body)


def prepare_preview(preview_id: int) -> None:
    """Start (and seed) a new preview's database, then queue its first deployment."""
    _send("prepare_preview", preview_id)


def post_deployment_status(deployment_id: int, state: str) -> None:
    _send("post_deployment_status", deployment_id, state)


def post_commit_status(
    app_id: int, provider: str, repository: str, sha: str, state: str, description: str
) -> None:
    _send("post_commit_status", app_id, provider, repository, sha, state, description)
