"""The Docker runtime backend against the real engine (no engine: these fail, never skip)."""

import io
import threading
import time
import uuid

import docker
import pytest

from deployments import wiring
from deployments.adapters.runtime import (
    ContainerExited,
    ContainerSpec,
    Endpoint,
    EngineError,
    HealthCheckFailed,
)
from deployments.adapters.runtime.docker import (
    HEALTH_FAST_SECONDS,
    HEALTH_POLL_FAST,
    POLL_INTERVAL,
    DockerRuntime,
    health_pause,
)
from tests.support import wait_for

BASE_IMAGE = "slipway/python:bookworm"
SERVE = ["python3", "-m", "http.server", "--bind", "0.0.0.0"]
SECRET = "s3cret-value-that-must-stay-in-the-body"


@pytest.fixture(scope="module")
def engine():
    return docker.from_env()


def build_image(engine, labels):
    """A tiny image FROM the base, labelled so the image cleanup has something to find."""
    label_lines = "".join(f"LABEL {key}={value}\n" for key, value in labels.items())
    dockerfile = f"FROM {BASE_IMAGE}\n{label_lines}"
    image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
    return image.id


def runtime_label_filter(labels):
    return [f"{key}={value}" for key, value in labels.items()]


@pytest.fixture(scope="module")
def built_image(engine):
    image_id = build_image(engine, {"slipway.test": uuid.uuid4().hex})
    yield image_id
    try:
        engine.images.remove(image_id, force=True)
    except docker.errors.NotFound:
        pass


@pytest.fixture
def labels():
    return {"slipway.test": uuid.uuid4().hex}


@pytest.fixture
def runtime(engine, labels):
    runtime = DockerRuntime(engine)
    yield runtime
    runtime.remove_by_labels(labels)
    runtime.remove_network(network_name(labels))
    runtime.remove_images_with_labels(labels)


def network_name(labels):
    return f"slipway-test-{labels['slipway.test'][:12]}"


def make_spec(labels, image, command, port=8000, env=None, suffix="web"):
    return ContainerSpec(
        name=f"{network_name(labels)}-{suffix}",
        image=image,
        env=env or {"PORT": str(port)},
        port=port,
        labels=labels,
        network=network_name(labels),
        memory="512m",
        cpus=1.0,
        command=command,
    )


def start(runtime, labels, image, command, **kwargs):
    runtime.ensure_network(network_name(labels), labels)
    spec = make_spec(labels, image, command, **kwargs)
    return runtime.start(spec)


def test_it_starts_a_web_server_and_health_checks_it_quickly(runtime, labels, built_image):
    container_id = start(runtime, labels, built_image, [*SERVE, "8000"])
    endpoint = runtime.endpoint(container_id, network_name(labels))
    assert endpoint.port == 8000 and str(endpoint) == f"{endpoint.host}:8000"
    lines = []
    seconds = runtime.wait_healthy(container_id, endpoint, timeout=30, log=lines.append)
    assert 0 <= seconds < 5
    assert "answered HTTP 200" in lines[-1]
    assert runtime.is_running(container_id)


def test_the_health_check_polls_fast_while_most_apps_start():
    # Every probe later than the app's first answer delays the switch by the pause.
    assert health_pause(0) == health_pause(HEALTH_FAST_SECONDS - 0.01) == HEALTH_POLL_FAST
    assert HEALTH_POLL_FAST <= 0.03
    assert health_pause(HEALTH_FAST_SECONDS) == POLL_INTERVAL  # then as every other poll


