"""Preview environments per pull request: a `pr-<number>` environment deployed from the
pull request's head commit, redeployed when the head moves, deleted (with its database and
everything else it made) when the pull request is closed or merged.

Rows change here; the worker (deployments/workers/previews.py) makes the preview's own
database, seeds it from the template environment's latest backup and queues the first
deployment, so the app starts on the seeded data. Refusals (previews off, a fork, the
limit) change nothing and are returned as the reason, which the webhook records.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.models import (
    AddOn,
    AddOnKind,
    AddOnStatus,
    App,
    Environment,
    EnvVar,
    HostTaken,
    Preview,
    PreviewDatabase,
)
from deployments import jobs
from deployments.models import ACTIVE_STATUSES, Deployment, InvalidTransition, Trigger
from deployments.services import (
    environment_named,
    host_taken,
    queue_deployment,
    update_app,
)
from deployments.services.audit import audited
from deployments.services.environments import copy_env_vars, delete_environment
from deployments.services.quotas import check_quota

SETTINGS = ("previews_enabled", "preview_template", "preview_database", "previews_allow_forks")
DATABASE_KINDS = (AddOnKind.POSTGRES, AddOnKind.MARIADB)
OPEN, UPDATE, CLOSE = "open", "update", "close"


@dataclass(frozen=True)
class PullRequest:
    """One pull (merge) request event, in the same words for every provider."""

    provider: str
    repository: str  # the base repository's full name, where statuses go
    number: int
    action: str  # OPEN, UPDATE, CLOSE
    head_sha: str
    head_branch: str
    title: str
    link: str
    from_fork: bool
    pull_ref: str  # the forge's ref for the head: refs/pull/<n>/head, refs/merge-requests/…


@dataclass
class Outcome:
    preview: Preview | None = None
    deployment: Deployment | None = None
    ignored: str = ""


# --- settings --------------------------------------------------------------------------------


def update_settings(app: App, data: dict) -> list[str]:
    """Change the preview settings (only those named in SETTINGS); returns what changed."""
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ValidationError({field: ["Unknown field."] for field in unknown})
    if "preview_template" in data:
        environment_named(app, data["preview_template"])
        if data["preview_template"].startswith("pr-"):
            raise ValidationError({"preview_template": ["A preview cannot be the template."]})
    if "preview_database" in data and data["preview_database"] not in PreviewDatabase.values:
        choices = ", ".join(PreviewDatabase.values)
        raise ValidationError({"preview_database": [f"Choose one of {choices}."]})
    return update_app(app, data)


@audited(
    "env.previews",
    target=lambda _, env, keys: env.name,
    details=lambda _, env, keys: {"not_for_previews": sorted(keys)},
)
def set_not_for_previews(environment: Environment, keys: list[str]) -> list[str]:
    """Mark exactly these env vars of the environment "not for previews" (unknown keys are
    refused); returns the marked keys."""
    known = set(environment.env_vars.values_list("key", flat=True))
    missing = sorted(set(keys) - known)
    if missing:
        raise ValidationError({"not_for_previews": [f"No such variable: {', '.join(missing)}."]})
    with transaction.atomic():
        environment.env_vars.update(not_for_previews=False)
        environment.env_vars.filter(key__in=keys).update(not_for_previews=True)
    return sorted(keys)


# --- a pull request opened, updated or closed ------------------------------------------------


def handle(app: App, pr: PullRequest) -> Outcome:
    if pr.action == CLOSE:
        return close(app, pr)
    return open_or_update(app, pr)


def open_or_update(app: App, pr: PullRequest) -> Outcome:
    reason = _why_not_deployed(app, pr)
    if reason:
        return Outcome(ignored=reason)
    with transaction.atomic():
        App.objects.select_for_update().get(pk=app.pk)  # one count, one create at a time
        preview = app.previews.select_for_update().filter(number=pr.number).first()
        if preview is not None:
            return _moved_head(preview, pr)
        if app.open_previews.count() >= settings.PAAS_MAX_PREVIEWS_PER_APP:
            return _over_the_limit(app, pr)
        return Outcome(preview=_open(app, pr))


def _why_not_deployed(app: App, pr: PullRequest) -> str:
    if not app.previews_enabled:
        return "previews are off for this app"
    if app.cleanup_requested:
        return f"app {app.name} is being deleted"
    if pr.from_fork and not app.previews_allow_forks:
        return (
            f"fork: pull request #{pr.number} comes from a fork, and this app does not "
            "deploy forks (previews_allow_forks)"
        )
    return ""


def _over_the_limit(app: App, pr: PullRequest) -> Outcome:
    limit = settings.PAAS_MAX_PREVIEWS_PER_APP
    message = (
        f"limit: {app.name} already has {limit} previews "
        f"(PAAS_MAX_PREVIEWS_PER_APP={limit}); close one to preview #{pr.number}"
    )
    jobs.post_commit_status(app.pk, pr.provider, pr.repository, pr.head_sha, "failure", message)
    return Outcome(ignored=message)


def _moved_head(preview: Preview, pr: PullRequest) -> Outcome:
    if preview.environment.cleanup_requested:
        return Outcome(
            preview=preview, ignored=f"the preview of #{pr.number} is still being deleted"
        )
    if preview.head_sha == pr.head_sha:
        return Outcome(
            preview=preview, ignored=f"commit {pr.head_sha[:12]} is already the preview's"
        )
    preview.head_sha, preview.head_branch, preview.title = pr.head_sha, pr.head_branch, pr.title
    preview.save(update_fields=["head_sha", "head_branch", "title", "updated_at"])
    if preview.prepared_at is None:
        return Outcome(preview=preview)  # the preparation deploys the head it finds
    return Outcome(preview=preview, deployment=deploy_head(preview))


def deploy_head(preview: Preview) -> Deployment:
    """Queue a deployment of the preview's head commit to its environment."""
    return queue_deployment(
        preview.app,
        preview.environment_name,
        trigger=Trigger.WEBHOOK,
        commit_sha=preview.head_sha,
        branch=preview.head_branch,
    )


