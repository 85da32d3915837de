"""What the health check says, and does, when an app does not answer on $PORT: read from
the container's /proc/net/tcp{,6} on the real engine, and parsed from known kernel text."""

import pytest

from deployments.adapters.runtime import ContainerExited, Endpoint, HealthCheckFailed
from deployments.adapters.runtime.listening import Listener, hint, other_port, parse_proc_net

# The runtime tests' fixtures (a base image, labels, a runtime that cleans up after itself).
from tests.deployments.test_runtime_docker import (  # noqa: F401
    built_image,
    engine,
    labels,
    network_name,
    runtime,
    start,
)

PROC_NET = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:2328 00000000000000000000000000000000:0000 0A 0 0
   1: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 0 0
"""


def test_listening_sockets_are_read_from_proc_net_text():
    assert parse_proc_net(PROC_NET) == [
        Listener("::1", 80),
        Listener("127.0.0.1", 3000),
        Listener("0.0.0.0", 8080),
        Listener("::", 9000),
    ]  # the established connection (state 01) is not listening


def test_one_other_port_on_all_interfaces_is_taken_and_ambiguity_is_not():
    assert other_port([Listener("0.0.0.0", 8080)], 5000) == 8080
    assert other_port([Listener("0.0.0.0", 8080), Listener("::", 8080)], 5000) == 8080
    assert other_port([Listener("0.0.0.0", 5000), Listener("0.0.0.0", 8080)], 5000) is None
    assert other_port([Listener("0.0.0.0", 8080), Listener("0.0.0.0", 9090)], 5000) is None
    assert other_port([Listener("127.0.0.1", 8080)], 5000) is None
    assert other_port([], 5000) is None


@pytest.mark.parametrize(
    "listeners, words",
    [
        ([Listener("127.0.0.1", 3000)], "listens on 127.0.0.1:3000 only: bind 0.0.0.0"),
        (
            [Listener("0.0.0.0", 8080), Listener("0.0.0.0", 9090)],
            "listens on 0.0.0.0:8080, 0.0.0.0:9090, not on $PORT (5000)",
        ),
        ([], "listens on no TCP port"),
    ],
)
def test_the_hint_says_what_to_change(listeners, words):
    assert words in hint(listeners, 5000)


def test_an_app_on_a_fixed_port_is_found_and_routed_there(runtime, labels, built_image):  # noqa: F811
    """PORT says 8000; the app binds 0.0.0.0:8080 whatever it says: the probe follows it."""
    command = ["python3", "-m", "http.server", "--bind", "0.0.0.0", "8080"]
    container = start(runtime, labels, built_image, command, port=8000)
    endpoint = runtime.endpoint(container, network_name(labels))
    found, lines = [], []
    runtime.wait_healthy(container, endpoint, timeout=20, log=lines.append, on_port=found.append)
    assert [e.port for e in found] == [8080] and found[0].host == endpoint.host
    assert any(
        "listens on port 8080, not on $PORT (8000): routing to 8080" in line for line in lines
    )
    assert runtime.endpoint(container, network_name(labels), port=8080) == found[0]


def test_an_app_bound_to_loopback_times_out_with_the_hint(runtime, labels, built_image):  # noqa: F811
    command = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "8000"]
    container = start(runtime, labels, built_image, command, port=8000)
    endpoint = runtime.endpoint(container, network_name(labels))
    with pytest.raises(HealthCheckFailed) as failure:
        runtime.wait_healthy(container, endpoint, timeout=4, log=lambda _: None, on_port=print)
    assert "listens on 127.0.0.1:8000 only: bind 0.0.0.0" in failure.value.message


def test_an_app_that_exits_at_once_with_0_is_told_to_set_a_start_command(
    runtime,  # noqa: F811
    labels,  # noqa: F811
    built_image,  # noqa: F811
):
    container = start(runtime, labels, built_image, ["true"], port=8000)
    with pytest.raises(ContainerExited) as failure:
        runtime.wait_healthy(container, Endpoint("127.0.0.1", 9), timeout=10, log=lambda _: None)
    assert failure.value.exit_code == 0
    assert "left nothing listening" in failure.value.message
    assert "start command" in failure.value.message
