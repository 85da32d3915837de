"""Per-environment router settings (who may reach it, maintenance, the request body limit)
and scaling: what the router and the next container pick up.

The router rebuilds every route from the database (jobs.sync_routes), so a change here is
saved first and then announced; a refusal is a ValidationError per field and saves nothing.
The basic-auth password is never stored, logged or returned: only its bcrypt hash, in the
`$2y$` form that Traefik's basic auth reads.
"""

import re

import bcrypt
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.models import App, Environment
from apps.models.app import Visibility
from deployments import jobs
from deployments.models import Deployment, Trigger
from deployments.services import (
    ServiceError,
    _reusable_image,
    _run_image_again,
    environment_named,
)
from deployments.services.audit import audited
from deployments.services.formation import check_can_scale

ROUTING_FIELDS = (
    "visibility",
    "basic_auth_user",
    "basic_auth_password",
    "maintenance",
    "maintenance_message",
    "max_body_bytes",
)
MODEL_FIELDS = (
    "visibility",
    "basic_auth_user",
    "basic_auth_hash",
    "maintenance",
    "maintenance_message",
    "max_body_bytes",
)
USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
PASSWORD_MIN, PASSWORD_MAX = 8, 256
MESSAGE_MAX = 2000
BODY_MIN, BODY_MAX = 1024, 10 * 1024**3
# Traefik checks the hash on every request (it keeps no cache): cost 8 is about 16 ms of
# the router's CPU per request, cost 10 about 60 ms and 12 about 240 ms (Traefik 3.7,
# measured). Apache's htpasswd -B uses 5.
BCRYPT_ROUNDS = 8
# bcrypt reads at most 72 bytes of a password; Go's bcrypt, Traefik's, reads the same ones.
BCRYPT_MAX_BYTES = 72

STOPPED_PAGE = "This app is stopped."
MAINTENANCE_PAGE = "This app is under maintenance."
NO_PASSWORD_PAGE = "This app is protected, and its password is not set yet."
NO_WEB_PAGE = "This app runs no web process (its web formation is 0)."


# --- router settings ----------------------------------------------------------------------


@audited(
    "routing.update",
    target=lambda r, env, data: env.name,
    details=lambda r, env, data: {"changed": r},
)
def update_routing(environment: Environment, data: dict) -> list[str]:
    """Apply any of ROUTING_FIELDS; returns those that changed. basic_auth_password in the
    answer means the stored password was set or removed. A refusal changes nothing."""
    with transaction.atomic():
        current = Environment.objects.select_for_update(no_key=True).get(pk=environment.pk)
        values, changed = _routing_changes(current, data)
        if changed:
            for field, value in values.items():
                setattr(current, field, value)
            current.save(update_fields=list(values))
            jobs.sync_routes()
    for field in MODEL_FIELDS:
        setattr(environment, field, getattr(current, field))
    return changed


