"""Where a deployment's code comes from. One module per kind of source; git for now."""

from deployments.adapters.sources.git import (
    FetchedSource,
    SourceError,
    fetch,
    redact,
    repository_host,
    validate_branch,
    validate_repository_url,
)

__all__ = [
    "FetchedSource",
    "SourceError",
    "fetch",
    "redact",
    "repository_host",
    "validate_branch",
    "validate_repository_url",
]
