"""The self-signed certificate Traefik's default TLS store is given (traefik.py writes it).

Given none, Traefik makes a new RSA-2048 key for its default certificate at every change
of its dynamic configuration, before it switches the routers: 20 to 150 ms on a 2-core
host between a route file's write and its serving, most of a switch. This one is made once
and kept; it is what a TLS client gets for a name no route has, as Traefik's own was.
An EC P-256 key: Traefik reads it back at each change, and that parse is cheap.
"""

from datetime import timedelta

from cryptography import x509

from deployments.adapters import self_signed as certificates

NAME = "slipway.default.invalid"  # a name no client asks for (RFC 2606's .invalid)
VALID_FOR = timedelta(days=3650)  # trusted by nobody either way: it need not be renewed


def self_signed() -> tuple[str, str]:
    """A new certificate and its private key, both PEM."""
    return certificates.self_signed(NAME, x509.DNSName(NAME), VALID_FOR)
