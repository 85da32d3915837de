"""/api/v1 actions on a running app: restart, stop, start, promote, rollback, redeploy, and
what to paste into a Git provider's webhook settings. Work on containers is queued: 202."""

from ninja import Router, Status

from apps.access import CHANGE, MANAGE, OWN, READ, app_for, deployment_for, may
from apps.api.auth import reveals_secrets
from apps.api.schemas import (
    ActionIn,
    AppName,
    ApprovalPendingOut,
    DeploymentOut,
    Id,
    PowerOut,
    PromoteIn,
    WebhookOut,
    answers,
)
from deployments import services
from deployments.models import Deployment
from deployments.services import promotion

router = Router(tags=["actions"])

# The body is optional: without one, an action is on production.
NO_BODY = ActionIn()
STAGING_TO_PRODUCTION = PromoteIn()


@router.post("/apps/{name}/restart", response=answers(202, DeploymentOut, 400, 404, 409))
def restart(request, name: AppName, payload: ActionIn = NO_BODY):
    """A new container from the live image: started, health-checked, switched, old retired."""
    app = app_for(request.auth, name, to=MANAGE)
    return Status(202, services.restart(app, payload.environment, requested_by=request.auth))


@router.post("/apps/{name}/stop", response=answers(202, PowerOut, 400, 404, 409))
def stop(request, name: AppName, payload: ActionIn = NO_BODY):
    services.stop(app_for(request.auth, name, to=MANAGE), payload.environment)
    return Status(202, PowerOut(environment=payload.environment, stopped=True))


@router.post("/apps/{name}/start", response=answers(202, PowerOut, 400, 404, 409))
def start(request, name: AppName, payload: ActionIn = NO_BODY):
    services.start(app_for(request.auth, name, to=MANAGE), payload.environment)
    return Status(202, PowerOut(environment=payload.environment, stopped=False))


@router.post(
    "/apps/{name}/promote",
    response=answers(202, DeploymentOut | ApprovalPendingOut, 400, 403, 404, 409),
)
def promote(request, name: AppName, payload: PromoteIn = STAGING_TO_PRODUCTION):
    """One stage's live image to the next stage of the pipeline (no body: staging →
    production), through the step's gates: either the deployment, or a request waiting
    for a second person's approval."""
    app = app_for(request.auth, name, to=CHANGE)
    outcome = promotion.request_promotion(app, request.auth, payload.source, payload.target)
    if isinstance(outcome, Deployment):
        return Status(202, outcome)
    return Status(202, {"approval": outcome})


@router.post(
    "/apps/{name}/deployments/{int:number}/rollback",
    response=answers(202, DeploymentOut, 404, 409),
)
def rollback(request, name: AppName, number: Id):
    """This deployment's image back live in its environment; no build."""
    target = deployment_for(app_for(request.auth, name, to=CHANGE), number)
    return Status(202, services.rollback(target, requested_by=request.auth))


@router.post(
    "/apps/{name}/deployments/{int:number}/redeploy",
    response=answers(202, DeploymentOut, 404, 409),
)
def redeploy(request, name: AppName, number: Id):
    """Build this deployment's source again (the same commit, or the same archive)."""
    target = deployment_for(app_for(request.auth, name, to=CHANGE), number)
    return Status(202, services.redeploy(target, requested_by=request.auth))


@router.get("/apps/{name}/webhook", response=answers(200, WebhookOut, 404))
def webhook(request, name: AppName):
    """What to paste into a provider's webhook settings (the secret is for the team's admins
    and owners, as on the settings page)."""
    app = app_for(request.auth, name, to=READ)
    return WebhookOut.of(app, reveal=reveals_secrets(request) and may(request.auth, app, OWN))
