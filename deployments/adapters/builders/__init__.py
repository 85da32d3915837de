"""Turn a checked-out repository into an image: detect how, write a Dockerfile, build."""

from deployments.adapters.builders.detect import BuildError, BuildPlan, detect
from deployments.adapters.builders.docker_build import build_image

__all__ = ["BuildError", "BuildPlan", "build_image", "detect"]
