"""Custom domains and volumes: settings of an environment that the router or the next
container picks up."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.models import App, Domain, Volume
from apps.validators import validate_custom_domain, validate_volume
from deployments import jobs, wiring
from deployments.adapters.runtime import RuntimeBackendError
from deployments.services import Conflict, ServiceError, environment_named
from deployments.services.quotas import check_quota

# --- domains ------------------------------------------------------------------------------


def add_domain(app: App, environment_name: str, hostname: str) -> Domain:
    """Answer on hostname too; the route changes at once when something is live."""
    environment = environment_named(app, environment_name)
    try:
        host = validate_custom_domain(hostname, settings.PAAS_DOMAIN)
    except ValidationError as exc:
        raise ValidationError({"hostname": exc.messages}) from None
    try:
        with transaction.atomic():
            check_quota(app.owner, "domains")
            domain = Domain.objects.create(environment=environment, hostname=host)
            jobs.sync_routes()
    except IntegrityError:
        raise Conflict(f"{host} is already used by an app.", "domain_taken") from None
    return domain


def remove_domain(app: App, hostname: str) -> None:
    deleted, _ = Domain.objects.filter(environment__app=app, hostname=hostname.lower()).delete()
    if not deleted:
        raise ServiceError(f"{hostname} is not a domain of {app.name}.", "unknown_domain")
    jobs.sync_routes()


# --- volumes ------------------------------------------------------------------------------


def add_volume(app: App, environment_name: str, name: str, mount_path: str) -> Volume:
    """Mounted from the next deployment on (the answer says a redeploy is needed)."""
    environment = environment_named(app, environment_name)
    validate_volume(name, mount_path)
    try:
        with transaction.atomic():
            check_quota(app.owner, "volumes")
            return Volume.objects.create(environment=environment, name=name, mount_path=mount_path)
    except IntegrityError:
        raise Conflict(
            "That name or mount path is already used in this environment.", "volume_taken"
        ) from None


def remove_volume(volume: Volume, delete_data: bool = False) -> bool:
    """Stop mounting it from the next deployment; its data goes only when asked, and only
    once no container uses it any more (returns whether the data was deleted)."""
    name = volume.docker_name
    volume.delete()
    if not delete_data:
        return False
    jobs.remove_volume(name)
    return True


def volume_sizes(volumes) -> dict[int, int | None]:
    runtime = wiring.runtime()
    sizes = {}
    for volume in volumes:
        try:
            sizes[volume.pk] = runtime.volume_size(volume.docker_name)
        except RuntimeBackendError:
            sizes[volume.pk] = None
    return sizes
