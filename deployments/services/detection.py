"""What the create form shows before an app exists: how Slipway would build a repository."""

import shutil
import tempfile
from pathlib import Path

from django.conf import settings

from deployments.adapters.builders import BuildError, detect
from deployments.adapters.git_providers.tokens import clone_token_for_url
from deployments.adapters.sources import SourceError, fetch
from deployments.services import ServiceError

# The preview fetches while the create form's request waits: well under the web timeout.
PREVIEW_TIMEOUT = 15


def preview_build(user, repository: str, branch: str = "", method: str = "auto") -> str:
    """Shallow-fetch the repository into a throwaway directory and describe the build plan.

    The URL and branch must already be validated (the form does it). A private repository
    is fetched with the user's provider token, as deployments are."""
    token, token_user = clone_token_for_url(user, repository)
    workdir = Path(tempfile.mkdtemp(prefix="slipway-detect-", dir=_scratch()))
    try:
        fetch(
            repository,
            branch,
            workdir / "src",
            token=token,
            token_user=token_user,
            log=lambda line: None,
            timeout=PREVIEW_TIMEOUT,
        )
        return detect(workdir / "src", method).description
    except (SourceError, BuildError) as exc:
        raise ServiceError(exc.message, exc.code) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _scratch() -> Path:
    path = settings.PAAS_BUILD_DIR / "previews"
    path.mkdir(parents=True, exist_ok=True)
    return path
