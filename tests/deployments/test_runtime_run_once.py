"""run_once: a container that runs to completion, against the real engine (no engine: these
fail, never skip)."""

import time
import uuid

import docker
import pytest

from deployments.adapters.runtime import ContainerSpec, ImageMissing
from deployments.adapters.runtime.docker import DockerRuntime
from tests.support import containers


@pytest.fixture
def labels():
    return {"slipway.test": uuid.uuid4().hex}


@pytest.fixture
def runtime(labels):
    runtime = DockerRuntime(docker.from_env())
    runtime.ensure_network(network_name(labels), labels)
    yield runtime
    runtime.remove_by_labels(labels)
    runtime.remove_network(network_name(labels))


def network_name(labels):
    return f"slipway-test-{labels['slipway.test'][:12]}"


def spec_for(labels, image, script, env=None):
    return ContainerSpec(
        name=f"{network_name(labels)}-run",
        image=image,
        env=env or {},
        port=5000,
        labels=labels,
        network=network_name(labels),
        memory="256m",
        cpus=0.5,
        command=["sh", "-c", script],
        restart=False,
    )


def left_behind(labels):
    return containers(label=f"slipway.test={labels['slipway.test']}")


def test_it_streams_output_lines_and_returns_exit_code_0(runtime, labels, local_image_id):
    lines = []
    script = 'echo one; echo "two $GREETING"; echo three >&2'
    spec = spec_for(labels, local_image_id, script, env={"GREETING": "hello"})
    outcome = runtime.run_once(spec, lines.append, timeout=30)
    assert outcome.exit_code == 0 and not outcome.timed_out and not outcome.cancelled
    # stdout keeps its order; stderr is a stream of its own, so where its line falls varies.
    assert [line for line in lines if line != "three"] == ["one", "two hello"]
    assert sorted(lines) == ["one", "three", "two hello"]
    assert left_behind(labels) == []


def test_a_failing_command_returns_its_exit_code(runtime, labels, local_image_id):
    lines = []
    outcome = runtime.run_once(
        spec_for(labels, local_image_id, "echo bye; exit 3"), lines.append, 30
    )
    assert outcome.exit_code == 3 and lines == ["bye"]
    assert left_behind(labels) == []


def test_lines_arrive_while_the_command_still_runs(runtime, labels, local_image_id):
    seen = []
    script = "echo first; sleep 3; echo second"
    runtime.run_once(
        spec_for(labels, local_image_id, script),
        lambda line: seen.append((line, time.monotonic())),
        30,
    )
    (first, at_first), (second, at_second) = seen
    assert (first, second) == ("first", "second")
    assert at_second - at_first > 2  # the first came before the command ended


def test_a_command_past_its_time_limit_is_killed(runtime, labels, local_image_id):
    lines = []
    started = time.monotonic()
    spec = spec_for(labels, local_image_id, "echo start; sleep 60")
    outcome = runtime.run_once(spec, lines.append, timeout=2)
    assert outcome.timed_out and not outcome.cancelled
    assert outcome.exit_code not in (None, 0)
    assert time.monotonic() - started < 15 and lines == ["start"]
    assert left_behind(labels) == []


def test_a_cancelled_command_is_killed(runtime, labels, local_image_id):
    lines = []
    spec = spec_for(labels, local_image_id, "echo start; sleep 60")
    outcome = runtime.run_once(spec, lines.append, timeout=60, cancelled=lambda: bool(lines))
    assert outcome.cancelled and not outcome.timed_out and outcome.exit_code != 0
    assert left_behind(labels) == []


def test_the_container_has_no_restart_policy_while_it_runs(runtime, labels, local_image_id):
    policies = []

    def look(line):
        (container,) = left_behind(labels)
        policies.append(container.attrs["HostConfig"]["RestartPolicy"]["Name"])

    runtime.run_once(spec_for(labels, local_image_id, "echo look"), look, 30)
    assert policies in (["no"], [""])


def test_a_missing_image_raises_image_missing_and_leaves_nothing(runtime, labels):
    spec = spec_for(labels, "slipway/no-such-image:never", "true")
    with pytest.raises(ImageMissing):
        runtime.run_once(spec, print, 10)
    assert left_behind(labels) == []
