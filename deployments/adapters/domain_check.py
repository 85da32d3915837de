"""The HTTP half of a custom domain's ownership check: ask `address` (host[:port]) for
`path` with the domain as Host, and say what came back.

Plain HTTP first, as the router serves the check before the domain has a certificate. A
router with TLS on redirects every HTTP request to HTTPS; that one redirect is followed
to the same address, and the certificate is not checked: Traefik shows its default one
for a host it has none for, and what proves control is the token, not the certificate.
"""

from __future__ import annotations

import http.client
import ssl

MAX_BODY = 512
REDIRECTS = (301, 302, 307, 308)


class CheckFailed(Exception):
    """The fetch did not complete; the message says why, for the user."""


def fetch_token(address: str, host: str, path: str, timeout: float) -> str:
    """The body (up to MAX_BODY bytes, stripped) that `address` answers for http://host/path."""
    try:
        status, body, location = _get(http.client.HTTPConnection, address, host, path, timeout)
        if status in REDIRECTS and location.startswith(f"https://{host}"):
            status, body, _ = _get(_unverified_https, address, host, path, timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise CheckFailed(f"could not fetch http://{host}{path}: {exc}") from None
    if status != 200:
        raise CheckFailed(f"http://{host}{path} answered HTTP {status}")
    return body


def _get(connection_class, address: str, host: str, path: str, timeout: float):
    hostname, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    connection = connection_class(hostname, int(port) if port else None, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host, "User-Agent": "slipway-check"})
        response = connection.getresponse()
        body = response.read(MAX_BODY).decode("utf-8", "replace").strip()
        return response.status, body, response.getheader("Location") or ""
    finally:
        connection.close()


def _unverified_https(hostname: str, _port: int | None, timeout: float):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # The redirect's https://host/... is port 443, whichever port the HTTP fetch used.
    return http.client.HTTPSConnection(hostname, 443, timeout=timeout, context=context)
