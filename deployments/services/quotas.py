"""Per-user quotas: how many apps, custom domains, volumes and attached add-ons one user's
apps may have, so one account cannot exhaust the host. Staff are exempt (they run it).

A check runs inside the creating transaction and first locks the owner's user row, so two
creations at the same moment cannot both take the last slot; a refusal creates nothing.
"""

from django.conf import settings
from django.contrib.auth import get_user_model

from apps.models import AddOn, App, Domain, Volume
from apps.models.addons import AddOnStatus

# The package, not its names: its __init__ (create_app) imports this module while it loads.
from deployments import services

# kind: (setting, what the user owns of it, its name in the refusal)
QUOTAS = {
    "apps": ("PAAS_MAX_APPS_PER_USER", lambda user: App.objects.filter(owner=user), "apps"),
    "domains": (
        "PAAS_MAX_DOMAINS_PER_USER",
        lambda user: Domain.objects.filter(environment__app__owner=user),
        "custom domains",
    ),
    "volumes": (
        "PAAS_MAX_VOLUMES_PER_USER",
        lambda user: Volume.objects.filter(environment__app__owner=user),
        "volumes",
    ),
    "addons": (
        "PAAS_MAX_ADDONS_PER_USER",
        lambda user: AddOn.objects.filter(environment__app__owner=user).exclude(
            status__in=(AddOnStatus.DETACHED, AddOnStatus.DELETING)
        ),
        "attached add-ons",
    ),
}


def check_quota(owner, kind: str) -> None:
    """Raise Conflict (409, quota_exceeded) when `owner` already has their most of `kind`.
    Call it inside the transaction that creates the row."""
    if owner.is_staff:
        return
    setting, owned, noun = QUOTAS[kind]
    limit = getattr(settings, setting)
    # NO KEY UPDATE: counts one at a time, without blocking inserts that reference the user.
    get_user_model().objects.select_for_update(no_key=True).filter(pk=owner.pk).exists()
    count = owned(owner).count()
    if count >= limit:
        raise services.Conflict(
            f"You have {count} {noun}, the most one user may have ({setting}={limit}). "
            "Delete one first, or ask an operator to raise the limit.",
            "quota_exceeded",
        )
