"""The dashboard's preview settings card (on the settings page): previews on or off, the
template environment, the preview database, forks, and the env vars left out."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.access import CHANGE, app_for
from apps.models import App
from apps.web.pages import login_required
from deployments.services import previews as service

CHECKBOXES = ("previews_enabled", "previews_allow_forks")


def preview_settings_context(app: App, saved: bool = False, errors=None) -> dict:
    template = app.environments.filter(name=app.preview_template).first()
    return {
        "app": app,
        "preview_templates": [
            env for env in app.environments.all() if not env.name.startswith("pr-")
        ],
        "template_vars": list(template.env_vars.all()) if template else [],
        "preview_saved": saved,
        "preview_errors": errors or [],
    }


@login_required
@require_POST
def preview_settings(request, name):
    app = app_for(request.user, name, to=CHANGE)
    data = {field: field in request.POST for field in CHECKBOXES}
    data["preview_template"] = request.POST.get("preview_template", app.preview_template)
    data["preview_database"] = request.POST.get("preview_database", app.preview_database)
    try:
        service.update_settings(app, data)
        template = app.environments.get(name=app.preview_template)
        service.set_not_for_previews(template, request.POST.getlist("not_for_previews"))
    except ValidationError as error:
        return _answer(request, app, errors=error.messages, status=400)
    return _answer(request, app, saved=True)


def _answer(request, app, saved=False, errors=None, status=200):
    if not request.htmx:
        if errors:
            messages.error(request, "Preview settings not saved: " + " ".join(errors))
        else:
            messages.success(request, "Preview settings saved.")
        return redirect("app-settings", app.name)
    context = preview_settings_context(app, saved, errors)
    return render(request, "apps/_preview_settings.html", context, status=status)
