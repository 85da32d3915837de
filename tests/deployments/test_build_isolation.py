"""Issue 12, item 1: a build may not start from or copy out of another app's image, on the
real engine: by name, behind an ARG default, with COPY --from, by image id, or through an
ONBUILD trigger of an image it may use. Its own earlier image and the base images pass."""

import uuid
from pathlib import Path

import docker
import pytest

from deployments.adapters.builders import BuildError, BuildPlan, build_image
from deployments.adapters.builders.image_aliases import copy_sources, expanded_references

TEST_LABEL = "slipway.test"
APP = "thief"


def _dockerfile(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(text)
    return root


def _labels(settings, app: str) -> dict[str, str]:
    return {"slipway.instance": settings.PAAS_INSTANCE, "slipway.app": app, TEST_LABEL: "1"}


@pytest.fixture
def app_image(settings, engine, tmp_path):
    """make(app, text=''): an image built as `app`'s, tagged <instance>/<app>-<hex>:1 the
    way the pipeline tags it (the suffix keeps runs apart); removed afterwards."""
    made: list[str] = []

    def make(app: str, extra: str = "") -> tuple[str, str]:
        name = f"{app}-{uuid.uuid4().hex[:6]}"
        tag = f"{settings.PAAS_INSTANCE}/{name}:1"
        base = settings.PAAS_BASE_IMAGES["static"]
        root = _dockerfile(tmp_path / name, f"FROM {base}\nRUN echo secret > /secret\n{extra}")
        engine.images.build(path=str(root), tag=tag, labels=_labels(settings, name), rm=True)
        made.append(tag)
        return name, tag

    yield make
    for tag in made:
        try:
            engine.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def _build(settings, engine, root: Path, tag: str, app: str = APP) -> str:
    plan = BuildPlan("dockerfile", "Dockerfile", "")
    return build_image(engine, root, plan, tag, _labels(settings, app), print)


def _refused(settings, engine, root: Path, tag: str) -> BuildError:
    with pytest.raises(BuildError) as info:
        _build(settings, engine, root, tag)
    assert (info.value.code, info.value.user_fault) == ("base_image_refused", True)
    return info.value


# --- on the engine ----------------------------------------------------------------------


def test_from_another_apps_image_is_refused(settings, engine, images, app_image, tmp_path):
    _, victim = app_image("victim")
    root = _dockerfile(tmp_path / "b", f"FROM {victim}\nRUN cat /secret\n")
    error = _refused(settings, engine, root, images("thief"))
    assert victim in error.message
    assert "not this app's" in error.message


def test_an_arg_default_does_not_hide_the_image(settings, engine, images, app_image, tmp_path):
    _, victim = app_image("victim")
    repository, tag = victim.split(":")
    text = f"ARG REPO={repository}\nARG IMG=${{REPO}}:{tag}\nFROM $IMG\nRUN cat /secret\n"
    error = _refused(settings, engine, _dockerfile(tmp_path / "b", text), images("thief"))
    assert victim in error.message


def test_copy_from_another_apps_image_is_refused(settings, engine, images, app_image, tmp_path):
    _, victim = app_image("victim")
    base = settings.PAAS_BASE_IMAGES["static"]
    text = f"FROM {base}\nCOPY --chown=0:0 --from={victim} /secret /stolen\n"
    error = _refused(settings, engine, _dockerfile(tmp_path / "b", text), images("thief"))
    assert victim in error.message


def test_another_apps_image_by_id_or_other_name_is_refused(
    settings, engine, images, app_image, tmp_path
):
    _, victim = app_image("victim")
    image_id = engine.images.get(victim).id
    for n, reference in enumerate([image_id, image_id.removeprefix("sha256:")[:12]]):
        root = _dockerfile(tmp_path / f"b{n}", f"FROM {reference}\n")
        assert "another app built" in _refused(settings, engine, root, images("thief")).message
    renamed = images("renamed")  # a name outside <instance>/: the label still says whose
    engine.images.get(victim).tag(renamed)
    root = _dockerfile(tmp_path / "b3", f"FROM {renamed}\n")
    assert "another app built" in _refused(settings, engine, root, images("thief")).message


def test_an_onbuild_trigger_may_not_copy_from_another_app(
    settings, engine, images, app_image, tmp_path
):
    _, victim = app_image("victim")
    own, own_tag = app_image(APP, f"ONBUILD COPY --from={victim} /secret /stolen\n")
    root = _dockerfile(tmp_path / "b", f"FROM {own_tag}\n")
    with pytest.raises(BuildError) as info:
        _build(settings, engine, root, images("thief"), app=own)
    assert info.value.code == "base_image_refused"
    assert f"an ONBUILD trigger of {own_tag}" in info.value.message


def test_its_own_earlier_image_and_a_base_image_pass(settings, engine, images, app_image, tmp_path):
    own, own_tag = app_image(APP)
    root = _dockerfile(tmp_path / "own", f"FROM {own_tag}\nRUN cat /secret\n")
    assert _build(settings, engine, root, images("own"), app=own)
    base = settings.PAAS_BASE_IMAGES["static"]
    root = _dockerfile(tmp_path / "base", f"ARG BASE={base}\nFROM ${{BASE}}\nRUN true\n")
    assert _build(settings, engine, root, images("base"))


# --- the ARG expansion ------------------------------------------------------------------


def test_only_args_before_the_first_from_reach_a_from():
    text = (
        "ARG A=one/a:1\nARG B\nFROM $A AS first\nARG C=two/c:2\n"
        "FROM ${C:-fallback/x:1}\nCOPY --from=${A} /a /a\nFROM first\nFROM ${B:+set}scratch\n"
    )
    assert expanded_references(text) == ["one/a:1", "fallback/x:1"]


def test_onbuild_copy_sources_are_read():
    triggers = ["COPY --from=other/app:1 /a /a", "RUN true", "COPY --from=0 /b /b"]
    assert copy_sources(triggers) == ["other/app:1"]