@audited("preview.open", target=lambda preview, *a: preview.environment_name)
def _open(app: App, pr: PullRequest) -> Preview:
    name = Preview.environment_name_for(pr.number)
    try:
        environment = Environment.create_for(app, name)
    except HostTaken as taken:
        raise host_taken(str(taken)) from None
    template = _template_of(app)
    copy_env_vars(template, environment, for_preview=True)
    _own_database(app, template, environment)
    preview = Preview.objects.create(
        app=app,
        environment=environment,
        number=pr.number,
        provider=pr.provider,
        repository=pr.repository,
        title=pr.title[:300],
        link=pr.link[:500],
        head_sha=pr.head_sha,
        head_branch=pr.head_branch,
        fetch_ref=pr.pull_ref if pr.from_fork else f"refs/heads/{pr.head_branch}",
        from_fork=pr.from_fork,
    )
    jobs.prepare_preview(preview.pk)
    return preview


def _template_of(app: App) -> Environment:
    """The template environment; production if the chosen one was deleted since."""
    found = app.environments.filter(name=app.preview_template).first()
    return found or app.environment("production")


def template_database(template: Environment) -> AddOn | None:
    """The template's SQL database add-on, if it has one attached."""
    attached = template.addons.exclude(status__in=[AddOnStatus.DETACHED, AddOnStatus.DELETING])
    return attached.filter(kind__in=DATABASE_KINDS).first()


def _own_database(app: App, template: Environment, environment: Environment) -> None:
    """A new add-on of the template's database kind, its URL in the preview's env; the
    worker starts (and seeds) it before the first deployment."""
    source = template_database(template)
    if app.preview_database == PreviewDatabase.NONE or source is None:
        return
    check_quota(app.owner, "addons")
    addon = AddOn.new(environment, source.kind)
    addon.save()
    EnvVar.objects.update_or_create(
        environment=environment, key=addon.env_var, defaults={"value": addon.connection_url()}
    )


def close(app: App, pr: PullRequest) -> Outcome:
    preview = app.previews.select_related("environment").filter(number=pr.number).first()
    if preview is None:
        return Outcome(ignored=f"no preview of #{pr.number} to delete")
    if preview.environment.cleanup_requested:
        return Outcome(preview=preview, ignored=f"the preview of #{pr.number} is being deleted")
    return Outcome(preview=delete_preview(preview))


@audited("preview.close", target=lambda preview, *a: preview.environment_name)
def delete_preview(preview: Preview) -> Preview:
    """Stop what still deploys there, then delete the environment: the cleanup job removes
    its route, containers, add-ons with their data, volumes and backups, then the rows."""
    for deployment in preview.environment.deployments.filter(status__in=ACTIVE_STATUSES):
        try:
            deployment.mark_cancelled(f"Pull request #{preview.number} was closed.")
        except InvalidTransition:
            pass  # it finished meanwhile
    delete_environment(preview.environment)
    return preview
