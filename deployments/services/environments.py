"""Use cases for an app's environments: create one (a DNS label, its own host name) and
delete one with everything it runs (the engine's side by a job, like deleting an app)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.models import App, Environment, EnvironmentName, EnvVar, HostTaken
from apps.validators import RESERVED_ENVIRONMENT_PREFIX, validate_environment_name
from deployments import jobs
from deployments.models import ACTIVE_STATUSES
from deployments.services import Conflict, environment_named, host_taken
from deployments.services.audit import audited

MAX_HOST_LABEL = 63  # one DNS label


def _copied_from(env, app, name, copy_env_from=None) -> dict:
    return {"copy_env_from": copy_env_from} if copy_env_from else {}


@audited("environment.create", target=lambda env, *a, **k: env.name, details=_copied_from)
def create_environment(app: App, name: str, copy_env_from: str | None = None) -> Environment:
    """A new, empty environment answering on <app>-<name>.<domain>; with copy_env_from, the
    env vars of that one (not those its add-ons set: they point at its own add-ons)."""
    name = _checked_name(app, name)
    with transaction.atomic():
        locked = App.objects.select_for_update().get(pk=app.pk)
        _check_room(locked, name)
        source = environment_named(app, copy_env_from) if copy_env_from else None
        try:
            environment = Environment.create_for(app, name)
        except HostTaken as taken:
            raise host_taken(str(taken)) from None
        if source is not None:
            copy_env_vars(source, environment)
    return environment


def _checked_name(app: App, name: str) -> str:
    try:
        validate_environment_name(name)
    except ValidationError as error:
        raise ValidationError({"name": error.messages}) from None
    if len(Environment.label_for(app.name, name)) > MAX_HOST_LABEL:
        raise ValidationError(
            {"name": f"{app.name}-{name} is longer than a host label's 63 characters."}
        )
    return name


def _check_room(app: App, name: str) -> None:
    if app.cleanup_requested:
        raise Conflict(f"App {app.name} is being deleted.", "app_deleting")
    if app.environments.filter(name=name).exists():
        raise Conflict(f"{app.name} already has an environment called “{name}”.", "name_taken")
    limit = settings.PAAS_MAX_ENVIRONMENTS_PER_APP
    # Previews have their own cap (PAAS_MAX_PREVIEWS_PER_APP): open pull requests must not
    # stop the owner from making an environment.
    made = app.environments.exclude(name__startswith=RESERVED_ENVIRONMENT_PREFIX)
    if made.count() >= limit:
        raise Conflict(
            f"{app.name} has {limit} environments, the most one app may have "
            f"(PAAS_MAX_ENVIRONMENTS_PER_APP={limit}). Delete one first.",
            "environment_limit",
        )


def copy_env_vars(source: Environment, target: Environment, for_preview: bool = False) -> None:
    """source's env vars into target, but not those its add-ons set (they point at its own
    add-ons); for a preview, not those marked "not for previews" either. A protected var
    stays protected in the copy (or a developer could read it there)."""
    from_addons = {addon.env_var for addon in source.addons.all()}
    copied = source.env_vars.exclude(key__in=from_addons)
    if for_preview:
        copied = copied.exclude(not_for_previews=True)
    for var in copied:
        EnvVar.objects.create(
            environment=target, key=var.key, value=var.value, protected=var.protected
        )


@audited("environment.delete", target=lambda env, *a, **k: env.name)
def delete_environment(environment: Environment) -> Environment:
    """Mark it, then a job removes its route, containers, add-ons and volumes (their data
    too: deleting the environment is the confirmation) and finally the row. Refused for
    production (delete the app) and while one of its deployments is pending or running."""
    if environment.is_production:
        raise Conflict(
            "Production cannot be deleted: it is the app's own address. Delete the app instead.",
            "production_environment",
        )
    with transaction.atomic():
        App.objects.select_for_update().get(pk=environment.app_id)  # new_deployment waits
        if environment.deployments.filter(status__in=ACTIVE_STATUSES).exists():
            raise Conflict(
                f"A deployment to {environment.name} is pending or in progress; delete the "
                "environment once it is done.",
                "deploying",
            )
        environment.cleanup_requested_at = environment.cleanup_requested_at or timezone.now()
        environment.save(update_fields=["cleanup_requested_at"])
        # Pushes deployed here go to production from now on, not to a missing environment.
        App.objects.filter(pk=environment.app_id, webhook_environment=environment.name).update(
            webhook_environment=EnvironmentName.PRODUCTION
        )
        jobs.cleanup_environment(environment.pk)
    return environment
