"""Use cases: the one way in for views, the API, webhooks and admin actions.

Nothing here talks to Docker or Caddy; work that does is enqueued after the transaction
commits, so a worker never sees a row that is not there yet.
"""

from pathlib import Path

from django.db import IntegrityError, transaction

from apps.models import (
    App,
    AppCleanupRequested,
    AppStatus,
    Environment,
    EnvironmentCleanupRequested,
    EnvironmentName,
    EnvVar,
    HostTaken,
)
from apps.validators import could_be_environment_name
from deployments import jobs, wiring
from deployments.models import ACTIVE_STATUSES, Deployment, InvalidTransition, Status, Trigger
from deployments.services import log_store, quotas
from deployments.services.audit import audited


class ServiceError(Exception):
    """An expected refusal, shown to the user: a stable code, a message, an HTTP status."""

    status = 400

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.message, self.code = message, code


class Conflict(ServiceError):
    status = 409


class ProtectedEnvVar(ServiceError):
    """Someone who may not (a developer) reading, changing, removing or marking protected
    env vars: the whole request is refused, nothing changed. Names the keys, never values."""

    status = 403

    def __init__(self, keys):
        self.keys = sorted(keys)
        super().__init__(
            f"{', '.join(self.keys)}: only the team's admins and owners may see, change or "
            "remove a protected env var, or mark one protected or not. Nothing was changed.",
            "protected_env_var",
        )
        self.fields = {key: ["Protected: the team's admins and owners only."] for key in self.keys}


def _env_keys(_, environment, values, replace=False, protect=None, **_flags) -> dict:
    # Keys only: the values are secrets and never reach the audit log.
    details = {"keys": sorted(values), "replace": replace}
    if protect is not None:
        details["protected"] = protect
    return details


def _deployment_target(deployment, *args, **kwargs) -> str:
    return f"#{deployment.number} {deployment.environment.name}"


def environment_named(app: App, name: str) -> Environment:
    """Every way in names an environment the same way; an unknown one changes nothing."""
    known = could_be_environment_name(name)
    environment = app.environments.filter(name=name).first() if known else None
    if environment is None:
        raise ServiceError(f"Unknown environment “{name}”.", "invalid_environment")
    return environment


# --- apps ---------------------------------------------------------------------------------


@audited("app.create", details=lambda app, owner, data, *a, **k: {"repository": app.repository})
def create_app(
    owner,
    data: dict,
    env: dict | None = None,
    deploy: bool = False,
    staging: bool = False,
    team=None,
) -> App:
    """Create an app from cleaned form data (AppCreateForm) and its env vars: production,
    and staging when asked for (or given env vars). In `team` (one the owner may deploy
    in, which the caller checked), else the owner's personal team."""
    env = env or {}
    try:
        with transaction.atomic():
            quotas.check_quota(owner, "apps")
            app = App.objects.create(owner=owner, team=team, **data)
            if staging or EnvironmentName.STAGING in env:
                Environment.create_for(app, EnvironmentName.STAGING)
            for env_name, values in env.items():
                set_env_vars(environment_named(app, env_name), values)
            if deploy:
                queue_deployment(app, EnvironmentName.PRODUCTION, requested_by=owner)
            jobs.register_webhook(app.pk)
    except HostTaken as taken:
        raise host_taken(str(taken)) from None
    except IntegrityError:
        # Two creations raced past the form's check; the unique index decided.
        raise Conflict(f"An app called “{data['name']}” already exists.", "name_taken") from None
    return app


def host_taken(label: str) -> Conflict:
    # App shop-dev would answer on app shop's environment dev's host (or the other way).
    return Conflict(
        f"{label} is already the host name of another app's environment; choose another name.",
        "host_taken",
    )


@audited("app.update", details=lambda changed, *a, **k: {"changed": changed})
def update_app(app: App, data: dict) -> list[str]:
    """Apply settings; returns the fields that changed (they take effect on the next deploy)."""
    changed = [field for field, value in data.items() if getattr(app, field) != value]
    for field in changed:
        setattr(app, field, data[field])
    if changed:
        app.save(update_fields=[*changed, "updated_at"])
    return changed


@audited("env.set", target=lambda _, env, *a, **k: env.name, details=_env_keys)
def set_env_vars(
    environment,
    values: dict[str, str],
    replace: bool = False,
    *,
    protect: bool | None = None,
    may_touch_protected: bool = False,
) -> None:
    """Upsert env vars (already validated); with replace, keys not given are removed.
    `protect` marks (True) or unmarks (False) every given key; None keeps each one's mark
    (a new one starts unprotected). A protected var touched or removed, or any mark set,
    needs `may_touch_protected` (the caller asks apps.access.may_touch_env_var): without
    it the whole call is refused (ProtectedEnvVar) before anything is written."""
    with transaction.atomic():
        # Locked: a var marked protected meanwhile cannot slip past the check.
        existing = {var.key: var for var in environment.env_vars.select_for_update()}
        removed = set(existing) - set(values) if replace else set()
        _refuse_protected(existing, set(values) | removed, protect, may_touch_protected)
        environment.env_vars.filter(key__in=removed).delete()
        for key, value in values.items():
            var = existing.get(key) or EnvVar(environment=environment, key=key)
            var.value = value
            if protect is not None:
                var.protected = protect
            var.save()


