"""What the preview tasks do: prepare a new preview (start its own database, seed it from
the template's latest backup, then queue its first deployment) and post commit statuses
back to the pull request's head commit with the owner's provider token.

The use cases that make the rows are in deployments/services/previews.py.
"""

import logging

from django.db import transaction
from django.utils import timezone

from apps.models import AddOn, AddOnStatus, App, Backup, BackupStatus, Preview, PreviewDatabase
from deployments import jobs
from deployments.adapters.git_providers import CommitStatus, ProviderError, post_commit_status
from deployments.adapters.runtime import RuntimeBackendError
from deployments.models import Deployment, Status
from deployments.services import ServiceError
from deployments.services.previews import DATABASE_KINDS, deploy_head, template_database
from deployments.workers import addons
from deployments.workers.backups import BackupFailed, restore_into

logger = logging.getLogger(__name__)

PENDING, SUCCESS, FAILURE = "pending", "success", "failure"


class PreparationFailed(Exception):
    pass


def prepare(preview_id: int, runtime) -> str:
    preview = Preview.objects.select_related("app", "environment").filter(pk=preview_id).first()
    if preview is None or preview.prepared_at or preview.environment.cleanup_requested:
        return "skipped"  # a duplicate delivery, or closed meanwhile
    try:
        _database(preview, runtime)
    except PreparationFailed as failure:
        return _failed(preview, str(failure))
    return _first_deployment(preview_id)


def _database(preview: Preview, runtime) -> None:
    """Start the preview's own database and, per the app's setting, seed it."""
    addon = preview.environment.addons.filter(kind__in=DATABASE_KINDS).first()
    if addon is None:
        return
    if addon.status == AddOnStatus.CREATING:
        addons.provision(addon.pk, runtime)
    addon = AddOn.objects.select_related("environment__app").get(pk=addon.pk)
    if addon.status != AddOnStatus.RUNNING:
        raise PreparationFailed(f"its {addon.kind} did not start: {addon.error_message}")
    seed = seed_backup(preview)
    if seed is None:
        return
    try:
        restore_into(addon, seed, runtime)
    except (BackupFailed, RuntimeBackendError, OSError) as exc:
        raise PreparationFailed(f"restoring backup #{seed.pk} failed: {exc}") from None
    logger.info("preview %s seeded from backup %s", preview, seed.pk)


def seed_backup(preview: Preview) -> Backup | None:
    """The template database's latest successful backup whose file is still there; None
    when the app wants empty databases or there is none (the preview starts empty)."""
    if preview.app.preview_database != PreviewDatabase.SEED:
        return None
    template = preview.app.environments.filter(name=preview.app.preview_template).first()
    source = template_database(template) if template else None
    if source is None:
        return None
    done = source.backups.filter(status=BackupStatus.SUCCEEDED).order_by("-created_at", "-pk")
    return next((backup for backup in done if backup.file and backup.file.is_file()), None)


def _first_deployment(preview_id: int) -> str:
    # Locked: a new head arriving now either lands before (and is deployed here) or
    # after (and is deployed by the webhook, which then sees prepared_at).
    with transaction.atomic():
        preview = Preview.objects.select_for_update().select_related("app").get(pk=preview_id)
        preview.prepared_at = timezone.now()
        preview.save(update_fields=["prepared_at", "updated_at"])
        try:
            deploy_head(preview)
        except ServiceError as refused:  # closed, or the app deleted, meanwhile
            return f"not deployed: {refused.message}"
    return "deployed"


def _failed(preview: Preview, message: str) -> str:
    logger.warning("preview %s could not be prepared: %s", preview, message)
    Preview.objects.filter(pk=preview.pk).update(
        error_message=message[:2000], updated_at=timezone.now()
    )
    jobs.post_commit_status(
        preview.app_id,
        preview.provider,
        preview.repository,
        preview.head_sha,
        FAILURE,
        f"The preview could not be prepared: {message}",
    )
    return "failed"


# --- commit statuses -------------------------------------------------------------------------


def report(deployment: Deployment, state: str) -> None:
    """Send the deployment's status to its pull request, if it deploys a preview."""
    if Preview.objects.filter(environment_id=deployment.environment_id).exists():
        jobs.post_deployment_status(deployment.pk, state)


def post_deployment_status(deployment_id: int, state: str) -> str:
    d = Deployment.objects.select_related("environment__app").filter(pk=deployment_id).first()
    preview = Preview.objects.filter(environment_id=d.environment_id).first() if d else None
    if preview is None:
        return "gone"
    if state == PENDING and d.is_final:
        return "stale"  # its final status went (or goes) out already
    status = CommitStatus(state, _description(d, state), _target_url(d, state))
    return _post(preview.app.owner, preview.provider, preview.repository, d.commit_sha, status)


def _description(d: Deployment, state: str) -> str:
    url = d.environment.url
    if state == SUCCESS:
        return f"Preview live at {url}"
    if state == PENDING:
        return f"Deploying the preview (deployment #{d.number})"
    return f"Preview deployment #{d.number} failed ({d.error_code or d.status})"


def _target_url(d: Deployment, state: str) -> str:
    return d.environment.url if state == SUCCESS or d.status == Status.SUCCEEDED else ""


def post_status(
    app_id: int, provider: str, repository: str, sha: str, state: str, description: str
) -> str:
    """A status not tied to a deployment (a refusal, a failed preparation)."""
    app = App.objects.select_related("owner").filter(pk=app_id).first()
    if app is None:
        return "gone"
    return _post(app.owner, provider, repository, sha, CommitStatus(state, description))


def _post(owner, provider: str, repository: str, sha: str, status: CommitStatus) -> str:
    try:
        post_commit_status(owner, provider, repository, sha, status)
    except ProviderError as exc:  # its message holds no token
        logger.warning("commit status for %s@%s not posted: %s", repository, sha[:12], exc.message)
        return f"not posted: {exc.code}"
    return status.state
