"""Build the base images app builds start FROM, offline, from the OS package mirror.

With --with-addons (or add-on kinds named), also the add-on images (PAAS_ADDON_IMAGES) that
carry Slipway's own slipway/ names. Without it the output is the base images' alone.
"""

import os

import docker
import docker.errors
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deployments.adapters.baseimages import (
    ADDON_RECIPES,
    RECIPES,
    AddOnImageBuilder,
    BaseImageError,
)


class Command(BaseCommand):
    help = (
        "Build the configured base images (PAAS_BASE_IMAGES) that are missing locally, "
        "from a debootstrapped Debian root filesystem; no container registry needed."
    )
    requires_system_checks: list[str] = []  # needs neither the database nor the checks

    def add_arguments(self, parser):
        known = ", ".join([*RECIPES, *ADDON_RECIPES])
        parser.add_argument("kinds", nargs="*", help=f"only these kinds ({known})")
        parser.add_argument(
            "--force", action="store_true", help="rebuild even if present, root filesystem too"
        )
        parser.add_argument(
            "--with-addons",
            action="store_true",
            help="also the add-on images (PAAS_ADDON_IMAGES) named slipway/…",
        )

    def handle(self, *args, force=False, with_addons=False, **options):
        # argparse puts the positional "kinds" among the options, not in *args.
        kinds = [*args, *(options.get("kinds") or [])]
        addon_kinds = [kind for kind in kinds if kind in ADDON_RECIPES]
        base_kinds = [kind for kind in kinds if kind not in ADDON_RECIPES]
        images = self._selected_images(base_kinds) if base_kinds or not addon_kinds else {}
        addons = self._selected_addons(addon_kinds) if addon_kinds or with_addons else {}
        builder = AddOnImageBuilder(self._client(), self._write, self._mirror_override())
        try:
            builder.ensure(images, force=force)
            builder.ensure_addons(addons, force=force)
        except BaseImageError as exc:
            raise CommandError(f"{exc.code}: {exc}") from exc
        except docker.errors.DockerException as exc:
            raise CommandError(f"engine_unreachable: {exc}") from exc

    def _selected_images(self, kinds) -> dict[str, str]:
        configured = dict(settings.PAAS_BASE_IMAGES)
        unknown = [kind for kind in kinds if kind not in configured]
        if unknown:
            raise CommandError(f"not in PAAS_BASE_IMAGES: {', '.join(unknown)}")
        return {kind: configured[kind] for kind in kinds} if kinds else configured

    @staticmethod
    def _selected_addons(kinds) -> dict[str, str]:
        configured = dict(settings.PAAS_ADDON_IMAGES)
        return {kind: configured[kind] for kind in kinds} if kinds else configured

    def _client(self) -> docker.DockerClient:
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            raise CommandError(f"engine_unreachable: Docker Engine did not answer: {exc}") from exc
        return client

    @staticmethod
    def _mirror_override() -> str:
        return getattr(settings, "PAAS_APT_MIRROR", "") or os.environ.get("PAAS_APT_MIRROR", "")

    def _write(self, text: str) -> None:
        # Build output arrives in pieces, not always whole lines: pass it through as is.
        self.stdout.write(text, ending="")
        self.stdout.flush()
