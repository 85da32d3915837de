"""Build an image with the Docker engine, streaming every output line as it arrives."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import requests
from django.conf import settings
from docker.errors import APIError, DockerException, ImageNotFound

from deployments.adapters.builders import build_limits, image_aliases, image_policy
from deployments.adapters.builders.build_cgroup import BuildCgroup
from deployments.adapters.builders.detect import BuildPlan
from deployments.adapters.builders.disk_watch import DiskWatch
from deployments.adapters.builders.errors import BuildError
from deployments.adapters.builders.files import (
    GENERATED_DIR,
    ignore_in_context,
    is_file,
    make_generated_dir,
    read,
    write,
)
from deployments.adapters.builders.remote_sources import check_add_sources

TAIL_LINES = 15
RESOLVED_DOCKERFILE = f"{GENERATED_DIR}/Dockerfile.resolved"
# The classic builder wraps a step's stderr in colour codes; a log page shows them raw.
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A label key or value a LABEL instruction holds as it is: no quote, space, `$` or escape.
PLAIN_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]*")


def build_image(
    client: docker.DockerClient,
    context: Path,
    plan: BuildPlan,
    tag: str,
    labels: dict[str, str],
    log: Callable[[str], None],
    network: str | None = None,
) -> str:
    """Build `context` with `plan` as `tag`; return the image id. RUN steps run on `network`.

    The Dockerfile's base images go through PAAS_IMAGE_ALIASES first, and each one must
    already be on the engine: nothing is pulled, so a missing one fails before the build.
    Neither may it name another app's image (image_policy), and the build runs within
    the limits of build_limits (context size, memory, CPU, duration, image size),
    build_cgroup (processes) and disk_watch (the disk a step writes).
    """
    try:
        build_limits.check_context_size(Path(context))
        _check_images(client, Path(context), plan.dockerfile_path, labels)
        dockerfile = _resolve_base_images(client, Path(context), plan.dockerfile_path, log)
        dockerfile, engine_labels = _labelled(Path(context), dockerfile, labels)
        _build(client, str(context), dockerfile, tag, engine_labels, log, network)
        build_limits.check_image_size(client, tag)
        return client.images.get(tag).id
    except APIError as exc:
        raise _api_error(exc) from None
    except (requests.RequestException, DockerException) as exc:
        raise BuildError(
            "engine_unreachable", f"The Docker engine could not be reached: {exc}"
        ) from None


def _build(
    client: docker.DockerClient,
    context: str,
    dockerfile: str,
    tag: str,
    labels: dict[str, str],
    log: Callable[[str], None],
    network: str | None,
) -> None:
    """The engine's build: its steps under this build's cgroup parent (the pids limit),
    stopped at the deadline, their disk watched."""
    timeout = settings.PAAS_BUILD_STEP_TIMEOUT
    with (
        BuildCgroup(settings.PAAS_BUILD_PIDS) as cgroup,
        build_limits.BuildRequest(client, timeout, {"cgroupparent": cgroup.parent}),
        DiskWatch(client, cgroup, settings.PAAS_BUILD_DISK_MAX_BYTES) as disk,
    ):
        stream = client.api.build(
            path=context,
            dockerfile=dockerfile,
            tag=tag,
            labels=labels,
            rm=True,
            forcerm=True,  # a failed or killed step's container goes too
            decode=True,
            pull=False,
            network_mode=network,  # the build network, under the egress firewall
            container_limits=build_limits.container_limits(),
        )
        _follow(stream, log, cgroup, disk)


def _check_images(
    client: docker.DockerClient, context: Path, dockerfile: str, labels: dict[str, str]
) -> None:
    """Refuse another app's image before anything else is said about it (not even that
    it is missing); the app is the one the image will be labelled with."""
    if is_file(context, dockerfile):
        text = read(context, dockerfile)
        image_policy.check_references(client, text, labels.get(image_policy.APP_LABEL))


def _resolve_base_images(
    client: docker.DockerClient, context: Path, dockerfile: str, log: Callable[[str], None]
) -> str:
    """The Dockerfile to build with: a rewritten copy when an alias applied."""
    if not is_file(context, dockerfile):
        return dockerfile  # the engine reports a missing Dockerfile in its own words
    text = read(context, dockerfile)
    check_add_sources(text, settings.PAAS_BUILD_ALLOW_REMOTE_ADD, settings.PAAS_EGRESS_ALLOW)
    resolved = image_aliases.resolve(text, settings.PAAS_IMAGE_ALIASES)
    missing = [image for image in resolved.images if not _on_engine(client, image)]
    if missing:
        raise BuildError("base_image_missing", _missing_message(missing))
    if not resolved.aliased:
        return dockerfile
    for written, alias in resolved.aliased:
        log(f"==> Base image {written} aliased to {alias} (PAAS_IMAGE_ALIASES)")
    make_generated_dir(context)
    write(context, RESOLVED_DOCKERFILE, resolved.text)
    ignore_in_context(context, RESOLVED_DOCKERFILE)
    return RESOLVED_DOCKERFILE


def _labelled(context: Path, dockerfile: str, labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The Dockerfile to build with the image's labels in one LABEL instruction, and the
    labels still to ask the engine for (none, or all when the file cannot take them as
    written).

    The classic builder turns each label of the request into a step of its own, each a
    container created and committed (about 65 ms apiece on the benchmark's host); one
    instruction is one step. Right before the step that copies the whole context (`COPY
    . .`, where a code-only change begins), that step is the same at every build of the
    app (the labels name the app, not the deployment), so the builder takes it from its
    cache, and the dependency layers before it stay shared between apps. At the end when
    the file has no such step, or a LABEL of it could set a key of ours (the last word on
    a label wins): the image is labelled as Slipway says."""
    if not labels or not is_file(context, dockerfile):
        return dockerfile, labels
    text = read(context, dockerfile)
    plain = all(PLAIN_LABEL.fullmatch(part) for item in labels.items() for part in item)
    if not plain or image_aliases.ends_open(text):
        return dockerfile, labels  # a continued last line would swallow the LABEL
    pairs = " ".join(f'"{key}"="{value}"' for key, value in sorted(labels.items()))
    split = image_aliases.split_before_context_copy(text)
    if split and not _may_relabel(text, labels):
        written = f"{split[0]}LABEL {pairs}\n{split[1]}"
    else:
        written = f"{text.rstrip()}\n\nLABEL {pairs}\n"
    make_generated_dir(context)
    write(context, RESOLVED_DOCKERFILE, written)
    ignore_in_context(context, RESOLVED_DOCKERFILE)
    return RESOLVED_DOCKERFILE, {}


