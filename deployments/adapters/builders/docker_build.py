"""Build an image with the Docker engine, streaming every output line as it arrives."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import docker
import requests
from docker.errors import APIError, DockerException

from deployments.adapters.builders.detect import BuildError, BuildPlan

TAIL_LINES = 15
# The classic builder wraps a step's stderr in colour codes; a log page shows them raw.
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def build_image(
    client: docker.DockerClient,
    context: Path,
    plan: BuildPlan,
    tag: str,
    labels: dict[str, str],
    log: Callable[[str], None],
) -> str:
    """Build `context` with `plan` as `tag`; return the image id."""
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile=plan.dockerfile_path,
            tag=tag,
            labels=labels,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
        )
        _follow(stream, log)
        return client.images.get(tag).id
    except APIError as exc:
        raise _api_error(exc) from None
    except (requests.RequestException, DockerException) as exc:
        raise BuildError(
            "engine_unreachable", f"The Docker engine could not be reached: {exc}"
        ) from None


def _follow(stream: Iterable[dict], log: Callable[[str], None]) -> None:
    """Pass each line on; raise build_failed when the engine reports an error."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for chunk in stream:
        for line in _lines(chunk):
            tail.append(line)
            log(line)
        error = chunk.get("errorDetail", {}).get("message") or chunk.get("error")
        if error:
            raise BuildError("build_failed", _failure_message(error, tail))


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
