"""/api/v1 an environment's env vars one by one: list them (keys and marks, never values),
reveal one, set one, mark it protected or not, remove it.

Who may is apps.access.may_touch_env_var's: a protected var is its team's admins' and
owners' alone, and a developer touching one gets 403 protected_env_var with nothing
changed (the services refuse it on every way in). A value is a secret: a read-only token
never sees one (403 read_only_token), and the audit log records keys only."""

from django.core.exceptions import ValidationError
from ninja import Router, Status

from apps.access import (
    CHANGE,
    READ,
    app_for,
    env_var_for,
    env_var_to_reveal,
    environment_for,
    may_touch_env_var,
)
from apps.api.auth import reveals_secrets
from apps.api.schemas import (
    AppName,
    EnvironmentChoice,
    EnvKey,
    EnvVarIn,
    EnvVarListOut,
    EnvVarOut,
    EnvVarProtectIn,
    EnvVarValueOut,
    answers,
)
from apps.validators import validate_env_key, validate_env_value
from deployments import services
from deployments.services import ServiceError

router = Router(tags=["env vars"])

ENV = "/apps/{name}/environments/{environment}/env"
VAR = ENV + "/{key}"


class ValueNeedsWriteToken(ServiceError):
    status = 403

    def __init__(self):
        super().__init__(
            "This token is read-only: it reads status and history, not secret values. "
            "Use a read-write token to see an env var's value.",
            "read_only_token",
        )


@router.get(ENV, response=answers(200, EnvVarListOut, 404))
def list_env_vars(request, name: AppName, environment: EnvironmentChoice):
    env = environment_for(app_for(request.auth, name, to=READ), environment)
    return {"vars": env.env_vars.all()}


@router.get(VAR, response=answers(200, EnvVarValueOut, 403, 404))
def reveal_env_var(request, name: AppName, environment: EnvironmentChoice, key: EnvKey):
    """Developers and up see an unprotected value, admins and owners a protected one;
    viewers and staff get 404 (they see no value at all)."""
    app = app_for(request.auth, name, to=CHANGE)
    var = env_var_to_reveal(request.auth, app, environment_for(app, environment), key)
    if not reveals_secrets(request):
        raise ValueNeedsWriteToken()
    return var


@router.put(VAR, response=answers(200, EnvVarOut, 400, 403, 404))
def set_env_var(
    request, name: AppName, environment: EnvironmentChoice, key: EnvKey, payload: EnvVarIn
):
    """Add it or change its value (it takes effect on the next deployment)."""
    app = app_for(request.auth, name, to=CHANGE)
    env = environment_for(app, environment)
    _check_var(key, payload.value)
    services.set_env_vars(
        env,
        {key: payload.value},
        protect=payload.protected,
        may_touch_protected=may_touch_env_var(request.auth, app, protected=True),
    )
    return env.env_vars.get(key=key)


@router.patch(VAR, response=answers(200, EnvVarOut, 400, 403, 404))
def protect_env_var(
    request,
    name: AppName,
    environment: EnvironmentChoice,
    key: EnvKey,
    payload: EnvVarProtectIn,
):
    """Mark it protected or not: the team's admins and owners."""
    app = app_for(request.auth, name, to=CHANGE)
    var = env_var_for(environment_for(app, environment), key)
    may_touch_protected = may_touch_env_var(request.auth, app, protected=True)
    return services.protect_env_var(var, payload.protected, may_touch_protected=may_touch_protected)


@router.delete(VAR, response=answers(204, None, 403, 404))
def delete_env_var(request, name: AppName, environment: EnvironmentChoice, key: EnvKey):
    app = app_for(request.auth, name, to=CHANGE)
    var = env_var_for(environment_for(app, environment), key)
    may_touch_protected = may_touch_env_var(request.auth, app, protected=True)
    services.delete_env_var(var.environment, var.key, may_touch_protected=may_touch_protected)
    return Status(204, None)


def _check_var(key: str, value: str) -> None:
    errors = {}
    for field, validate, given in (
        ("key", validate_env_key, key),
        ("value", validate_env_value, value),
    ):
        try:
            validate(given)
        except ValidationError as exc:
            errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)
