"""An environment's router settings on the app's settings page (one "Routing" panel per
environment, loaded and re-rendered by htmx), and the Scale button on the app page.

Router settings apply at once (the router rebuilds the route); the password field is never
filled in again, and only says whether a password is set.
"""

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from apps.access import CHANGE, READ, app_for, environment_for
from apps.models.app import Visibility
from apps.web.actions import CHANGED, NEW_DEPLOYMENT, app_action
from apps.web.pages import login_required
from deployments.models import WEB
from deployments.services import ServiceError
from deployments.services import formation as formation_service
from deployments.services import routing as service

MIB = 1024 * 1024
BODY_LIMIT_MESSAGE = "From 0.001 MiB (1 KiB) to 10240 MiB (10 GiB); empty for the default."


def _mib(size: int | None) -> str:
    """A byte count as the MiB the form shows ("" for the default)."""
    if size is None:
        return ""
    if size % MIB == 0:
        return str(size // MIB)
    return f"{Decimal(size) / MIB:.6f}".rstrip("0").rstrip(".")


def _routing_context(app, env, posted=None, errors=None, changed=None) -> dict:
    posted = posted or {}
    shown = _mib(env.max_body_bytes)
    return {
        "app": app,
        "env": env,
        "visibilities": Visibility.choices,
        "visibility": posted.get("visibility", env.visibility),
        "basic_auth_user": posted.get("basic_auth_user", env.basic_auth_user),
        "maintenance": posted.get("maintenance", env.maintenance),
        "maintenance_message": posted.get("maintenance_message", env.maintenance_message),
        "max_body_mib": posted.get("max_body_mib", shown),
        "max_body_shown": shown,
        "default_mib": _mib(settings.PAAS_MAX_BODY_BYTES),
        "errors": errors or {},
        "changed": changed,
    }


def _form_data(post, env) -> tuple[dict, dict, dict]:
    """(what update_routing gets, what the form shows again, errors of the form itself)."""
    message = post.get("maintenance_message", "").replace("\r\n", "\n").strip()
    posted = {
        "visibility": post.get("visibility", env.visibility),
        "basic_auth_user": post.get("basic_auth_user", "").strip(),
        "maintenance": post.get("maintenance") == "on",
        "maintenance_message": message,
        "max_body_mib": post.get("max_body_mib", "").strip(),
    }
    data = {key: posted[key] for key in ("visibility", "basic_auth_user", "maintenance")}
    data["maintenance_message"] = message
    if post.get("basic_auth_password"):
        data["basic_auth_password"] = post["basic_auth_password"]
    errors = {}
    # The value shown, sent back unchanged, keeps what is stored (even a size in bytes that
    # the MiB shown only rounds).
    if posted["max_body_mib"] != post.get("max_body_shown", _mib(env.max_body_bytes)):
        try:
            data["max_body_bytes"] = _bytes(posted["max_body_mib"])
        except (InvalidOperation, ValueError):
            errors["max_body_bytes"] = [BODY_LIMIT_MESSAGE]
    return data, posted, errors


def _bytes(mib: str) -> int | None:
    if mib == "":
        return None
    size = Decimal(mib) * MIB
    if not size.is_finite() or size != size.to_integral_value():
        raise ValueError(mib)
    return int(size)


@login_required
def routing_settings(request, name, environment):
    """GET: the panel. POST: save it (a refusal saves nothing and marks the fields)."""
    app = app_for(request.user, name, to=CHANGE if request.method == "POST" else READ)
    env = environment_for(app, environment)
    if request.method != "POST":
        return render(request, "apps/_routing.html", _routing_context(app, env))
    data, posted, errors = _form_data(request.POST, env)
    changed = None
    if not errors:
        try:
            changed = service.update_routing(env, data)
        except ValidationError as exc:
            errors = exc.message_dict
    if "max_body_bytes" in errors:
        errors["max_body_bytes"] = [BODY_LIMIT_MESSAGE]
    if not request.htmx:
        if errors:
            text = " ".join(message for messages_ in errors.values() for message in messages_)
            messages.error(request, f"The routing of {env.name} was not saved: {text}")
        else:
            messages.success(request, _saved_text(env, changed))
        return redirect("app-settings", app.name)
    if errors:
        context = _routing_context(app, env, posted=posted, errors=errors)
        return render(request, "apps/_routing.html", context, status=400)
    return render(request, "apps/_routing.html", _routing_context(app, env, changed=changed))


def _saved_text(env, changed) -> str:
    if not changed:
        return f"Nothing changed in the routing of {env.name}."
    return f"Saved {', '.join(changed)} of {env.name}; the router applies it in a moment."


@app_action(to=CHANGE)
def scale(request, app):
    environment = request.POST.get("environment", "production")
    raw = request.POST.get("replicas", "").strip()
    # Not a number: the service refuses it, saying the range.
    replicas = int(raw) if raw.isascii() and raw.isdigit() else raw
    deployment = service.scale(app, environment, replicas, requested_by=request.user)
    containers = f"{replicas} container{'s' if replicas != 1 else ''}"
    if deployment is None:
        return f"{environment.capitalize()} starts {containers} from its next deployment.", CHANGED
    return (
        f"Scaling {environment} to {containers} (deployment #{deployment.number}).",
        NEW_DEPLOYMENT,
    )


@app_action(to=CHANGE)
def formation(request, app):
    """The environment card's counts: `replicas` for web, `process-<type>` for the rest."""
    environment = request.POST.get("environment", "production")
    counts = {}
    for field, raw in request.POST.items():
        kind = WEB if field == "replicas" else field.removeprefix("process-")
        if field == "replicas" or field.startswith("process-"):
            raw = raw.strip()
            counts[kind] = int(raw) if raw.isascii() and raw.isdigit() else raw
    try:
        env, deployment = formation_service.set_formation(
            app, environment, counts, requested_by=request.user
        )
    except ValidationError as exc:
        raise ServiceError(" ".join(exc.messages), "invalid_formation") from None
    text = _containers_text(counts)
    if deployment is not None:
        return f"Scaling {environment} to {text} (deployment #{deployment.number}).", NEW_DEPLOYMENT
    if env.live_deployment_id:
        return f"{environment.capitalize()} already runs {text}.", CHANGED
    return f"{environment.capitalize()} starts {text} from its next deployment.", CHANGED


def _containers_text(counts: dict) -> str:
    if set(counts) == {WEB}:
        n = counts[WEB]
        return f"{n} container{'s' if n != 1 else ''}"
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())
