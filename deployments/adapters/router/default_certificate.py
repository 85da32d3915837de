"""The self-signed certificate Traefik's default TLS store is given (traefik.py writes it).

Given none, Traefik makes a new RSA-2048 key for its default certificate at every change
of its dynamic configuration, before it switches the routers: 20 to 150 ms on a 2-core
host between a route file's write and its serving, most of a switch. This one is made once
and kept; it is what a TLS client gets for a name no route has, as Traefik's own was.
An EC P-256 key: Traefik reads it back at each change, and that parse is cheap.
"""

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAME = "slipway.default.invalid"  # a name no client asks for (RFC 2606's .invalid)
VALID_FOR = timedelta(days=3650)  # trusted by nobody either way: it need not be renewed


def self_signed() -> tuple[str, str]:
    """A new certificate and its private key, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()
