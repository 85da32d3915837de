"""Build the base images app builds start FROM, offline, from the OS package mirror."""

import os

import docker
import docker.errors
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deployments.baseimages import RECIPES, BaseImageBuilder, BaseImageError


class Command(BaseCommand):
    help = (
        "Build the configured base images (PAAS_BASE_IMAGES) that are missing locally, "
        "from a debootstrapped Debian root filesystem; no container registry needed."
    )
    requires_system_checks: list[str] = []  # needs neither the database nor the checks

    def add_arguments(self, parser):
        parser.add_argument("kinds", nargs="*", help=f"only these kinds ({', '.join(RECIPES)})")
        parser.add_argument(
            "--force", action="store_true", help="rebuild even if present, root filesystem too"
        )

    def handle(self, *kinds, force=False, **options):
        images = self._selected_images(kinds)
        builder = BaseImageBuilder(self._client(), self._write, self._mirror_override())
        try:
            builder.ensure(images, force=force)
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
