"""The addresses builds and app containers may not connect to, and the operator's exceptions.

One list serves the firewall (`firewall.py`) and the check of the `ADD <url>` sources the
engine fetches itself (`builders/remote_sources.py`). The list is explicit rather than
Python's `is_private`, which also counts the documentation ranges (192.0.2.0/24,
203.0.113.0/24, …) as private: public services answer there behind some proxies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

BLOCKED_V4 = tuple(
    IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 reaches the host itself
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT, the provider's side of the line
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: cloud metadata (169.254.169.254) lives here
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
BLOCKED_V6 = tuple(
    IPv6Network(cidr)
    for cidr in (
        "::/128",
        "::1/128",
        "fe80::/10",  # link-local
        "fc00::/7",  # unique local (the private ranges of IPv6)
        "ff00::/8",  # multicast
    )
)


def parse_allow(entries: Iterable[str]) -> list[IPNetwork]:
    """PAAS_EGRESS_ALLOW's entries as networks (`10.1.2.3` is `10.1.2.3/32`); ValueError names
    the first one that is no address or CIDR."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"PAAS_EGRESS_ALLOW: {entry!r} is not an address or CIDR such as 10.1.2.3/32"
            ) from None
    return networks


def is_blocked(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> bool:
    """True when `address` is the host's own or non-public and no allowed network holds it."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in allowed if network.version == address.version):
        return False
    blocked = BLOCKED_V4 if address.version == 4 else BLOCKED_V6
    return any(address in network for network in blocked)
