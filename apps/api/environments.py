"""/api/v1 an app's environments as rows (list, create with its own host name
<app>-<env>.<domain>, delete), an environment's router settings (visibility, basic auth,
maintenance, the request body limit), which the router applies at once, and scaling its
web containers."""

from ninja import Router, Status

from apps.access import CHANGE, READ, app_for, environment_for
from apps.api.schemas import (
    AppName,
    DeploymentOut,
    EnvironmentChoice,
    EnvironmentDeletingOut,
    EnvironmentIn,
    EnvironmentItemOut,
    EnvironmentListOut,
    EnvironmentOut,
    EnvironmentPatchIn,
    EnvironmentUpdatedOut,
    FormationIn,
    FormationOut,
    ScaleIn,
    ScaleSavedOut,
    answers,
)
from deployments.services import environment_named, formation, routing
from deployments.services import environments as service

router = Router(tags=["environments"])

# The body is optional: without one, nothing changes.
NO_PATCH_BODY = EnvironmentPatchIn()


@router.get("/apps/{name}/environments", response=answers(200, EnvironmentListOut, 404))
def list_environments(request, name: AppName):
    """Production first, then the others in the order they were made."""
    app = app_for(request.auth, name, to=READ)
    return {"environments": app.environments.select_related("app", "live_deployment")}


@router.post("/apps/{name}/environments", response=answers(201, EnvironmentItemOut, 400, 404, 409))
def create_environment(request, name: AppName, payload: EnvironmentIn):
    """Empty (no env vars, add-ons, volumes or domains) unless copy_env_from names one to
    copy the env vars of; 409 host_taken when its host name is another app's."""
    app = app_for(request.auth, name, to=CHANGE)
    return Status(201, service.create_environment(app, payload.name, payload.copy_env_from))


@router.delete(
    "/apps/{name}/environments/{environment}",
    response=answers(202, EnvironmentDeletingOut, 404, 409),
)
def delete_environment(request, name: AppName, environment: EnvironmentChoice):
    """202 while a job removes its containers, route, add-ons and volumes (with their data);
    409 for production, and while a deployment to it is pending or running."""
    env = environment_for(app_for(request.auth, name, to=CHANGE), environment)
    service.delete_environment(env)
    return Status(202, EnvironmentDeletingOut(name=env.name, status="deleting"))


@router.get("/apps/{name}/environments/{environment}", response=answers(200, EnvironmentOut, 404))
def get_environment(request, name: AppName, environment: EnvironmentChoice):
    """Its router settings and replicas (the basic-auth password is never returned)."""
    return environment_for(app_for(request.auth, name, to=READ), environment)


@router.patch(
    "/apps/{name}/environments/{environment}",
    response=answers(200, EnvironmentUpdatedOut, 400, 404),
)
def change_environment(
    request,
    name: AppName,
    environment: EnvironmentChoice,
    payload: EnvironmentPatchIn = NO_PATCH_BODY,
):
    """Only the fields given change; the answer lists what changed. Protected needs a user
    name and a password (a stored one is kept while the user name stays); public drops it."""
    env = environment_for(app_for(request.auth, name, to=CHANGE), environment)
    changed = routing.update_routing(env, payload.dict(exclude_unset=True))
    return EnvironmentUpdatedOut.of(env, changed)


@router.post(
    "/apps/{name}/scale",
    response={**answers(202, DeploymentOut, 400, 404, 409, 503), 200: ScaleSavedOut},
)
def scale(request, name: AppName, payload: ScaleIn):
    """Run that many web containers: 202 with a deployment of the live image, or 200 with
    no deployment when nothing is live (the next deployment starts that many)."""
    app = app_for(request.auth, name, to=CHANGE)
    deployment = routing.scale(app, payload.environment, payload.replicas, request.auth)
    if deployment is None:
        return ScaleSavedOut(environment=payload.environment, replicas=payload.replicas)
    return Status(202, deployment)


@router.get("/apps/{name}/formation", response=answers(200, FormationOut, 400, 404))
def get_formation(request, name: AppName, environment: EnvironmentChoice = "production"):
    """Each process type's count and command (the live deployment's types)."""
    env = environment_named(app_for(request.auth, name, to=READ), environment)
    return formation.formation(env)


@router.put(
    "/apps/{name}/formation",
    response={**answers(202, FormationOut, 400, 404, 409, 503), 200: FormationOut},
)
def change_formation(request, name: AppName, payload: FormationIn):
    """200 once saved (nothing live, or nothing changed); 202 while a deployment of the live
    image applies it (`deployment` is its number; GET shows the new counts at once)."""
    app = app_for(request.auth, name, to=CHANGE)
    env, deployment = formation.set_formation(
        app, payload.environment, payload.processes, request.auth
    )
    body = formation.formation(env)
    if deployment is None:
        return body
    return Status(202, {**body, "deployment": deployment.number})
