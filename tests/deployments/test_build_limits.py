"""Issue 12, item 3: a build over a limit fails with that limit's error code, on the real
engine with tiny limits set in-process; and one owner's builds wait for a free slot."""

import threading
import time
import uuid
from pathlib import Path

import docker
import pytest

from deployments.adapters.builders import BuildError, BuildPlan, build_image
from deployments.adapters.builders.build_limits import check_context_size
from deployments.models import Status
from deployments.workers.pipeline import BUSY, CLAIMED, claim

TEST_LABEL = "slipway.test"
PLAN = BuildPlan("dockerfile", "Dockerfile", "")


def _repo(root: Path, dockerfile: str, files: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (root / name).write_bytes(data)
    return root


def _fails(engine, root: Path, tag: str) -> BuildError:
    with pytest.raises(BuildError) as info:
        build_image(engine, root, PLAN, tag, {TEST_LABEL: "1"}, print)
    assert info.value.user_fault
    return info.value


def _containers_running(engine, marker: str) -> list:
    found = engine.containers.list(all=True, filters={"status": "running"})
    return [c for c in found if marker in " ".join(c.attrs["Config"].get("Cmd") or [])]


def test_a_step_over_the_memory_limit_fails_out_of_memory(settings, engine, images, tmp_path):
    settings.PAAS_BUILD_MEMORY = "64m"
    base = settings.PAAS_BASE_IMAGES["python"]
    hog = "RUN python3 -c \"x = b'a' * (512 * 1024 * 1024)\"\n"
    error = _fails(engine, _repo(tmp_path, f"FROM {base}\n{hog}"), images("oom"))
    assert error.code == "build_out_of_memory"
    assert "PAAS_BUILD_MEMORY" in error.message and "137" in error.message


def test_a_build_past_its_deadline_is_stopped_on_the_engine(settings, engine, images, tmp_path):
    settings.PAAS_BUILD_STEP_TIMEOUT = 4
    settings.PAAS_BUILD_MEMORY, settings.PAAS_BUILD_CPUS = "96m", 0.5
    marker = f"slow-{uuid.uuid4().hex[:8]}"
    base = settings.PAAS_BASE_IMAGES["static"]
    root = _repo(tmp_path, f"FROM {base}\nRUN echo {marker} && sleep 120\n")
    errors: list[BuildError] = []
    started = time.monotonic()
    build = threading.Thread(target=lambda: errors.append(_fails(engine, root, images("slow"))))
    build.start()
    step = _wait_for(lambda: _containers_running(engine, marker), 15)
    host = step[0].attrs["HostConfig"]  # the limits reached the RUN step's container
    assert (host["Memory"], host["MemorySwap"]) == (96 * 1024 * 1024, 96 * 1024 * 1024)
    assert (host["CpuQuota"], host["CpuPeriod"]) == (50_000, 100_000)
    build.join(30)
    assert errors and errors[0].code == "build_timeout"
    assert time.monotonic() - started < 20
    assert _wait_for(lambda: not _containers_running(engine, marker), 15)


def test_a_context_over_the_cap_fails_before_the_build(settings, engine, images, tmp_path):
    settings.PAAS_BUILD_CONTEXT_MAX_BYTES = 1024 * 1024
    base = settings.PAAS_BASE_IMAGES["static"]
    root = _repo(tmp_path, f"FROM {base}\n", {"big.bin": b"x" * (2 * 1024 * 1024)})
    tag = images("bigcontext")
    assert _fails(engine, root, tag).code == "build_context_too_large"
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(tag)


def test_files_the_dockerignore_leaves_out_do_not_count(settings, tmp_path):
    settings.PAAS_BUILD_CONTEXT_MAX_BYTES = 1024 * 1024
    root = _repo(tmp_path, "FROM x\n", {"big.bin": b"x" * (2 * 1024 * 1024)})
    (root / ".dockerignore").write_text("# not sent\nbig.bin\n")
    check_context_size(root)  # no error


def test_an_image_over_the_cap_fails_and_is_removed(settings, engine, images, tmp_path):
    settings.PAAS_IMAGE_MAX_BYTES = 1024 * 1024  # smaller than any base image
    base = settings.PAAS_BASE_IMAGES["static"]
    tag = images("bigimage")
    error = _fails(engine, _repo(tmp_path, f"FROM {base}\nRUN true\n"), tag)
    assert error.code == "image_too_large"
    assert "PAAS_IMAGE_MAX_BYTES" in error.message
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(tag)


@pytest.mark.django_db
def test_an_owner_at_the_build_limit_waits(settings, make_app, outsider):
    settings.PAAS_BUILDS_PER_USER = 1
    first, second = _pending(make_app("first")), _pending(make_app("second"))
    theirs = _pending(make_app("theirs", user=outsider))
    assert claim(first.pk) == CLAIMED
    assert claim(second.pk) == BUSY  # the owner's one build slot is taken
    assert claim(theirs.pk) == CLAIMED  # another owner's build does not wait
    first.refresh_from_db()
    first.mark_starting()  # the build is over; starting takes no build slot
    assert claim(second.pk) == CLAIMED


def _pending(app):
    deployment = app.new_deployment(app.environment("production"))
    assert deployment.status == Status.PENDING
    return deployment


def _wait_for(check, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    return check()