def _routing_changes(env: Environment, data: dict) -> tuple[dict, list[str]]:
    """The model values to save and the fields that changed, or a ValidationError."""
    errors: dict[str, list[str]] = {}
    for field in data:
        if field not in ROUTING_FIELDS:
            errors[field] = ["Unknown field."]

    visibility = data.get("visibility", env.visibility)
    known = isinstance(visibility, str) and visibility in Visibility.values
    if not known:
        errors["visibility"] = [f"Use one of: {', '.join(Visibility.values)}."]
    protected = visibility == Visibility.PROTECTED

    user = data.get("basic_auth_user", env.basic_auth_user)
    new_user = "basic_auth_user" in data and user != env.basic_auth_user
    if not isinstance(user, str):
        errors["basic_auth_user"] = ["Expected text."]
    elif (protected or user) and not USER_NAME.fullmatch(user):
        errors["basic_auth_user"] = [
            "A user name is 1 to 64 letters, digits, dots, dashes, underscores or @ signs."
        ]

    password = data.get("basic_auth_password")
    if password is not None and known and not protected:
        errors["basic_auth_password"] = ["A password is kept only for a protected environment."]
    elif password is not None and (problem := _password_problem(password)):
        errors["basic_auth_password"] = [problem]
    elif protected and password is None and (new_user or not env.basic_auth_hash):
        errors["basic_auth_password"] = ["Set a password to protect the environment."]

    maintenance = data.get("maintenance", env.maintenance)
    if not isinstance(maintenance, bool):
        errors["maintenance"] = ["Use true or false."]

    message = data.get("maintenance_message", env.maintenance_message)
    if not _is_text(message):
        errors["maintenance_message"] = ["Expected text."]
    elif len(message) > MESSAGE_MAX:
        errors["maintenance_message"] = [f"At most {MESSAGE_MAX} characters."]
    elif "\x00" in message:
        errors["maintenance_message"] = ["The message cannot contain a NUL character."]

    body = data.get("max_body_bytes", env.max_body_bytes)
    if body is not None and (
        isinstance(body, bool) or not isinstance(body, int) or not BODY_MIN <= body <= BODY_MAX
    ):
        errors["max_body_bytes"] = [
            f"A whole number of bytes from {BODY_MIN} to {BODY_MAX} (10 GiB), "
            "or empty for the platform's default."
        ]

    if errors:
        raise ValidationError({field: messages for field, messages in errors.items()})

    values = {
        "visibility": visibility,
        "basic_auth_user": user,
        "basic_auth_hash": _new_hash(env, visibility, user, password),
        "maintenance": maintenance,
        "maintenance_message": message,
        "max_body_bytes": body,
    }
    values = {field: value for field, value in values.items() if getattr(env, field) != value}
    names = {"basic_auth_hash": "basic_auth_password"}
    return values, [names.get(field, field) for field in values]


def _is_text(value) -> bool:
    """A str that UTF-8 can store (JSON may carry a lone surrogate, which it cannot)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _password_problem(password) -> str | None:
    if not _is_text(password):
        return "Expected text."
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"A password is {PASSWORD_MIN} to {PASSWORD_MAX} characters."
    if any(ord(char) < 32 or ord(char) == 127 for char in password):
        return "The password cannot contain control characters."
    return None


def _new_hash(env: Environment, visibility: str, user: str, password: str | None) -> str:
    if visibility == Visibility.PUBLIC:
        return ""  # public: nobody needs the password any more
    if password is None:
        return env.basic_auth_hash  # kept (internal keeps it too, for a switch back)
    if env.basic_auth_hash and user == env.basic_auth_user and password_matches(env, password):
        return env.basic_auth_hash  # the same password again: nothing changed
    return hash_password(password)


def _secret(password: str) -> bytes:
    return password.encode()[:BCRYPT_MAX_BYTES]


def hash_password(password: str) -> str:
    """bcrypt makes `$2b$`; Traefik (Go) reads `$2a$`/`$2y$`: the same algorithm and form."""
    hashed = bcrypt.hashpw(_secret(password), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()
    return "$2y$" + hashed.removeprefix("$2b$")


def password_matches(env: Environment, password: str) -> bool:
    if not env.basic_auth_hash:
        return False
    return bcrypt.checkpw(_secret(password), env.basic_auth_hash.encode())


def router_page(env: Environment) -> str | None:
    """The text the router answers with (503) instead of the app, or None: the app."""
    if env.maintenance:
        return env.maintenance_message or MAINTENANCE_PAGE
    if env.stopped:
        return STOPPED_PAGE
    if env.visibility == Visibility.PROTECTED and not env.basic_auth_hash:
        return NO_PASSWORD_PAGE  # never public by accident
    if env.replicas == 0:
        return NO_WEB_PAGE
    return None


# --- scaling ------------------------------------------------------------------------------


def scale(app: App, environment_name: str, replicas: int, requested_by=None) -> Deployment | None:
    """Run `replicas` web containers: a SCALE deployment of the live image when something is
    live; else only saved, and the next deployment starts that many."""
    most = settings.PAAS_MAX_REPLICAS
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= most:
        raise ServiceError(f"Replicas must be a whole number from 1 to {most}.", "invalid_replicas")
    environment = environment_named(app, environment_name)
    check_can_scale(app, environment)
    source = None
    if environment.live_deployment_id is not None:
        source = _reusable_image(environment.live_deployment, "scale")
    with transaction.atomic():
        Environment.objects.filter(pk=environment.pk).update(replicas=replicas)
        if source is None:
            return None
        return _run_image_again(source, environment.name, Trigger.SCALE, requested_by)
