"""Turn a checked-out repository into an image: detect how, write a Dockerfile, build."""

from deployments.adapters.builders.detect import BuildError, BuildPlan, detect
from deployments.adapters.builders.docker_build import build_image
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
