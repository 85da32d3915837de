"""Issue 12, item 3: a build over a limit fails with that limit's error code, on the real
engine with tiny limits set in-process; and one owner's builds wait for a free slot."""

import re
import threading
import time
import uuid
from pathlib import Path

import docker
import pytest

from deployments.adapters.builders import BuildError, BuildPlan, build_image
from deployments.adapters.builders.build_cgroup import CGROUP_ROOT, BuildCgroup
from deployments.adapters.builders.build_limits import check_context_size
from deployments.models import Status
from deployments.workers.pipeline import BUSY, CLAIMED, claim
from tests.support import containers

TEST_LABEL = "slipway.test"
PLAN = BuildPlan("dockerfile", "Dockerfile", "")


def _repo(root: Path, dockerfile: str, files: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (root / name).write_bytes(data)
    return root


def _fails(engine, root: Path, tag: str, log=print) -> BuildError:
    with pytest.raises(BuildError) as info:
        build_image(engine, root, PLAN, tag, {TEST_LABEL: "1"}, log)
    assert info.value.user_fault
    return info.value


def _containers_running(engine, marker: str) -> list:
    found = containers(status="running")  # one that ends meanwhile is simply not there
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


def test_a_fork_bomb_stops_at_the_pids_limit(settings, engine, images, tmp_path):
    settings.PAAS_BUILD_PIDS = 64
    base = settings.PAAS_BASE_IMAGES["static"]
    bomb = "RUN for i in $(seq 1 2000); do sleep 30 & done\n"  # passes with no limit
    started = time.monotonic()
    error = _fails(engine, _repo(tmp_path, f"FROM {base}\n{bomb}"), images("forks"))
    assert error.code == "build_pids_exceeded"
    assert "PAAS_BUILD_PIDS" in error.message and "64" in error.message
    assert time.monotonic() - started < 20


def test_steps_run_under_the_builds_own_cgroup_which_goes_afterwards(
    settings, engine, images, tmp_path
):
    settings.PAAS_BUILD_PIDS = 100
    base = settings.PAAS_BASE_IMAGES["static"]
    lines: list[str] = []
    root = _repo(tmp_path, f"FROM {base}\nRUN cat /proc/self/cgroup # {uuid.uuid4().hex}\n")
    build_image(engine, root, PLAN, images("cgroup"), {TEST_LABEL: "1"}, lines.append)
    found = [re.match(r"\d+:pids:/(slipway-build-\w+)/", line) for line in lines]
    names = [match[1] for match in found if match]
    assert names, lines
    assert not list(CGROUP_ROOT.glob(f"*/{names[0]}"))  # in no hierarchy any more


def test_a_host_without_a_pids_hierarchy_refuses_to_build(tmp_path):
    with pytest.raises(BuildError) as info, BuildCgroup(64, root=tmp_path):
        pass
    assert info.value.code == "build_limits_unavailable" and not info.value.user_fault


def test_a_step_writing_past_the_disk_cap_is_stopped(settings, engine, images, tmp_path):
    settings.PAAS_BUILD_DISK_MAX_BYTES = 50 * 1024 * 1024
    marker = f"disk-{uuid.uuid4().hex[:8]}"
    base = settings.PAAS_BASE_IMAGES["static"]
    # 200 MiB a mebibyte at a time, slowly enough that a poll a second sees it early.
    write = "for i in $(seq 200); do dd if=/dev/zero bs=1M count=1 status=none >> /big; "
    step = f"RUN echo {marker}; {write}sleep 0.02; done; echo all-written-{marker}\n"
    lines: list[str] = []
    root = _repo(tmp_path, f"FROM {base}\n{step}")
    started = time.time()
    error = _fails(engine, root, images("disk"), lines.append)
    assert error.code == "build_disk_exceeded"
    assert "PAAS_BUILD_DISK_MAX_BYTES" in error.message and "50.0 MiB" in error.message
    assert f"all-written-{marker}" not in lines  # the step's own line names it too
    assert not _made_by_step(engine, marker, started)  # forcerm took the killed step's container


def test_a_step_writing_under_the_disk_cap_passes(settings, engine, images, tmp_path):
    settings.PAAS_BUILD_DISK_MAX_BYTES = 50 * 1024 * 1024
    base = settings.PAAS_BASE_IMAGES["static"]
    step = f"RUN dd if=/dev/zero of=/small bs=1M count=5 status=none # {uuid.uuid4().hex}\n"
    tag = images("smalldisk")
    build_image(
        engine, _repo(tmp_path, f"FROM {base}\n{step}"), PLAN, tag, {TEST_LABEL: "1"}, print
    )
    assert engine.images.get(tag)


def _made_by_step(engine, marker: str, since: float) -> list:
    """Containers (any state) and images (dangling or intermediate, made since `since`) of
    a RUN naming `marker`."""
    commands = [(c, c.attrs["Config"]["Cmd"]) for c in containers()]
    summaries = engine.api.images(all=True)  # not images.list: it inspects every image
    for image in [i["Id"] for i in summaries if i["Created"] >= int(since)]:
        commands.append((image, engine.api.inspect_image(image)["ContainerConfig"]["Cmd"]))
    return [thing for thing, command in commands if marker in " ".join(command or [])]


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