def _may_relabel(text: str, labels: dict[str, str]) -> bool:
    """A LABEL of the Dockerfile names one of our keys, or may (a variable, an escape).
    Any stage's, not only the last one's: the check is simpler and errs on the safe side."""
    return any(
        "$" in instruction
        or "\\" in instruction
        or "`" in instruction
        or any(key in instruction for key in labels)
        for instruction in image_aliases.label_instructions(text)
    )


def _on_engine(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except ImageNotFound:
        return False
    return True


def _missing_message(missing: list[str]) -> str:
    names = ", ".join(missing)
    first = missing[0]
    subject = f"The base image {names} is" if len(missing) == 1 else f"The base images {names} are"
    return (
        f"{subject} not on this host's Docker engine, and Slipway does not "
        "pull images during a build. Provide it in one of three ways: map it to a local "
        f"image in PAAS_IMAGE_ALIASES (e.g. {_repository(first)}:*=slipway/python:bookworm), "
        f"load it with `docker load -i <file>.tar`, or pull it from a reachable registry "
        f"(`docker pull {first}`) before deploying again."
    )


def _repository(image: str) -> str:
    """`python:3.11-slim` -> `python`; a registry's port (`host:5000/x`) is no tag."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def _follow(
    stream: Iterable[dict], log: Callable[[str], None], cgroup: BuildCgroup, disk: DiskWatch
) -> None:
    """Pass each line on; raise when the engine reports an error."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for chunk in stream:
        for line in _lines(chunk):
            tail.append(line)
            log(line)
        error = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
        if error:
            raise _step_failure(error, tail, cgroup, disk)


def _step_failure(error: str, tail: deque[str], cgroup: BuildCgroup, disk: DiskWatch) -> BuildError:
    """The limit the step went over, if any: the disk watch's kill first (it is exit 137
    too, like the OOM killer's)."""
    message = _failure_message(error, tail)
    if disk.exceeded.is_set():
        return disk.disk_error(message)
    if cgroup.pids_exhausted(message):
        return cgroup.pids_error(message)
    code = build_limits.failure_code(error)
    if code == "build_out_of_memory":
        message = f"{build_limits.out_of_memory_hint()}\n{message}"
    return BuildError(code, message)


def _lines(chunk: dict) -> list[str]:
    if chunk.get("progress"):
        return []  # a progress bar redrawn many times a second while pulling a layer
    text = chunk.get("stream") or chunk.get("status") or ""
    if chunk.get("error") and not text:
        text = chunk.get("errorDetail", {}).get("message") or chunk["error"]
    text = ANSI_RE.sub("", text)
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def _failure_message(error: str, tail: deque[str]) -> str:
    error = ANSI_RE.sub("", error).strip()
    lines = list(tail)
    if lines and lines[-1].strip() == error:
        lines.pop()  # already the headline
    shown = "\n".join(lines)
    return f"The image build failed: {error}\nLast output:\n{shown}"


def _api_error(exc: APIError) -> BuildError:
    # The engine answers 4xx for what is wrong with the request itself — in practice a
    # Dockerfile it cannot find or parse; 5xx and anything else is the engine's trouble.
    detail = str(exc.explanation or exc)
    if exc.is_client_error() or "dockerfile" in detail.lower():
        return BuildError("dockerfile_error", f"The Dockerfile was refused: {detail}")
    return BuildError("engine_unreachable", f"The Docker engine failed: {detail}", False)
