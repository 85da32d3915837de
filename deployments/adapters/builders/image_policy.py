"""Which images a build may start from or copy out of: never another app's.

Every app of an installation builds on one Docker engine, where its images are tagged
`<instance>/<app>:<n>`. Without this check `FROM slipway/victim:3` (or `COPY --from=`, or
the same name behind an ARG default) would copy another tenant's source and baked-in
secrets into the attacker's image. A build may use:

- this app's own images (`<instance>/<app>:*`, or any image labelled as this app's);
- the configured base images (PAAS_BASE_IMAGES) and alias targets (PAAS_IMAGE_ALIASES);
- any other image that no other app of this installation made: its labels say no other
  `slipway.app`, its name is not under `<instance>/`, and, when named by id, it is this
  app's own (an id prefix may hit any image on the engine, even an untagged layer of
  another app's build that carries no label yet).
"""

from __future__ import annotations

import re

import docker
from django.conf import settings
from docker.errors import ImageNotFound
from docker.models.images import Image

from deployments.adapters.builders import image_aliases
from deployments.adapters.builders.errors import BuildError

APP_LABEL = "slipway.app"
INSTANCE_LABEL = "slipway.instance"
# What the engine may take for an image id or a prefix of one.
ID_RE = re.compile(r"^(sha256:)?[0-9a-f]+$")
# Names Docker treats as Docker Hub's; `docker.io/x/y` is the image `x/y`.
HUB_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/")


def check_references(client: docker.DockerClient, dockerfile: str, app: str | None) -> None:
    """Raise base_image_refused for the first image of `dockerfile` this app may not use.

    The images are those the engine will see: aliases applied, ARG defaults filled in,
    and the ONBUILD triggers of each image that is on the engine."""
    resolved = image_aliases.resolve(dockerfile, settings.PAAS_IMAGE_ALIASES)
    for reference in resolved.images + image_aliases.expanded_references(dockerfile):
        image = _inspect(client, reference)
        _refuse_unless_allowed(reference, image, app)
        for source in image_aliases.copy_sources(_onbuild(image)):
            _refuse_unless_allowed(source, _inspect(client, source), app, via=reference)


def refusal(reference: str, image: Image | None, app: str | None) -> str | None:
    """Why this app's build may not use `reference` (resolved on the engine to `image`,
    None when it is not there); None when it may."""
    name = normalized(reference)
    if app and repository(name) == f"{settings.PAAS_INSTANCE}/{app}":
        return None
    if name in _configured_images():
        return None
    if repository(name).startswith(f"{settings.PAAS_INSTANCE}/"):
        return (
            f"names an image of this installation ({settings.PAAS_INSTANCE}/…) that is "
            "not this app's"
        )
    if image is None:
        return None  # not on this engine: only a registry can provide it
    owner = image.labels.get(APP_LABEL)
    if owner is not None and not _is_own(image, app):
        return "is an image another app built"
    if _named_by_id(reference, image) and not _is_own(image, app):
        return "is an image id, and ids may name only this app's own images"
    return None


def normalized(reference: str) -> str:
    """`docker.io/library/python` -> `python:latest`: the name the engine stores."""
    name = reference.strip()
    for prefix in HUB_PREFIXES:
        if name.startswith(prefix):
            name = name.removeprefix(prefix)
            break
    if "@" in name or ":" in name.rsplit("/", 1)[-1]:
        return name
    return f"{name}:latest"


def repository(name: str) -> str:
    """`slipway/shop:3` -> `slipway/shop`; a registry's port (`host:5000/x`) is no tag."""
    name = name.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def _refuse_unless_allowed(
    reference: str, image: Image | None, app: str | None, via: str = ""
) -> None:
    reason = refusal(reference, image, app)
    if reason is None:
        return
    where = f" (an ONBUILD trigger of {via} copies from it)" if via else ""
    raise BuildError(
        "base_image_refused",
        f"The image {reference}{where} may not be used in this build: it {reason}. A build "
        "may use this app's own images, the platform's base images and image aliases, and "
        "images that no other app on this host made.",
    )


def _inspect(client: docker.DockerClient, reference: str) -> Image | None:
    try:
        return client.images.get(reference)
    except (ImageNotFound, docker.errors.InvalidArgument):
        return None
    except docker.errors.APIError as exc:
        if exc.is_client_error():
            return None  # a malformed name: the engine says what is wrong when it builds
        raise


def _named_by_id(reference: str, image: Image) -> bool:
    """`FROM 3f2a` builds from whichever image's id starts so, not from a name."""
    digits = reference.removeprefix("sha256:")
    return bool(ID_RE.match(reference)) and image.id.removeprefix("sha256:").startswith(digits)


def _is_own(image: Image, app: str | None) -> bool:
    labels = image.labels
    return (
        app is not None
        and labels.get(APP_LABEL) == app
        and labels.get(INSTANCE_LABEL) == settings.PAAS_INSTANCE
    )


def _onbuild(image: Image | None) -> list[str]:
    if image is None:
        return []
    return (image.attrs.get("Config") or {}).get("OnBuild") or []


def _configured_images() -> set[str]:
    aliases = [image for _, image in settings.PAAS_IMAGE_ALIASES]
    return {normalized(image) for image in [*settings.PAAS_BASE_IMAGES.values(), *aliases]}
