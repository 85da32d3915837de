"""/api/v1 log drains of an app. Owner only: a drain receives everything the app prints,
secrets included, so even staff get 404 for another user's app here."""

from django.shortcuts import get_object_or_404
from ninja import Router, Status

from apps.access import OWN, app_for
from apps.api.schemas import AppName, DrainIn, DrainListOut, DrainWithSecretOut, Id, answers
from deployments.services import log_drains

router = Router(tags=["log drains"])


@router.get("/apps/{name}/drains", response=answers(200, DrainListOut, 404))
def list_drains(request, name: AppName):
    app = app_for(request.auth, name, to=OWN)
    return {"drains": app.log_drains.all()}


@router.post("/apps/{name}/drains", response=answers(201, DrainWithSecretOut, 400, 404, 409))
def add_drain(request, name: AppName, payload: DrainIn):
    """The only answer that carries an HTTPS drain's signing secret."""
    app = app_for(request.auth, name, to=OWN)
    return Status(201, log_drains.add_drain(app, payload.url))


@router.delete("/apps/{name}/drains/{int:drain_id}", response=answers(204, None, 404))
def remove_drain(request, name: AppName, drain_id: Id):
    app = app_for(request.auth, name, to=OWN)
    drain = get_object_or_404(app.log_drains, pk=drain_id)
    log_drains.remove_drain(app, drain.pk)
    return Status(204, None)
