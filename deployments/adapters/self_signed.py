"""Self-signed certificates Slipway makes for itself: Traefik's default one and the
registry's. Nobody is meant to trust them by a chain; each is pinned where it is used."""

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(
    common_name: str, alternative: x509.GeneralName, valid_for: timedelta, ca: bool = False
) -> tuple[str, str]:
    """A new certificate for `alternative` (its one subject alternative name) and its EC
    P-256 private key, both PEM. `ca`: clients that pin it as their CA accept it (Docker's
    certs.d does)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))  # a clock a little behind accepts it too
        .not_valid_after(now + valid_for)
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()
