"""/api/v1 custom domains and volumes of an app's environments."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from apps.access import app_for
from apps.api.auth import api_view
from apps.models import Domain, Volume
from deployments.services import domains as service


def domain_json(domain: Domain) -> dict:
    return {"hostname": domain.hostname, "environment": domain.environment.name}


def volume_json(volume: Volume, size=None) -> dict:
    return {
        "id": volume.pk,
        "name": volume.name,
        "mount_path": volume.mount_path,
        "environment": volume.environment.name,
        "docker_volume": volume.docker_name,
        "size": size,
    }


@api_view(["GET", "POST"])
def domains_collection(request, name):
    app = app_for(request.user, name)
    if request.method == "POST":
        body = request.json
        domain = service.add_domain(
            app, body.get("environment", "production"), str(body.get("hostname", ""))
        )
        return JsonResponse(domain_json(domain), status=201)
    rows = Domain.objects.filter(environment__app=app).select_related("environment")
    return JsonResponse({"domains": [domain_json(d) for d in rows]})


@api_view(["DELETE"])
def domain_detail(request, name, hostname):
    app = app_for(request.user, name)
    service.remove_domain(app, hostname)
    return JsonResponse({"hostname": hostname, "deleted": True})


@api_view(["GET", "POST"])
def volumes_collection(request, name):
    app = app_for(request.user, name)
    if request.method == "POST":
        body = request.json
        volume = service.add_volume(
            app,
            body.get("environment", "production"),
            str(body.get("name", "")),
            str(body.get("mount_path", "")),
        )
        return JsonResponse({**volume_json(volume), "redeploy_needed": True}, status=201)
    volumes = list(Volume.objects.filter(environment__app=app).select_related("environment__app"))
    sizes = service.volume_sizes(volumes)
    return JsonResponse({"volumes": [volume_json(v, sizes.get(v.pk)) for v in volumes]})


@api_view(["DELETE"])
def volume_detail(request, name, volume_id):
    app = app_for(request.user, name)
    volume = get_object_or_404(
        Volume.objects.select_related("environment__app"), pk=volume_id, environment__app=app
    )
    deleted = service.remove_volume(volume, delete_data=request.GET.get("delete_data") == "true")
    return JsonResponse({"id": volume_id, "data_deleted": deleted, "redeploy_needed": True})
