"""Slipway's own image registry, for the Swarm backend (PAAS_REGISTRY_ADDRESS).

Debian's `docker-registry` (the CNCF distribution registry, 2.8) on the manager's cluster
address: TLS with a certificate Slipway makes for that address (every engine trusts it
through /etc/docker/certs.d/<address>/ca.crt), htpasswd authentication (bcrypt, one user),
deletes enabled. `manage.py paas_registry_config` writes its files; `scripts/services
registry` runs it. Each image a service runs is pushed first and named by digest, so every
node runs exactly the bytes that were built (a tag can move; a digest cannot).

A single-host installation with the Docker backend needs none of this.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import requests
import yaml
from cryptography import x509

from deployments.adapters.runtime import RuntimeBackendError
from deployments.adapters.self_signed import self_signed

USER = "slipway"
CERT_DAYS = 3650
REQUEST_TIMEOUT = (3, 30)
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


class RegistryError(RuntimeBackendError):
    """The registry refused or did not answer: a platform problem, retried."""

    code = "registry_error"


@dataclass(frozen=True)
class Registry:
    address: str  # host:port, the manager's cluster address
    directory: Path  # config, certificate, key, htpasswd, password, data

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def certificate(self) -> Path:
        return self.directory / "cert.pem"

    @property
    def config_path(self) -> Path:
        return self.directory / "config.yml"

    @property
    def trust_path(self) -> Path:
        """Where Docker Engine looks for the CA of a registry at this address."""
        return Path("/etc/docker/certs.d") / self.address / "ca.crt"

    def password(self) -> str:
        return (self.directory / "password").read_text().strip()

    def auth_config(self) -> dict:
        return {"username": USER, "password": self.password(), "serveraddress": self.address}

    # --- its files -------------------------------------------------------------------

    def write_files(self) -> None:
        """Certificate, key, htpasswd and password (each once: a second run keeps them),
        the config, and the engine's trust of the certificate."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.certificate.exists():
            self._write_certificate()
        password_file = self.directory / "password"
        if not password_file.exists():
            _write_private(password_file, secrets.token_urlsafe(32) + "\n")
        hashed = bcrypt.hashpw(self.password().encode(), bcrypt.gensalt()).decode()
        htpasswd = self.directory / "htpasswd"
        if not htpasswd.exists() or not _htpasswd_matches(htpasswd, self.password()):
            _write_private(htpasswd, f"{USER}:{hashed}\n")
        _write_private(self.config_path, yaml.safe_dump(self._config(), sort_keys=False))
        self.trust_path.parent.mkdir(parents=True, exist_ok=True)
        self.trust_path.write_bytes(self.certificate.read_bytes())

    def remove_trust(self) -> None:
        self.trust_path.unlink(missing_ok=True)
        try:
            self.trust_path.parent.rmdir()
        except OSError:
            pass

    def _config(self) -> dict:
        return {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "data")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": self.address,
                "tls": {
                    "certificate": str(self.certificate),
                    "key": str(self.directory / "key.pem"),
                },
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": {"htpasswd": {"realm": "slipway", "path": str(self.directory / "htpasswd")}},
        }

    def _write_certificate(self) -> None:
        try:
            alternative = x509.IPAddress(ipaddress.ip_address(self.host))
        except ValueError:
            alternative = x509.DNSName(self.host)
        valid_for = datetime.timedelta(days=CERT_DAYS)
        name = f"slipway registry {self.host}"
        certificate, key = self_signed(name, alternative, valid_for, ca=True)
        _write_private(self.directory / "key.pem", key)
        self.certificate.write_text(certificate)

    # --- images ----------------------------------------------------------------------

    def repository(self, instance: str, app: str) -> str:
        return f"{self.address}/{instance}/{app}"

    def publish(self, client, image_id: str, repository: str) -> str:
        """Push the local image `image_id` to `repository`; its reference by digest
        (`<repository>@sha256:…`), which any node can pull. Pushing what is there already
        only checks its layers."""
        tag = image_id.split(":")[-1][:12]
        try:
            client.api.tag(image_id, repository, tag)
            for line in client.api.push(
                repository, tag, stream=True, decode=True, auth_config=self.auth_config()
            ):
                if "error" in line:
                    raise RegistryError(f"could not push {repository}:{tag}: {line['error']}")
            digests = client.api.inspect_image(image_id).get("RepoDigests") or []
        except RegistryError:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine's and the registry's errors alike
            raise RegistryError(f"could not push {repository}:{tag}: {exc}"[:300]) from exc
        for digest in digests:
            if digest.startswith(f"{repository}@"):
                return digest
        raise RegistryError(f"the push of {repository}:{tag} left no digest")

    def delete(self, reference: str) -> bool:
        """Delete a manifest (`<repository>@sha256:…`) so no node can pull it again; its
        layers go at the registry's next garbage collection. False: it was not there."""
        repository, _, digest = reference.partition("@")
        name = repository.removeprefix(f"{self.address}/")
        response = self._request("DELETE", f"/v2/{name}/manifests/{digest}")
        if response.status_code == 404:
            return False
        if response.status_code != 202:
            raise RegistryError(f"could not delete {reference}: HTTP {response.status_code}")
        return True

    def has(self, reference: str) -> bool:
        repository, _, digest = reference.partition("@")
        name = repository.removeprefix(f"{self.address}/")
        response = self._request("HEAD", f"/v2/{name}/manifests/{digest}")
        return response.status_code == 200

    def ping(self, authenticated: bool = True) -> int:
        """The status /v2/ answers: 200 with the password, 401 without."""
        return self._request("GET", "/v2/", authenticated=authenticated).status_code

    def _request(self, method: str, path: str, authenticated: bool = True) -> requests.Response:
        try:
            return requests.request(
                method,
                f"https://{self.address}{path}",
                auth=(USER, self.password()) if authenticated else None,
                headers={"Accept": MANIFEST_TYPES},
                verify=str(self.certificate),
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as exc:
            raise RegistryError(f"the registry at {self.address} did not answer: {exc}") from exc


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def _htpasswd_matches(path: Path, password: str) -> bool:
    user, _, hashed = path.read_text().strip().partition(":")
    return user == USER and bcrypt.checkpw(password.encode(), hashed.encode())
