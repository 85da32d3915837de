"""Which repositories users may deploy from.

The git adapter checks the URL's text (schemes, hosts, no option-like parts); here its host
is resolved too, and a host on loopback, a private range, link-local or any other
non-public address is refused, with the same address rules as notification targets: a
fetch from there would let a user read the platform's own network into a build.

A host that does not resolve is let through: the fetch then fails with a clear error, and
an offline test suite can still name https://example.com repositories.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError

from deployments.adapters.sources import repository_host, validate_repository_url
from deployments.services.notifications import TargetRefused, internal_reason, resolve


def validate_repository(url: str) -> str:
    """The normalized URL of a repository a user may deploy, or raise ValidationError."""
    url = validate_repository_url(url)
    if not settings.PAAS_ALLOW_LOCAL_REPOSITORIES:
        _refuse_internal_host(repository_host(url))
    return url


def _refuse_internal_host(host: str) -> None:
    if not host:
        return
    try:
        addresses = resolve(host.strip("[]"), 443)
    except TargetRefused:
        return
    for address in addresses:
        why = internal_reason(address)
        if why:
            raise ValidationError(
                f"{host} resolves to {address}, a {why} address; repositories are fetched "
                "from public addresses only.",
                code="private_address",
            )