def test_env_reaches_the_app_in_a_locked_down_container(runtime, labels, built_image, engine):
    env = {"PORT": "8000", "API_TOKEN": SECRET}
    container_id = start(runtime, labels, built_image, [*SERVE, "8000"], env=env)
    container = engine.containers.get(container_id)
    assert f"API_TOKEN={SECRET}" in container.exec_run("env").output.decode()
    host = container.attrs["HostConfig"]
    assert host["Privileged"] is False
    assert not host["Binds"] and not container.attrs["Mounts"]
    assert "docker.sock" not in str(container.attrs)
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert "NET_RAW" in host["CapDrop"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert host["Memory"] == 512 * 1024 * 1024 and host["NanoCpus"] == 1_000_000_000
    assert SECRET not in " ".join(container.attrs["Args"] + [container.attrs["Path"]])


def test_the_spec_repr_hides_env_values(labels):
    spec = make_spec(labels, "img", None, env={"API_TOKEN": SECRET})
    assert SECRET not in repr(spec) and "API_TOKEN" in repr(spec)


def test_a_crashing_app_raises_container_exited_with_its_output(runtime, labels, built_image):
    container_id = start(runtime, labels, built_image, ["sh", "-c", "echo boom; exit 1"])
    # It may be gone before it has an address: probe a port that never answers instead.
    silent = Endpoint("127.0.0.1", 9)
    with pytest.raises(ContainerExited) as caught:
        runtime.wait_healthy(container_id, silent, timeout=20, log=lambda _: None)
    assert "boom" in caught.value.logs_tail
    assert caught.value.exit_code == 1
    assert caught.value.code == "app_crashed" and caught.value.user_fault


def test_a_crash_is_reported_with_its_exit_code_after_the_restart_policy_restarted_it(
    runtime, labels, built_image
):
    # The first run crashes with 3; the restart policy's second run keeps running, so
    # inspect says "running", exit code 0 — the crash must still be reported as 3.
    once = "if [ -f /tmp/crashed ]; then sleep 600; else touch /tmp/crashed; echo boom; exit 3; fi"
    container_id = start(runtime, labels, built_image, ["sh", "-c", once])
    wait_for(lambda: _restarted_and_running(container_id), timeout=20, message="a restart")
    with pytest.raises(ContainerExited) as caught:
        runtime.wait_healthy(container_id, Endpoint("127.0.0.1", 9), timeout=5, log=lambda _: None)
    assert caught.value.exit_code == 3
    assert "boom" in caught.value.logs_tail


def _restarted_and_running(container_id: str) -> bool:
    attrs = docker.from_env().api.inspect_container(container_id)
    return attrs["RestartCount"] > 0 and attrs["State"]["Status"] == "running"


def test_an_app_on_the_wrong_port_fails_the_health_check_in_time(runtime, labels, built_image):
    container_id = start(runtime, labels, built_image, [*SERVE, "8001"], port=8000)
    endpoint = runtime.endpoint(container_id, network_name(labels))
    started = time.monotonic()
    with pytest.raises(HealthCheckFailed) as caught:
        runtime.wait_healthy(container_id, endpoint, timeout=3, log=lambda _: None)
    assert 2.8 < time.monotonic() - started < 5
    assert caught.value.code == "health_check_timeout" and caught.value.user_fault


def test_logs_page_with_a_cursor_without_repeats_or_gaps(runtime, labels, built_image):
    # Docker stamps stdout and stderr lines in separate goroutines, so their relative
    # order is the daemon's: stderr speaks once, well before stdout's numbered lines.
    script = (
        "import sys, time\n"
        "print('from stderr', file=sys.stderr, flush=True)\n"
        "time.sleep(0.1)\n"
        "for i in range(40):\n"
        "    print(f'line {i}', flush=True)\n"
        "    if i % 10 == 0: time.sleep(0.01)\n"
        "time.sleep(600)\n"
    )
    container_id = start(runtime, labels, built_image, ["python3", "-u", "-c", script])
    _wait_for(lambda: len(runtime.logs(container_id)) >= 41)
    last_five = [text for _, text in runtime.logs(container_id, limit=5)]
    assert last_five == [f"line {i}" for i in range(35, 40)]
    seen = runtime.logs(container_id, limit=100)[:7]
    cursor = seen[-1][0]
    while page := runtime.logs(container_id, since_ns=cursor, limit=7):
        assert len(page) <= 7
        seen.extend(page)
        cursor = page[-1][0]
    assert [text for _, text in seen] == ["from stderr"] + [f"line {i}" for i in range(40)]
    assert [ns for ns, _ in seen] == sorted(ns for ns, _ in seen)
    assert runtime.logs(container_id, since_ns=cursor) == []


def test_start_replaces_a_stale_container_left_by_an_earlier_attempt(runtime, labels, built_image):
    first = start(runtime, labels, built_image, [*SERVE, "8000"])
    second = start(runtime, labels, built_image, [*SERVE, "8000"])
    assert first != second
    assert [c.id for c in runtime.containers_with_labels(labels)] == [second]


def test_start_retries_a_transient_engine_error(runtime, labels, built_image, monkeypatch):
    collection = type(runtime.client.containers)
    real_create = collection.create
    calls = []

    def flaky_create(self, **kwargs):
        calls.append(kwargs["name"])
        if len(calls) == 1:
            raise docker.errors.APIError("500 Server Error", explanation="engine hiccup")
        return real_create(self, **kwargs)

    monkeypatch.setattr(collection, "create", flaky_create)
    container_id = start(runtime, labels, built_image, [*SERVE, "8000"])
    assert len(calls) == 2 and runtime.is_running(container_id)


def test_start_refuses_to_remove_a_container_it_does_not_own(runtime, labels, built_image, engine):
    spec = make_spec(labels, built_image, [*SERVE, "8000"])
    runtime.ensure_network(spec.network, labels)
    foreign = engine.containers.create(built_image, name=spec.name, labels={"other": "x"})
    try:
        with pytest.raises(EngineError):
            runtime.start(spec)
        assert engine.containers.get(foreign.id)
    finally:
        foreign.remove(force=True)


def test_stop_restart_and_is_running(runtime, labels, built_image):
    container_id = start(runtime, labels, built_image, [*SERVE, "8000"])
    started = time.monotonic()
    runtime.stop(container_id, timeout=10)
    assert time.monotonic() - started < 5  # the init forwards SIGTERM: no 10 s wait
    assert not runtime.is_running(container_id)
    runtime.restart(container_id)
    assert runtime.is_running(container_id)
    runtime.remove(container_id)
    runtime.remove(container_id)  # already gone: fine
    assert not runtime.is_running(container_id)


def test_ensure_network_is_idempotent_even_when_raced(runtime, labels, engine):
    name = network_name(labels)
    ids = []
    threads = [
        threading.Thread(target=lambda: ids.append(runtime.ensure_network(name, labels)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and len(ids) == 4
    assert [n.id for n in engine.networks.list(names=[name]) if n.name == name] == ids[:1]
    assert runtime.ensure_network(name, labels) == ids[0]


def test_ensure_network_heals_twins_made_by_someone_else(runtime, labels, engine):
    name = network_name(labels)
    first = engine.networks.create(name, labels=labels)
    engine.networks.create(name, labels=labels)
    assert runtime.ensure_network(name, labels) == first.id
    assert [n.id for n in engine.networks.list(names=[name]) if n.name == name] == [first.id]


def test_cleanup_by_labels_leaves_no_container_network_or_image(runtime, labels, engine):
    name = network_name(labels)
    image = build_image(engine, labels)
    start(runtime, labels, image, [*SERVE, "8000"])
    start(runtime, labels, image, ["sleep", "600"], suffix="worker")
    assert runtime.remove_images_with_labels(labels).in_use == [image]
    assert runtime.remove_network(name) is False  # containers still attached
    assert len(runtime.containers_with_labels(labels)) == 2
    assert runtime.remove_by_labels(labels) == 2
    assert runtime.containers_with_labels(labels) == []
    assert runtime.remove_network(name) is True
    assert runtime.remove_network(name) is True  # already gone: fine
    assert not [n for n in engine.networks.list(names=[name]) if n.name == name]
    assert runtime.remove_images_with_labels(labels).removed == [image]
    assert not engine.images.list(filters={"label": runtime_label_filter(labels)})


def test_an_unreachable_engine_raises_engine_unreachable(settings):
    settings.PAAS_DOCKER_HOST = "unix:///nonexistent/docker.sock"
    with pytest.raises(EngineError) as caught:
        wiring.runtime().is_running("anything")
    assert caught.value.code == "engine_unreachable" and not caught.value.user_fault


def _wait_for(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_volume_sizes_come_from_one_disk_usage_report(engine):
    runtime = DockerRuntime()
    names = [f"slipwaytest-size-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        engine.volumes.create(name)
    reports = []
    original = runtime.client.api.df

    def counted_df():
        reports.append(1)
        return original()

    runtime.client.api.df = counted_df
    try:
        engine.containers.run(
            "slipway/debian:bookworm",
            ["sh", "-c", "head -c 300000 /dev/zero > /data/blob"],
            volumes={names[0]: {"bind": "/data"}},
            remove=True,
        )
        sizes = runtime.volume_sizes([*names, "slipwaytest-size-missing"])
    finally:
        for name in names:
            engine.volumes.get(name).remove(force=True)
    assert len(reports) == 1
    assert sizes[names[0]] >= 300000 and sizes[names[1]] == 0
    assert sizes["slipwaytest-size-missing"] is None
