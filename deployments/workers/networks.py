"""Each app's Docker network, on a subnet of its own cut from PAAS_NETWORK_POOL.

The engine's default address pools hold about 30 networks; Slipway hands each app a
/PAAS_NETWORK_PREFIX of its own pool instead (256 with the defaults). The subnet is kept in
`App.subnet` (unique), picked lowest first among those no other app holds and no network on
the engine overlaps, whoever made it: another installation on this host, say.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from ipaddress import IPv4Network

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from apps.models import App
from deployments.adapters.runtime import NetworkPoolExhausted, RuntimeBackend, SubnetTaken

logger = logging.getLogger(__name__)

# How often a network is created again on a fresh subnet when the engine says another
# network took the app's one meanwhile (another installation sharing the pool).
CREATE_ATTEMPTS = 3


def ensure_app_network(app: App, runtime: RuntimeBackend) -> str:
    """Make sure the app's network exists, with a subnet from the pool; its id."""
    if runtime.network_subnet(app.network) is not None:
        # Made already, maybe before subnets came from the pool: it keeps the one it has.
        return runtime.ensure_network(app.network, app.resource_labels)
    attempts = 1
    while True:
        if not app.subnet:
            allocate_subnet(app, runtime)
        try:
            return runtime.ensure_network(app.network, app.resource_labels, app.subnet)
        except SubnetTaken:
            if attempts >= CREATE_ATTEMPTS:
                raise
            attempts += 1
            logger.warning("subnet %s of app %s is taken on the engine: moving", app.subnet, app)
            App.objects.filter(pk=app.pk, subnet=app.subnet).update(subnet="")
            app.subnet = ""


def build_network_name() -> str:
    """The network RUN steps run on. An underscore, which no app name holds, keeps it apart
    from every app's `<instance>-<name>`."""
    return f"{settings.PAAS_INSTANCE}_build"


def ensure_build_network(runtime: RuntimeBackend) -> str:
    """Make sure the build network exists on a subnet of the pool (so the egress firewall
    covers builds as it covers apps); its name."""
    name = build_network_name()
    labels = {"slipway.instance": settings.PAAS_INSTANCE, "slipway.role": "build"}
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        if runtime.network_subnet(name) is not None:
            return name
        try:
            runtime.ensure_network(name, labels, str(_free_subnet(runtime)))
            return name
        except SubnetTaken:
            if attempt == CREATE_ATTEMPTS:
                raise
            logger.warning("the build network's subnet was taken on the engine: moving")
    return name


def _free_subnet(runtime: RuntimeBackend) -> IPv4Network:
    """The highest piece of the pool no app holds and no network of this engine overlaps.
    Apps take theirs lowest first: a build node's build network, which the manager's engine
    does not see, meets an app's overlay only once the pool is full. An app that picked the
    same one meanwhile gets SubnetTaken from the engine and moves on."""
    pool, prefix = network_pool()
    held = App.objects.exclude(subnet="").values_list("subnet", flat=True)
    blocked = [*_parse(held), *_parse(runtime.used_subnets())]
    candidate = lowest_free(pool, prefix, blocked, from_top=True)
    if candidate is None:
        raise NetworkPoolExhausted(
            f"no free /{prefix} left in PAAS_NETWORK_POOL {pool} for the build network. Set a"
            " larger PAAS_NETWORK_POOL (or a longer PAAS_NETWORK_PREFIX) and restart Slipway."
        )
    return candidate


def allocate_subnet(app: App, runtime: RuntimeBackend) -> str:
    """Give the app the lowest free subnet of the pool (or the one another worker just gave it)."""
    pool, prefix = network_pool()
    lost: list[IPv4Network] = []  # taken by another app between our read and our update
    while not app.subnet:
        held = App.objects.exclude(pk=app.pk).exclude(subnet="").values_list("subnet", flat=True)
        blocked = [*_parse(held), *_parse(runtime.used_subnets()), *lost]
        candidate = lowest_free(pool, prefix, blocked)
        if candidate is None:
            raise NetworkPoolExhausted(
                f"no free /{prefix} left in PAAS_NETWORK_POOL {pool}: every one is held by an"
                " app or overlaps a Docker network. Set a larger PAAS_NETWORK_POOL (or a longer"
                " PAAS_NETWORK_PREFIX) and restart Slipway."
            )
        try:
            with transaction.atomic():
                saved = App.objects.filter(pk=app.pk, subnet="").update(subnet=str(candidate))
        except IntegrityError:
            lost.append(candidate)
            continue
        if saved:
            app.subnet = str(candidate)
        else:  # another worker allocated this app's subnet first
            app.subnet = App.objects.values_list("subnet", flat=True).get(pk=app.pk)
    return app.subnet


def network_pool() -> tuple[IPv4Network, int]:
    """PAAS_NETWORK_POOL and PAAS_NETWORK_PREFIX, checked."""
    raw_pool, raw_prefix = settings.PAAS_NETWORK_POOL, settings.PAAS_NETWORK_PREFIX
    try:
        pool = ipaddress.ip_network(str(raw_pool).strip())
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"PAAS_NETWORK_POOL={raw_pool!r} is not an IPv4 network such as 10.213.0.0/16: {exc}"
        ) from exc
    if pool.version != 4:
        raise ImproperlyConfigured(
            f"PAAS_NETWORK_POOL={raw_pool!r} is not an IPv4 network such as 10.213.0.0/16"
        )
    try:
        prefix = int(raw_prefix)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"PAAS_NETWORK_PREFIX={raw_prefix!r} is not a prefix length such as 24"
        ) from exc
    if not pool.prefixlen < prefix <= 30:
        raise ImproperlyConfigured(
            f"PAAS_NETWORK_PREFIX={prefix} must be larger than PAAS_NETWORK_POOL's /"
            f"{pool.prefixlen} ({pool}) and at most 30 (a gateway and a container)"
        )
    return pool, prefix


def lowest_free(
    pool: IPv4Network, prefix: int, blocked: list[IPv4Network], from_top: bool = False
) -> IPv4Network | None:
    """The lowest (from_top: the highest) /prefix of the pool that overlaps nothing in
    `blocked`."""
    exact: set[IPv4Network] = set()  # the one /prefix each smaller-or-equal network sits in
    wide: list[IPv4Network] = []  # wider networks: each may cover many candidates
    for network in blocked:
        if not network.overlaps(pool):
            continue
        if network.prefixlen > prefix:
            exact.add(network.supernet(new_prefix=prefix))
        elif network.prefixlen == prefix:
            exact.add(network)
        else:
            wide.append(network)
    candidates = _descending(pool, prefix) if from_top else pool.subnets(new_prefix=prefix)
    for candidate in candidates:
        if candidate not in exact and not any(candidate.overlaps(w) for w in wide):
            return candidate
    return None


def _parse(subnets) -> list[IPv4Network]:
    found = []
    for subnet in subnets:
        try:
            network = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            continue
        if network.version == 4:
            found.append(network)
    return found


def _descending(pool: IPv4Network, prefix: int) -> Iterator[IPv4Network]:
    """The pool's /prefix pieces, highest first (computed: a wide pool has millions)."""
    size = 2 ** (32 - prefix)
    lowest = int(pool.network_address)
    for start in range(int(pool.broadcast_address) + 1 - size, lowest - 1, -size):
        yield IPv4Network((start, prefix))
