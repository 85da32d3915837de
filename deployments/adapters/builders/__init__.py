"""Turn a checked-out repository into an image: detect how, write a Dockerfile, build."""

from deployments.adapters.builders.detect import BuildError, BuildPlan, detect
from deployments.adapters.builders.procfile import (
    is_simple_command,
    parse_procfile,
    read_procfile,
    shell_command,
)

__all__ = [
    "BuildError",
    "BuildPlan",
    "build_image",
    "detect",
    "is_simple_command",
    "parse_procfile",
    "read_procfile",
    "shell_command",
]


def __getattr__(name: str):
    # build_image brings the Docker SDK, which only the worker uses: it is imported when first
    # asked for, so that the web processes (the create page's detection imports this
    # package) never load it (bench/run --memory).
    if name == "build_image":
        from deployments.adapters.builders import docker_build  # local import: Docker SDK

        return docker_build.build_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
