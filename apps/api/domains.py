"""/api/v1 custom domains and volumes of an app's environments."""

from django.shortcuts import get_object_or_404
from ninja import Router, Status

from apps.access import CHANGE, READ, app_for
from apps.api.schemas import (
    AppName,
    DomainIn,
    DomainListOut,
    DomainOut,
    DomainRemovedOut,
    HostName,
    Id,
    OnlyTrue,
    VolumeAddedOut,
    VolumeIn,
    VolumeListOut,
    VolumeRemovedOut,
    answers,
)
from apps.models import Domain, Volume
from deployments.services import domains as service

router = Router(tags=["domains and volumes"])


@router.get("/apps/{name}/domains", response=answers(200, DomainListOut, 404))
def list_domains(request, name: AppName):
    app = app_for(request.auth, name, to=READ)
    return {"domains": Domain.objects.filter(environment__app=app).select_related("environment")}


@router.post("/apps/{name}/domains", response=answers(201, DomainOut, 400, 404, 409))
def add_domain(request, name: AppName, payload: DomainIn):
    """Claimed, not yet routed: the answer says where its token is served; verify it next."""
    app = app_for(request.auth, name, to=CHANGE)
    return Status(201, service.add_domain(app, payload.environment, payload.hostname))


@router.post(
    "/apps/{name}/domains/{hostname}/verify", response=answers(200, DomainOut, 400, 404, 409)
)
def verify_domain(request, name: AppName, hostname: HostName):
    """Fetch the domain's check URL; 200 once its token came back (it is routed from then
    on), 409 with what came instead."""
    return service.verify_domain(app_for(request.auth, name, to=CHANGE), hostname)


@router.delete("/apps/{name}/domains/{hostname}", response=answers(200, DomainRemovedOut, 400, 404))
def remove_domain(request, name: AppName, hostname: HostName):
    service.remove_domain(app_for(request.auth, name, to=CHANGE), hostname)
    return DomainRemovedOut(hostname=hostname)


@router.get("/apps/{name}/volumes", response=answers(200, VolumeListOut, 404))
def list_volumes(request, name: AppName):
    """With their size on disk, when the engine can tell."""
    app = app_for(request.auth, name, to=READ)
    volumes = list(Volume.objects.filter(environment__app=app).select_related("environment__app"))
    return VolumeListOut.of(volumes, service.volume_sizes(volumes))


@router.post("/apps/{name}/volumes", response=answers(201, VolumeAddedOut, 400, 404, 409))
def add_volume(request, name: AppName, payload: VolumeIn):
    """Mounted from the next deployment on."""
    app = app_for(request.auth, name, to=CHANGE)
    volume = service.add_volume(app, payload.environment, payload.name, payload.mount_path)
    return Status(201, volume)


@router.delete("/apps/{name}/volumes/{int:volume_id}", response=answers(200, VolumeRemovedOut, 404))
def remove_volume(request, name: AppName, volume_id: Id, delete_data: OnlyTrue = False):
    """No longer mounted from the next deployment on; ?delete_data=true deletes its data."""
    app = app_for(request.auth, name, to=CHANGE)
    volume = get_object_or_404(
        Volume.objects.select_related("environment__app"), pk=volume_id, environment__app=app
    )
    deleted = service.remove_volume(volume, delete_data=delete_data)
    return VolumeRemovedOut(id=volume_id, data_deleted=deleted)
