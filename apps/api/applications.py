"""/api/v1 apps, their deployments and logs, and deploying an uploaded archive.

Every app lookup goes through apps.access, which answers 404 for an app the caller may not
see; staff see every app here."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from ninja import Router, Status

from apps.access import (
    ADMIN,
    CHANGE,
    MANAGE,
    READ,
    app_for,
    deployment_for,
    environment_for,
    may_touch_env_var,
)
from apps.api.schemas import (
    AppCreateIn,
    AppDeletingOut,
    AppListOut,
    AppName,
    AppOut,
    AppPatchIn,
    AppUpdatedOut,
    DeployIn,
    DeploymentListOut,
    DeploymentLogOut,
    DeploymentOut,
    EnvironmentChoice,
    Id,
    QueuedOut,
    RuntimeLogOut,
    WholeNumber,
    answers,
)
from apps.forms import AppCreateForm, clean_env_payload, clean_settings_patch
from apps.models import App
from deployments import services
from deployments.models import LogLine
from deployments.services import archives, teams
from deployments.services.log_store import LogFilter

router = Router(tags=["apps"])

# These bodies are optional: no body deploys to production, and changes nothing.
NO_DEPLOY_BODY, NO_PATCH_BODY = DeployIn(), AppPatchIn()

DEPLOYMENTS_LISTED = 100
DEPLOYMENT_LOG_PAGE, DEPLOYMENT_LOG_MAX = 500, 2000
RUNTIME_LOG_PAGE, RUNTIME_LOG_MAX = 200, 1000
# Multipart framing around the archive itself.
UPLOAD_OVERHEAD = 64 * 1024

ARCHIVE_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["archive"],
                "properties": {
                    "archive": {"type": "string", "format": "binary"},
                    "environment": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,29}$"},
                },
            }
        }
    },
}


@router.get("/apps", response=answers(200, AppListOut))
def list_apps(request):
    return {"apps": App.objects.visible_to(request.auth).prefetch_related("environments")}


@router.post("/apps", response=answers(201, AppOut, 400, 409))
def create_app(request, payload: AppCreateIn):
    form = AppCreateForm(data=payload.form_data())
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    env = clean_env_payload(payload.env)
    team = teams.team_to_deploy_in(request.auth, payload.team)
    app = services.create_app(
        request.auth,
        form.cleaned_data,
        env,
        deploy=payload.deploy,
        staging=payload.staging,
        team=team,
    )
    return Status(201, app)


@router.get("/apps/{name}", response=answers(200, AppOut, 404))
def get_app(request, name: AppName):
    return app_for(request.auth, name, to=READ)


@router.patch("/apps/{name}", response=answers(200, AppUpdatedOut, 400, 403, 404))
def change_app(request, name: AppName, payload: AppPatchIn = NO_PATCH_BODY):
    """Settings take effect on the next deployment: the answer lists what changed. A
    protected env var among those given, for a developer: 403 protected_env_var, nothing
    changed (the settings neither)."""
    app = app_for(request.auth, name, to=CHANGE)
    settings, env = clean_settings_patch(app, payload.dict(exclude_unset=True))
    may_touch_protected = may_touch_env_var(request.auth, app, protected=True)
    with transaction.atomic():
        changed = services.update_app(app, settings)
        for env_name, values in env.items():
            environment = services.environment_named(app, env_name)
            services.set_env_vars(environment, values, may_touch_protected=may_touch_protected)
            changed.append(f"env.{env_name}")
    return AppUpdatedOut.of(app, changed)


@router.delete("/apps/{name}", response=answers(202, AppDeletingOut, 404, 409))
def delete_app(request, name: AppName):
    """Containers, networks and routes go in a worker; the app is gone once it is done."""
    return Status(202, services.request_cleanup(app_for(request.auth, name, to=ADMIN)))


@router.get("/apps/{name}/deployments", response=answers(200, DeploymentListOut, 404))
def list_deployments(request, name: AppName):
    app = app_for(request.auth, name, to=READ)
    return {"deployments": app.deployments.select_related("environment")[:DEPLOYMENTS_LISTED]}


@router.post("/apps/{name}/deployments", response=answers(202, QueuedOut, 400, 404, 409))
def deploy(request, name: AppName, payload: DeployIn = NO_DEPLOY_BODY):
    app = app_for(request.auth, name, to=CHANGE)
    deployment = services.queue_deployment(app, payload.environment, requested_by=request.auth)
    return Status(202, deployment)


@router.get("/apps/{name}/deployments/{int:number}", response=answers(200, DeploymentOut, 404))
def get_deployment(request, name: AppName, number: Id):
    return deployment_for(app_for(request.auth, name, to=READ), number)


@router.post(
    "/apps/{name}/deployments/{int:number}/cancel", response=answers(200, DeploymentOut, 404, 409)
)
def cancel_deployment(request, name: AppName, number: Id):
    deployment = deployment_for(app_for(request.auth, name, to=MANAGE), number)
    return services.cancel_deployment(deployment)


@router.get(
    "/apps/{name}/deployments/{int:number}/logs",
    response=answers(200, DeploymentLogOut, 400, 404),
)
def deployment_log(
    request,
    name: AppName,
    number: Id,
    after: WholeNumber = 0,
    limit: WholeNumber = DEPLOYMENT_LOG_PAGE,
):
    """The build and deploy log after a cursor; `final` once nothing more will come."""
    deployment = deployment_for(app_for(request.auth, name, to=READ), number)
    page = _page(limit, DEPLOYMENT_LOG_PAGE, DEPLOYMENT_LOG_MAX)
    lines = LogLine.page(deployment, after=after, limit=page)
    return DeploymentLogOut.page(deployment, lines, after)


@router.get("/apps/{name}/logs", response=answers(200, RuntimeLogOut, 400, 404, 503))
def runtime_log(
    request,
    response: HttpResponse,
    name: AppName,
    environment: EnvironmentChoice = "production",
    since: WholeNumber = 0,
    limit: WholeNumber = RUNTIME_LOG_PAGE,
    process: str = "",
    replica: WholeNumber | None = None,
    deployment: WholeNumber | None = None,
    stream: str = "",
    search: str = "",
):
    """What the environment's containers printed (every process type, replica and
    deployment, kept after they are retired): the newest page, or the lines after the
    nanosecond cursor `since`; X-Last-Log-Nano is the next cursor. Filters narrow it."""
    app = app_for(request.auth, name, to=CHANGE)
    page = _page(limit, RUNTIME_LOG_PAGE, RUNTIME_LOG_MAX)
    filters = LogFilter(process, replica, deployment, stream, search)
    lines = services.runtime_logs(
        environment_for(app, environment), since_ns=since, limit=page, filters=filters
    )
    body = RuntimeLogOut.page(lines, since)
    response["X-Last-Log-Nano"] = str(body.next)
    return body


@router.post(
    "/apps/{name}/archives",
    response=answers(202, QueuedOut, 400, 404, 409, 413),
    openapi_extra={"requestBody": ARCHIVE_UPLOAD},
)
def deploy_archive(request, name: AppName):
    """Deploy an uploaded .tar.gz: multipart field `archive`, optional `environment`.

    The upload is read here from request.FILES rather than declared as a ninja File: the
    declared length is refused first, before Django spools a too-large upload to disk."""
    app = app_for(request.auth, name, to=CHANGE)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > archives.archive_limits()[0] + UPLOAD_OVERHEAD:
        raise archives.TooLarge("The archive is too large.", "archive_too_large")
    upload = request.FILES.get("archive")
    if upload is None:
        raise ValidationError({"archive": ["Attach a .tar.gz file in the “archive” field."]})
    environment = request.POST.get("environment") or "production"
    return Status(202, archives.deploy_archive(app, environment, upload, request.auth))


def _page(asked: int, default: int, most: int) -> int:
    # 0 (or nothing) asks for the default page.
    return min(asked or default, most)
