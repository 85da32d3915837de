"""Custom domains and volumes: settings of an environment that the router or the next
container picks up."""

import hmac

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.models import App, Domain, Volume
from apps.validators import validate_custom_domain, validate_volume
from deployments import jobs, wiring
from deployments.adapters import domain_check
from deployments.adapters.runtime import RuntimeBackendError
from deployments.services import Conflict, ServiceError, environment_named
from deployments.services.notifications import TargetRefused, internal_reason, resolve
from deployments.services.quotas import check_quota

# --- domains ------------------------------------------------------------------------------


class DomainNotVerified(ServiceError):
    status = 409


def add_domain(app: App, environment_name: str, hostname: str) -> Domain:
    """Claim hostname for the environment. It is routed once verified (verify_domain); until
    then the router answers only its check path, with its token."""
    environment = environment_named(app, environment_name)
    host = _claimable(hostname)
    limit = settings.PAAS_MAX_DOMAINS_PER_APP
    try:
        with transaction.atomic():
            check_quota(app.owner, "domains")
            App.objects.select_for_update().filter(pk=app.pk).first()  # counts one at a time
            if Domain.objects.filter(environment__app=app).count() >= limit:
                raise Conflict(
                    f"An app may have at most {limit} custom domains.", "too_many_domains"
                )
            domain = Domain.objects.create(environment=environment, hostname=host)
            jobs.sync_routes()
    except IntegrityError:
        raise Conflict(f"{host} is already used by an app.", "domain_taken") from None
    return domain


def _claimable(hostname: str) -> str:
    """The host name, lowercased, if it is a name an app may claim at all."""
    try:
        host = validate_custom_domain(hostname, settings.PAAS_DOMAIN)
    except ValidationError as exc:
        raise ValidationError({"hostname": exc.messages}) from None
    if host == settings.PAAS_PUBLIC_HOST.lower():
        raise ValidationError({"hostname": ["This is the dashboard's own host name."]})
    return host


def verify_domain(app: App, hostname: str) -> Domain:
    """Fetch the domain's check path through its own DNS (or PAAS_DOMAIN_CHECK_ADDRESS) and
    route it when its token comes back. Raises DomainNotVerified saying what came instead."""
    domain = _domain_of(app, hostname)
    if domain.is_verified:
        return domain
    address = settings.PAAS_DOMAIN_CHECK_ADDRESS or _public_address_of(domain.hostname)
    try:
        answer = domain_check.fetch_token(
            address, domain.hostname, domain.check_path, settings.PAAS_DOMAIN_CHECK_TIMEOUT
        )
    except domain_check.CheckFailed as exc:
        raise DomainNotVerified(f"Not verified: {exc}.", "domain_not_verified") from None
    if not hmac.compare_digest(answer.encode(), domain.token.encode()):
        raise DomainNotVerified(
            f"Not verified: {domain.check_url} does not answer this domain's token; point the "
            "name's DNS at this server first.",
            "domain_not_verified",
        )
    with transaction.atomic():
        Domain.objects.filter(pk=domain.pk).update(verified_at=timezone.now())
        jobs.sync_routes()
    domain.refresh_from_db()
    return domain


def _public_address_of(hostname: str) -> str:
    """The domain itself, if it resolves to public addresses only: the check must not make
    Slipway send requests into its own network."""
    try:
        addresses = resolve(hostname, 80)
    except TargetRefused:
        raise DomainNotVerified(
            f"Not verified: {hostname} does not resolve yet.", "domain_not_verified"
        ) from None
    for address in addresses:
        why = internal_reason(address)
        if why:
            raise DomainNotVerified(
                f"Not verified: {hostname} resolves to {address}, a {why} address.",
                "domain_not_verified",
            )
    return hostname


def _domain_of(app: App, hostname: str) -> Domain:
    domain = Domain.objects.filter(environment__app=app, hostname=hostname.lower()).first()
    if domain is None:
        raise ServiceError(f"{hostname} is not a domain of {app.name}.", "unknown_domain")
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
    """Sizes by volume pk (None: unknown), read once per page from the engine."""
    try:
        by_name = wiring.runtime().volume_sizes([volume.docker_name for volume in volumes])
    except RuntimeBackendError:
        return {volume.pk: None for volume in volumes}
    return {volume.pk: by_name.get(volume.docker_name) for volume in volumes}
