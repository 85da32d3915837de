"""Delete an app and everything it runs. Idempotent: a retry after a crash finishes the job."""

import logging
import re
import shutil
from pathlib import Path

from django.conf import settings

from apps.models import App, Environment
from deployments.adapters.router import Router
from deployments.adapters.runtime import RuntimeBackend
from deployments.models import Deployment
from deployments.workers.backups import delete_app_backups, delete_backup_files
from deployments.workers.webhook_registration import unregister

logger = logging.getLogger(__name__)

# What follows "<app>-" in the names the pipeline (<app>-<number>-<attempt>, see
# pipeline/context.py) and archive uploads (<app>-<uuid hex>.tar.gz, services/archives.py)
# give: matched whole, because a prefix match would take app blog-api's files for blog's.
BUILD_DIR_SUFFIX = re.compile(r"\d+-\d+")
ARCHIVE_SUFFIX = re.compile(r"[0-9a-f]{32}\.tar\.gz")


def cleanup_app(app_id: int, runtime: RuntimeBackend, router: Router) -> bool:
    app = App.objects.filter(pk=app_id).first()
    if app is None:
        return False  # already gone: a duplicate delivery
    if not app.cleanup_requested:
        raise RuntimeError(f"app {app.name} was not marked for cleanup")
    unregister(app)
    for env in app.environments.all():
        router.remove(env.route_id)
    labels = app.resource_labels
    runtime.remove_by_labels(labels)  # the add-ons' containers too: they carry the labels
    # Deleting the app is itself the explicit confirmation that its add-ons' data goes:
    # their volumes (kept ones of detached add-ons included) and their backups.
    runtime.remove_volumes_with_labels(labels)
    if not runtime.remove_network(app.network):
        raise RuntimeError(f"network {app.network} still has containers attached")
    for pushed in app.deployments.pushed_images():
        runtime.remove_image(pushed)  # from the registry
    leftover = runtime.remove_images_with_labels(labels)
    if leftover.in_use:
        raise RuntimeError(f"images of {app.name} still in use: {leftover.in_use}")
    for build_dir in _owned(settings.PAAS_BUILD_DIR, app.name, BUILD_DIR_SUFFIX):
        shutil.rmtree(build_dir, ignore_errors=True)
    for archive in _owned(settings.VAR_DIR / "archives", app.name, ARCHIVE_SUFFIX):
        archive.unlink(missing_ok=True)
    delete_app_backups(app.name)
    app.delete()
    logger.info("app %s deleted", app.name)
    return True


def cleanup_environment(environment_id: int, runtime: RuntimeBackend, router: Router) -> bool:
    """What app deletion does, for one environment's share: its route (and its domains'
    check routes), its containers and add-ons (labelled with it), their volumes and its own
    volumes, its add-ons' backups, then the row and everything it holds, and last the images
    no other environment's deployment runs (a promotion runs staging's image in production:
    that one stays)."""
    env = Environment.objects.select_related("app").filter(pk=environment_id).first()
    if env is None:
        return False  # already gone: a duplicate delivery
    if not env.cleanup_requested:
        raise RuntimeError(f"environment {env} was not marked for cleanup")
    router.remove(env.route_id)
    for domain in env.domains.all():
        router.remove(domain.check_route_id)
    labels = {**env.app.resource_labels, "slipway.environment": env.name}
    runtime.remove_by_labels(labels)
    runtime.remove_volumes_with_labels(labels)
    for volume in env.volumes.all():
        if not runtime.remove_volume(volume.docker_name):
            raise RuntimeError(f"volume {volume.docker_name} is still in use")
    for addon in env.addons.all():
        delete_backup_files(addon)
    tags = set(env.deployments.exclude(image_tag="").values_list("image_tag", flat=True))
    tags.update(env.deployments.pushed_images())
    env.delete()
    _remove_unshared_images(tags, runtime)
    logger.info("environment %s deleted", env)
    return True


def _remove_unshared_images(tags: set[str], runtime: RuntimeBackend) -> None:
    """Of a deleted environment's image tags (and pushed references), untag those no
    deployment left refers to: once its rows are gone, nothing would ever prune them."""
    shared = set(Deployment.objects.filter(image_tag__in=tags).values_list("image_tag", flat=True))
    shared.update(Deployment.objects.filter(image_id__in=tags).values_list("image_id", flat=True))
    for tag in tags - shared:
        if runtime.image_exists(tag):
            runtime.remove_image(tag)


def _owned(folder: Path, app_name: str, suffix: re.Pattern) -> list[Path]:
    """The entries of `folder` named `<app_name>-<suffix>`, and no other app's."""
    prefix = f"{app_name}-"
    return [
        path
        for path in Path(folder).glob(f"{prefix}*")
        if suffix.fullmatch(path.name[len(prefix) :])
    ]