def _refuse_protected(
    existing: dict[str, EnvVar], touched: set[str], protect: bool | None, allowed: bool
) -> None:
    if allowed:
        return
    refused = {key for key in touched if key in existing and existing[key].protected}
    if protect:
        refused |= touched
    if refused:
        raise ProtectedEnvVar(refused)


@audited(
    "env.delete",
    target=lambda _, env, key, **k: env.name,
    details=lambda _, env, key, **k: {"key": key},
)
def delete_env_var(environment, key: str, *, may_touch_protected: bool = False) -> bool:
    """Remove one var; a protected one needs `may_touch_protected` (as set_env_vars)."""
    with transaction.atomic():
        var = environment.env_vars.select_for_update().filter(key=key).first()
        if var is None:
            return False
        _refuse_protected({key: var}, {key}, None, may_touch_protected)
        var.delete()
    return True


@audited(
    "env.protect",
    target=lambda _, var, *a, **k: var.environment.name,
    details=lambda _, var, protected, **k: {"key": var.key, "protected": protected},
)
def protect_env_var(var: EnvVar, protected: bool, *, may_touch_protected: bool = False) -> EnvVar:
    """Mark a var protected (only the team's admins and owners then see or change it) or
    not; either needs `may_touch_protected`."""
    if not may_touch_protected:
        raise ProtectedEnvVar([var.key])
    var.protected = protected
    var.save(update_fields=["protected", "updated_at"])
    return var


# --- deployments --------------------------------------------------------------------------


@audited(
    "deployment.queue", target=_deployment_target, details=lambda d, *a, **k: {"trigger": d.trigger}
)
def queue_deployment(
    app: App,
    environment_name: str = EnvironmentName.PRODUCTION,
    *,
    trigger: str = Trigger.MANUAL,
    requested_by=None,
    commit_sha: str = "",
    branch: str | None = None,
    source: Deployment | None = None,
    trigger_data: dict | None = None,
) -> Deployment:
    """Create a deployment, supersede older pending ones, enqueue it once committed.

    trigger_data is what the trigger brings beyond git (an uploaded archive's path)."""
    environment = environment_named(app, environment_name)
    try:
        with transaction.atomic():
            deployment = app.new_deployment(
                environment,
                trigger=trigger,
                requested_by=requested_by,
                commit_sha=commit_sha,
                branch=app.branch if branch is None else branch,
                source_deployment=source,
                build_method=app.build_method,
                step_data=dict(trigger_data or {}),
            )
            _supersede_older_pending(deployment)
            App.objects.filter(pk=app.pk).update(status=AppStatus.DEPLOYING)
            jobs.run_deployment(deployment.pk)
    except EnvironmentCleanupRequested:
        raise Conflict(
            f"The {environment.name} environment is being deleted.", "environment_deleting"
        ) from None
    except AppCleanupRequested:
        raise Conflict(f"App {app.name} is being deleted.", "app_deleting") from None
    return deployment


def _supersede_older_pending(deployment: Deployment) -> None:
    older = Deployment.objects.filter(
        environment=deployment.environment, status=Status.PENDING, number__lt=deployment.number
    )
    for old in older:
        try:
            old.mark_superseded(by=deployment)
        except InvalidTransition:
            pass  # it was claimed a moment ago: it runs, and this one waits its turn


def redeploy(deployment: Deployment, requested_by=None) -> Deployment:
    """Build the same source again: the same commit, or the same uploaded archive."""
    if deployment.trigger == Trigger.ARCHIVE:
        return _redeploy_archive(deployment, requested_by)
    return queue_deployment(
        deployment.app,
        deployment.environment.name,
        trigger=Trigger.REDEPLOY,
        requested_by=requested_by,
        commit_sha=deployment.commit_sha,
        branch=deployment.branch,
        source=deployment,
    )


def _redeploy_archive(deployment: Deployment, requested_by) -> Deployment:
    archive = deployment.step_data.get("archive")
    if not archive or not Path(archive).is_file():
        raise Conflict(
            "The uploaded archive is no longer kept; upload it again.", "archive_missing"
        )
    return queue_deployment(
        deployment.app,
        deployment.environment.name,
        trigger=Trigger.ARCHIVE,
        requested_by=requested_by,
        branch="",
        source=deployment,
        trigger_data={"archive": archive},
    )


