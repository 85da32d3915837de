"""/api/v1 an app's preview environments: the open ones (one per pull request, with its
link, head commit, status and URL) and the settings that make them."""

from ninja import Router

from apps.access import CHANGE, READ, app_for
from apps.api.schemas import AppName, PreviewListOut, PreviewSettingsIn, answers
from deployments.services import previews as service

router = Router(tags=["previews"])

# The API's names for the App fields the settings live in.
FIELDS = {
    "enabled": "previews_enabled",
    "template": "preview_template",
    "database": "preview_database",
    "allow_forks": "previews_allow_forks",
}


@router.get("/apps/{name}/previews", response=answers(200, PreviewListOut, 404))
def list_previews(request, name: AppName):
    app = app_for(request.auth, name, to=READ)
    return _listing(app)


@router.put("/apps/{name}/previews", response=answers(200, PreviewListOut, 400, 404))
def change_previews(request, name: AppName, payload: PreviewSettingsIn):
    """Change the settings given (not_for_previews: exactly these of the template's env
    vars are left out); answers the listing with the settings now in force."""
    app = app_for(request.auth, name, to=CHANGE)
    given = payload.dict(exclude_none=True)
    keys = given.pop("not_for_previews", None)
    service.update_settings(app, {FIELDS[field]: value for field, value in given.items()})
    if keys is not None:
        template = app.environments.filter(name=app.preview_template).first()
        service.set_not_for_previews(template or app.environment("production"), keys)
    return _listing(app)


def _listing(app) -> dict:
    return {"settings": app, "previews": app.open_previews}
