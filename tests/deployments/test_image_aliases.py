"""PAAS_IMAGE_ALIASES: every FROM and COPY --from through the operator's map, and a base
image that is not on the engine refused before the build, on the real engine."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from deployments.adapters.builders import BuildError, build_image, detect
from deployments.adapters.builders.image_aliases import (
    alias_for,
    ends_open,
    resolve,
    split_before_context_copy,
)

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLES = ROOT / "tests" / "samples"
TEST_LABEL = "slipway.test"
LOCAL_PYTHON = "slipway/python:bookworm"
ALIASES = [
    ("python:3.11*", LOCAL_PYTHON),
    ("node:*", "slipway/node:bookworm"),
    ("golang:*", "slipway/go:bookworm"),
]


# --- the rewrite ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, is_open",
    [
        ("", False),
        ("FROM x\nCMD run\n", False),
        ("FROM x\nCMD run", False),
        ("FROM x\n# a comment \\\n\n", False),
        ("FROM x\nRUN a \\\n", True),
        ("FROM x\nRUN a \\  \n", True),
        ("FROM x\nRUN a \\\n# inside the RUN\n", True),
        ("FROM x\nRUN a \\\n\n", True),
        ("# escape=`\nFROM x\nRUN a `\n", True),
        ("# escape=`\nFROM x\nRUN a \\\n", False),
    ],
)
def test_ends_open_finds_a_last_instruction_continued_into_the_end(text, is_open):
    assert ends_open(text) is is_open


@pytest.mark.parametrize(
    "text, cut",
    [
        ("FROM x\nRUN a\nCOPY . .\nCMD b\n", ("FROM x\nRUN a\n", "COPY . .\nCMD b\n")),
        ("FROM x\nCOPY --chown=1:1 ./ /srv\n", ("FROM x\n", "COPY --chown=1:1 ./ /srv\n")),
        ("FROM x\nADD . /srv\n", ("FROM x\n", "ADD . /srv\n")),
        # the last stage's copy, not the builder stage's
        (
            "FROM x AS build\nCOPY . .\nFROM y\nCOPY --from=build /a /a\nCOPY . .\n",
            ("FROM x AS build\nCOPY . .\nFROM y\nCOPY --from=build /a /a\n", "COPY . .\n"),
        ),
        ("FROM x AS build\nCOPY . .\nFROM y\nCOPY --from=build . .\n", None),
        ("FROM x\nCOPY app.py .\n", None),
        ('FROM x\nCOPY [".", "."]\n', None),  # the JSON form: at the end instead
        ("COPY . .\n", None),  # no FROM: the engine says what is wrong
        ("FROM x\nRUN a \\\n  && b\nCOPY . .\n", ("FROM x\nRUN a \\\n  && b\n", "COPY . .\n")),
    ],
)
def test_the_cut_before_the_last_stage_copies_the_whole_context(text, cut):
    assert split_before_context_copy(text) == cut


def test_from_is_rewritten_with_its_platform_and_stage_name():
    text = "FROM --platform=linux/amd64 python:3.11-slim AS base\nRUN true\n"
    resolved = resolve(text, ALIASES)
    assert resolved.text == f"FROM --platform=linux/amd64 {LOCAL_PYTHON} AS base\nRUN true\n"
    assert resolved.aliased == [("python:3.11-slim", LOCAL_PYTHON)]
    assert resolved.images == [LOCAL_PYTHON]


def test_stage_names_and_numbers_are_not_images():
    text = (
        "from golang:1.22 as Build\n"
        "FROM build AS again\n"
        "COPY --from=build /x /x\n"
        "COPY --from=0 /y /y\n"
        "FROM scratch\n"
    )
    resolved = resolve(text, ALIASES)
    assert resolved.aliased == [("golang:1.22", "slipway/go:bookworm")]
    assert resolved.images == ["slipway/go:bookworm"]
    assert "FROM build AS again\nCOPY --from=build /x /x\nCOPY --from=0 /y /y\n" in resolved.text


def test_copy_from_an_image_is_rewritten_after_other_flags():
    text = "FROM python:3.11\nCOPY --chown=1:1 --from=node:20-slim /usr/bin/node /n\n"
    resolved = resolve(text, ALIASES)
    assert "COPY --chown=1:1 --from=slipway/node:bookworm /usr/bin/node /n\n" in resolved.text
    assert resolved.images == [LOCAL_PYTHON, "slipway/node:bookworm"]


def test_arg_substituted_references_are_left_alone():
    text = "ARG BASE=python:3.11\nFROM ${BASE}\nCOPY --from=$TOOLS /t /t\n"
    resolved = resolve(text, ALIASES)
    assert (resolved.text, resolved.aliased, resolved.images) == (text, [], [])


def test_a_continued_line_and_comments_stay_as_they_are():
    text = "# syntax=docker/dockerfile:1\nFROM \\\n  python:3.11-slim\nRUN a \\\n  # note\n  && b\n"
    resolved = resolve(text, ALIASES)
    assert resolved.text == (
        f"# syntax=docker/dockerfile:1\nFROM {LOCAL_PYTHON}\nRUN a \\\n  # note\n  && b\n"
    )


def test_the_escape_directive_is_heeded():
    text = "# escape=`\nFROM `\n  node:20\n"
    assert resolve(text, ALIASES).text == "# escape=`\nFROM slipway/node:bookworm\n"


def test_an_unaliased_image_is_needed_as_written():
    text = "FROM nosuch/image:1\nCOPY --from=other/tools:2 /t /t\n"
    resolved = resolve(text, ALIASES)
    assert (resolved.text, resolved.aliased) == (text, [])
    assert resolved.images == ["nosuch/image:1", "other/tools:2"]


def test_the_first_matching_pattern_wins_and_docker_io_names_match_too():
    aliases = [("python:3.11*", "a/one"), ("python:*", "a/two")]
    assert alias_for("python:3.11-slim", aliases) == "a/one"
    assert alias_for("python:3.12", aliases) == "a/two"
    assert alias_for("docker.io/library/python:3.12", aliases) == "a/two"
    assert alias_for("pythonista:1", aliases) is None


# --- the setting ----------------------------------------------------------------------


def _settings_with(aliases: str) -> subprocess.CompletedProcess:
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.PAAS_IMAGE_ALIASES)"
    )
    env = {**os.environ, "PAAS_IMAGE_ALIASES": aliases}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_the_setting_is_a_list_of_pattern_image_pairs():
    done = _settings_with("python:3.11*=slipway/python:bookworm, node:*=slipway/node:bookworm")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "[('python:3.11*', 'slipway/python:bookworm'), ('node:*', 'slipway/node:bookworm')]"
    )


@pytest.mark.parametrize("entry", ["python", "=slipway/python", "python:*=", "a=b=c", "x=y*"])
def test_a_malformed_alias_stops_django_from_starting(entry):
    done = _settings_with(f"node:*=slipway/node:bookworm,{entry}")
    assert done.returncode != 0
    assert f"PAAS_IMAGE_ALIASES: {entry!r} is not pattern=image" in done.stderr


def test_the_test_installation_aliases_the_official_images(settings):
    # scripts/test sets what scripts/run sets, so the worker builds such Dockerfiles too.
    assert alias_for("python:3.11-slim", settings.PAAS_IMAGE_ALIASES) == LOCAL_PYTHON
    assert alias_for("node:16-slim", settings.PAAS_IMAGE_ALIASES) == "slipway/node:bookworm"
    assert alias_for("golang:1.22", settings.PAAS_IMAGE_ALIASES) == "slipway/go:bookworm"


# --- real builds ----------------------------------------------------------------------


# engine and images: fixtures in tests/deployments/conftest.py


@pytest.fixture
def aliases(settings):
    settings.PAAS_IMAGE_ALIASES = ALIASES
    return ALIASES


def _build(engine, repo: Path, tag: str) -> tuple[str, list[str]]:
    lines: list[str] = []
    image_id = build_image(engine, repo, detect(repo), tag, {TEST_LABEL: "1"}, lines.append)
    return image_id, lines


def _get(engine, image: str) -> str:
    container = engine.containers.run(image, detach=True, environment={"PORT": "8080"})
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["IPAddress"]
        deadline = time.monotonic() + 20
        while True:
            try:
                return requests.get(f"http://{address}:8080/", timeout=2).text
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(container.logs().decode()) from None
                time.sleep(0.2)
    finally:
        container.remove(force=True)


def test_a_dockerfile_from_an_official_image_builds_from_its_alias(
    engine, images, aliases, tmp_path
):
    repo = Path(shutil.copytree(SAMPLES / "dockerfile_alias", tmp_path / "repo"))
    original = (repo / "Dockerfile").read_text()
    image_id, lines = _build(engine, repo, images("aliased"))
    assert (
        f"==> Base image python:3.11-slim aliased to {LOCAL_PYTHON} (PAAS_IMAGE_ALIASES)" in lines
    )
    assert f"Step 1/7 : FROM --platform=linux/amd64 {LOCAL_PYTHON} AS base" in lines
    assert (repo / "Dockerfile").read_text() == original  # the repository's file is untouched
    assert (repo / ".slipway" / "Dockerfile.resolved").is_file()
    assert ".slipway/Dockerfile.resolved" in (repo / ".dockerignore").read_text().splitlines()
    assert _get(engine, image_id) == "hello from an aliased base image"


def test_a_generated_dockerfile_from_an_official_image_is_aliased_too(
    engine, images, aliases, settings, tmp_path
):
    settings.PAAS_BASE_IMAGES = {**settings.PAAS_BASE_IMAGES, "python": "python:3.11-slim"}
    app = (SAMPLES / "dockerfile_alias" / "app.py").read_text()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "requirements.txt").write_text("")
    (repo / "app.py").write_text(app)
    image_id, lines = _build(engine, repo, images("generated-aliased"))
    assert any(line.startswith("==> Base image python:3.11-slim aliased") for line in lines)
    assert ".git" in (repo / ".dockerignore").read_text().splitlines()  # detect's rules stay
    assert _get(engine, image_id) == "hello from an aliased base image"


def test_an_image_that_is_not_on_the_engine_fails_before_the_build(
    engine, images, aliases, tmp_path
):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Dockerfile").write_text("FROM nosuch/image:1\nRUN echo never-runs\n")
    lines: list[str] = []
    with pytest.raises(BuildError) as info:
        build_image(engine, repo, detect(repo), images("missing"), {}, lines.append)
    assert (info.value.code, info.value.user_fault) == ("base_image_missing", True)
    message = info.value.message
    assert "The base image nosuch/image:1 is not on this host's Docker engine" in message
    assert "PAAS_IMAGE_ALIASES (e.g. nosuch/image:*=" in message
    assert "docker load" in message
    assert "reachable registry (`docker pull nosuch/image:1`)" in message
    assert lines == []  # refused before the engine began anything


def test_copy_from_a_missing_image_is_refused_too(engine, images, aliases, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    dockerfile = f"FROM {LOCAL_PYTHON} AS base\nFROM base\nCOPY --from=nosuch/tools:2 /t /t\n"
    (repo / "Dockerfile").write_text(dockerfile)
    with pytest.raises(BuildError) as info:
        build_image(engine, repo, detect(repo), images("missing-copy"), {}, print)
    assert info.value.code == "base_image_missing"
    # Only the image is named: the stage "base" is no image.
    assert info.value.message.startswith("The base image nosuch/tools:2 is not on")