def _reusable_image(source: Deployment | None, what: str) -> Deployment:
    if source is None or source.status != Status.SUCCEEDED or not source.image_id:
        raise Conflict(f"There is no successful deployment to {what}.", "nothing_to_" + what)
    if not _image_exists(source.image_id):
        raise Conflict(
            f"The image of deployment #{source.number} is no longer kept; redeploy it instead.",
            "image_pruned",
        )
    return source


def _image_exists(image_id: str) -> bool:
    return wiring.runtime().image_exists(image_id)


def _run_image_again(source: Deployment, environment_name: str, trigger: str, requested_by):
    """A deployment that starts an existing image instead of building one."""
    return queue_deployment(
        source.app,
        environment_name,
        trigger=trigger,
        requested_by=requested_by,
        commit_sha=source.commit_sha,
        branch=source.branch,
        source=source,
    )


def no_staging(app: App) -> Conflict:
    return Conflict(
        f"{app.name} has no staging environment to promote from: create one, deploy it, "
        "then promote.",
        "no_staging",
    )


def promote(app: App, requested_by=None) -> Deployment:
    """Staging's live image to production, no gates (they are promotion.request_promotion's)."""
    staging = app.environments.filter(name=EnvironmentName.STAGING).first()
    if staging is None:
        raise no_staging(app)
    return promote_environment(staging, app.environment(EnvironmentName.PRODUCTION), requested_by)


def promote_environment(source: Environment, target: Environment, requested_by=None):
    """The source's live image goes to the target with the target's env vars, formation and
    release phase; no rebuild."""
    image = _reusable_image(source.live_deployment, "promote")
    return _run_image_again(image, target.name, Trigger.PROMOTE, requested_by)


def rollback(deployment: Deployment, requested_by=None) -> Deployment:
    """An earlier successful deployment's image back live in its environment; no build."""
    source = _reusable_image(deployment, "rollback")
    return _run_image_again(source, source.environment.name, Trigger.ROLLBACK, requested_by)


def restart(app: App, environment_name: str, requested_by=None) -> Deployment:
    """A fresh container from the live image: started, health-checked, switched, old retired."""
    environment = environment_named(app, environment_name)
    source = _reusable_image(environment.live_deployment, "restart")
    return _run_image_again(source, environment_name, Trigger.RESTART, requested_by)


@audited("environment.stop", target=lambda _, app, environment_name: environment_name)
def stop(app: App, environment_name: str) -> None:
    """Stop the live container; the route answers with a 'stopped' page until started."""
    environment = environment_named(app, environment_name)
    if environment.live_deployment_id is None:
        raise Conflict("Nothing is running in this environment.", "not_running")
    Environment.objects.filter(pk=environment.pk).update(stopped=True)
    jobs.apply_power_state(environment.pk)


@audited("environment.start", target=lambda _, app, environment_name: environment_name)
def start(app: App, environment_name: str) -> None:
    environment = environment_named(app, environment_name)
    if environment.live_deployment_id is None:
        raise Conflict("Nothing has been deployed to this environment yet.", "not_deployed")
    Environment.objects.filter(pk=environment.pk).update(stopped=False)
    jobs.apply_power_state(environment.pk)


@audited("deployment.cancel", target=_deployment_target)
def cancel_deployment(deployment: Deployment) -> Deployment:
    try:
        deployment.mark_cancelled("Cancelled by request.")
    except InvalidTransition:
        raise Conflict(
            f"Deployment #{deployment.number} is {deployment.status} and cannot be cancelled.",
            "not_cancellable",
        ) from None
    deployment.app.refresh_status()  # a pending one never reached a worker to do it
    return deployment


def runtime_logs(environment, since_ns: int = 0, limit: int = 200, filters=None) -> list:
    """Lines from the store (every container the environment ran, kept across
    deployments): the newest page, or the lines after since_ns. See runtime_logs.py."""
    return log_store.page(environment, since_ns=since_ns, limit=limit, filters=filters)


# --- deletion -----------------------------------------------------------------------------


@audited("app.delete")
def request_cleanup(app: App) -> App:
    """Refuse while a deployment is pending or running; else mark the app and enqueue."""
    with transaction.atomic():
        locked = App.objects.select_for_update().get(pk=app.pk)
        if locked.deployments.filter(status__in=ACTIVE_STATUSES).exists():
            raise Conflict(
                "A deployment is pending or in progress; wait for it or cancel it, then delete.",
                "deployment_in_progress",
            )
        locked.request_cleanup()
        jobs.cleanup_app(locked.pk)
    app.refresh_from_db()
    return app
