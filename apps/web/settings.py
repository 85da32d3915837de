"""An app's settings and env vars, and the user's API tokens.

Changed settings and env vars take effect on the next deployment; every change says so and
offers the button that starts one.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from apps.access import (
    CHANGE,
    OWN,
    READ,
    app_for,
    env_var_for,
    env_var_to_reveal,
    environment_for,
    may,
    may_touch_env_var,
)
from apps.forms import (
    SETTINGS_FIELDS,
    ApiTokenForm,
    AppSettingsForm,
    DeleteAppForm,
    EnvVarForm,
    EnvVarProtectForm,
)
from apps.models import ApiToken, App
from apps.web.domains import domains_context
from apps.web.pages import login_required
from apps.web.previews import preview_settings_context
from deployments import services
from deployments.services import ProtectedEnvVar
from deployments.services.webhooks import webhook_url


def _current_settings(app: App) -> dict:
    return {field: getattr(app, field) for field in SETTINGS_FIELDS}


def _env_context(
    app: App, env, user, form=None, saved: list[str] | None = None, refusal: str = ""
) -> dict:
    return {
        "app": app,
        "env": env,
        "vars": list(env.env_vars.all()),
        "env_form": form or EnvVarForm(),
        "saved": saved or [],
        "refusal": refusal,
        **_env_powers(app, user),
    }


def _env_powers(app: App, user) -> dict:
    """What the page offers on each var (apps.access decides; the services enforce it)."""
    return {
        "can_reveal": may_touch_env_var(user, app, protected=False, reveal=True),
        "can_protect": may_touch_env_var(user, app, protected=True),
    }


def settings_page(request, app, form=None, delete_form=None, changed=None, status=200):
    envs = list(app.environments.all())
    context = {
        "app": app,
        "form": form or AppSettingsForm(initial=_current_settings(app)),
        "changed": changed,
        "swarm_runtime": settings.PAAS_RUNTIME == "swarm",
        "env_sections": [_env_context(app, env, request.user) for env in envs],
        "delete_form": delete_form or DeleteAppForm(app=app),
        "is_owner": may(request.user, app, OWN),
        "webhook_urls": _webhook_urls(app),
        **domains_context(app),
        **preview_settings_context(app),
    }
    return render(request, "apps/settings.html", context, status=status)


def _webhook_urls(app) -> list[tuple[str, str]]:
    return [
        (label, webhook_url(app, key))
        for key, label in (("github", "GitHub"), ("gitlab", "GitLab"), ("gitea", "Gitea / Forgejo"))
    ]


@never_cache  # it shows the webhook secret to the owner: no copy in a browser or proxy cache
@login_required
def app_settings(request, name):
    app = app_for(request.user, name, to=CHANGE if request.method == "POST" else READ)
    if request.method != "POST":
        return settings_page(request, app)
    form = AppSettingsForm(data=request.POST)
    if not form.is_valid():
        return _settings_form(request, app, form, None, 400)
    changed = services.update_app(app, form.cleaned_data)
    return _settings_form(request, app, AppSettingsForm(initial=_current_settings(app)), changed)


def _settings_form(request, app, form, changed, status=200):
    if request.htmx:
        context = {
            "app": app,
            "form": form,
            "changed": changed,
            "swarm_runtime": settings.PAAS_RUNTIME == "swarm",
        }
        return render(request, "apps/_settings_form.html", context, status=status)
    return settings_page(request, app, form=form, changed=changed, status=status)


@login_required
@require_POST
def env_set(request, name, environment):
    """Add or change one variable, or many pasted as KEY=value lines."""
    app = app_for(request.user, name, to=CHANGE)
    env = environment_for(app, environment)
    form = EnvVarForm(data=request.POST)
    if not form.is_valid():
        return _env_response(request, app, env, form=form, status=400)
    values = form.values
    try:
        services.set_env_vars(
            env,
            values,
            protect=True if form.cleaned_data["protected"] else None,
            may_touch_protected=may_touch_env_var(request.user, app, protected=True),
        )
    except ProtectedEnvVar as refused:
        return _env_refused(request, app, env, refused)
    return _env_response(request, app, env, saved=sorted(values))


@login_required
@require_POST
def env_delete(request, name, environment, key):
    app = app_for(request.user, name, to=CHANGE)
    env = environment_for(app, environment)
    may_touch_protected = may_touch_env_var(request.user, app, protected=True)
    try:
        removed = services.delete_env_var(env, key, may_touch_protected=may_touch_protected)
    except ProtectedEnvVar as refused:
        return _env_refused(request, app, env, refused)
    if not removed:
        raise Http404("no such variable")
    return _env_response(request, app, env, saved=[f"{key} (removed)"])


@login_required
@require_POST
def env_protect(request, name, environment, key):
    """Mark a variable protected or not: the team's admins and owners (a developer is
    told why not, with a 403)."""
    app = app_for(request.user, name, to=CHANGE)
    env = environment_for(app, environment)
    var = env_var_for(env, key)
    form = EnvVarProtectForm(data=request.POST)
    form.is_valid()  # a lone checkbox: absent is False, nothing else to refuse
    protected = form.cleaned_data["protected"]
    try:
        services.protect_env_var(
            var, protected, may_touch_protected=may_touch_env_var(request.user, app, True)
        )
    except ProtectedEnvVar as refused:
        return _env_refused(request, app, env, refused)
    state = "protected" if protected else "not protected"
    return _env_response(request, app, env, saved=[f"{key} ({state})"])


def _env_refused(request, app, env, refused: ProtectedEnvVar):
    """403, nothing changed, the keys named (the page, or the section for htmx). The form
    comes back empty: an error page never echoes a value typed in."""
    if not request.htmx:
        messages.error(request, refused.message)
        return settings_page(request, app, status=403)
    context = _env_context(app, env, request.user, refusal=refused.message)
    return render(request, "apps/_env_vars.html", context, status=403)


def _env_response(request, app, env, form=None, saved=None, status=200):
    if not request.htmx:
        if saved:
            messages.success(request, "Saved; a redeploy is needed to apply the change.")
        else:
            messages.error(request, "The variable was not saved: " + " ".join(_errors(form)))
        return redirect("app-settings", app.name)
    context = _env_context(app, env, request.user, form=form, saved=saved)
    return render(request, "apps/_env_vars.html", context, status=status)


def _errors(form) -> list[str]:
    return [message for messages_ in form.errors.values() for message in messages_]


@never_cache
@login_required
def env_reveal(request, name, environment, key):
    """The value, for the team's developers and up, a protected one for its admins and
    owners (staff see the app but not its secrets); ?show=0 masks it again."""
    app = app_for(request.user, name, to=CHANGE)
    env = environment_for(app, environment)
    context = {"app": app, "env": env, **_env_powers(app, request.user)}
    try:
        var = env_var_to_reveal(request.user, app, env, key)
    except ProtectedEnvVar as refused:
        var = env_var_for(env, key)
        context.update(var=var, show=False, refusal=refused.message)
        return render(request, "apps/_env_value.html", context, status=403)
    context.update(var=var, show=request.GET.get("show", "1") != "0")
    return render(request, "apps/_env_value.html", context)


# --- API tokens -----------------------------------------------------------------------------


@never_cache
@login_required
def tokens(request):
    """Create (the raw token is in this one response and never again) and list tokens."""
    form = ApiTokenForm(request.user, data=request.POST if request.method == "POST" else None)
    raw, status = None, 200
    if request.method == "POST":
        raw = _issue_token(request.user, form)
        form, status = (ApiTokenForm(request.user), 200) if raw else (form, 400)
    context = {"form": form, "raw_token": raw, "tokens": _tokens_of(request.user)}
    return render(request, "apps/tokens.html", context, status=status)


def _tokens_of(user):
    return user.api_tokens.select_related("team")


def _issue_token(user, form: ApiTokenForm) -> str | None:
    """The new token's raw value, or None with the form holding why not."""
    if not form.is_valid():
        return None
    try:
        _, raw = ApiToken.issue(user, **form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    return raw


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.delete()
    if request.htmx:
        context = {"tokens": _tokens_of(request.user), "revoked": token.name}
        return render(request, "apps/_tokens_list.html", context)
    messages.success(request, f"Token “{token.name}” is revoked.")
    return redirect("settings-tokens")
