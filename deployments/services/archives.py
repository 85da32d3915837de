"""Deploy from an uploaded archive (as seelf does): the upload is saved, checked whole, and
only then does a deployment exist — a bad archive leaves nothing behind."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings

from apps.models import App
from deployments import services
from deployments.adapters.sources.archive import archive_limits, inspect_archive
from deployments.adapters.sources.git import SourceError
from deployments.models import Deployment, Trigger
from deployments.services import ServiceError


class TooLarge(ServiceError):
    status = 413


def archive_dir() -> Path:
    return Path(settings.VAR_DIR) / "archives"


def deploy_archive(app: App, environment_name: str, uploaded_file, user) -> Deployment:
    """Save and check the upload, then queue a deployment that builds from it."""
    services.environment_named(app, environment_name)
    max_bytes, max_entries = archive_limits()
    path = save_upload(app, uploaded_file, max_bytes)
    try:
        inspect_archive(path, max_bytes, max_entries)
        return _queue(app, environment_name, path, user)
    except SourceError as exc:
        path.unlink(missing_ok=True)
        raise ServiceError(exc.message, exc.code) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def save_upload(app: App, uploaded_file, max_bytes: int) -> Path:
    """Copy the upload to its own file chunk by chunk, stopping as soon as it is too big."""
    if uploaded_file.size is not None and uploaded_file.size > max_bytes:
        raise _too_large(max_bytes)
    folder = archive_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{app.name}-{uuid.uuid4().hex}.tar.gz"
    written = 0
    try:
        with path.open("xb") as out:
            for chunk in uploaded_file.chunks():
                written += len(chunk)
                if written > max_bytes:
                    raise _too_large(max_bytes)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _too_large(max_bytes: int) -> TooLarge:
    return TooLarge(
        f"The archive is larger than {max_bytes / (1024 * 1024):g} MiB.", "archive_too_large"
    )


def _queue(app: App, environment_name: str, path: Path, user) -> Deployment:
    return services.queue_deployment(
        app,
        environment_name,
        trigger=Trigger.ARCHIVE,
        requested_by=user,
        branch="",
        trigger_data={"archive": str(path)},
    )
