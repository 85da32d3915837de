"""Builds and app containers reach neither the host nor non-public networks (issue 12, item 2).

Against the real engine and iptables. The private and link-local targets live in a network
namespace made here (a veth pair carrying 192.168.213.1 and 169.254.213.1), so no traffic
leaves this machine; every network wait is bounded to a few seconds.
"""

import contextlib
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Network
from pathlib import Path

import docker
import pytest
import requests

from deployments import wiring
from deployments.adapters.builders import BuildError, BuildPlan, build_image
from deployments.adapters.builders.remote_sources import (
    add_sources,
    check_add_sources,
    refuse_private_sources,
    source_problem,
)
from deployments.adapters.egress import parse_allow
from deployments.adapters.firewall import Firewall
from deployments.workers.networks import ensure_app_network, ensure_build_network
from tests.deployments.conftest import TEST_LABEL
from tests.support import wait_for

IMAGE = "slipway/python:bookworm"
PRIVATE, LINK_LOCAL = "192.168.213.1", "169.254.213.1"  # in the namespace
HOST_SIDE = {PRIVATE: "192.168.213.2/24", LINK_LOCAL: "169.254.213.2/24"}
NS_PORT = 8213
# Prints what it reached (or why not); with a second argument a miss exits 3 (a failed RUN).
PROBE = """
import sys, urllib.request
try:
    print("reached", urllib.request.urlopen(sys.argv[1], timeout=2).read(64))
except Exception as exc:
    print("blocked", exc)
    sys.exit(3 if len(sys.argv) > 2 else 0)
"""

pytestmark = pytest.mark.django_db


# --- fixtures ---------------------------------------------------------------------------------


class _Counting(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.server.hits += 1
        body = b"host-secret"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def host_server():
    """An HTTP server of the host on all interfaces, as a host-local admin API would be."""
    server = ThreadingHTTPServer(("0.0.0.0", 0), _Counting)
    server.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def firewall():
    """This installation's rules, as scripts/test applies them; put back after a test that
    re-applies them with an allow list."""
    rules = wiring.firewall()
    rules.apply()
    yield rules
    wiring.firewall().apply()


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


@pytest.fixture
def namespace():
    """A network namespace behind a veth pair, serving HTTP on a private and a link-local
    address: a LAN host and a metadata service the containers must not reach."""
    tag = uuid.uuid4().hex[:6]
    name, host_end, ns_end = f"slpeg-{tag}", f"veg{tag}h", f"veg{tag}n"
    _ip("netns", "add", name)
    server = None
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", name)
        for address in HOST_SIDE.values():
            _ip("addr", "add", address, "dev", host_end)
        _ip("link", "set", host_end, "up")
        for address in (PRIVATE, LINK_LOCAL):
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", ns_end)
        _ip("-n", name, "link", "set", ns_end, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "route", "add", "default", "via", HOST_SIDE[PRIVATE].split("/")[0])
        command = ["ip", "netns", "exec", name, "python3", "-m", "http.server"]
        server = subprocess.Popen(
            [*command, "--bind", "0.0.0.0", str(NS_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _answers(f"http://{PRIVATE}:{NS_PORT}/"), timeout=10, message="the ns")
        yield name
    finally:
        if server:
            server.kill()
            server.wait(timeout=5)
        _ip("link", "del", host_end, check=False)
        _ip("netns", "del", name, check=False)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def app_network(make_app):
    """A real app network on the pool (as a deployment makes it); the containers started on
    it and the network itself go afterwards."""
    runtime = wiring.runtime()
    made = []

    def make(name: str) -> str:
        app = make_app(f"egress-{name}-{uuid.uuid4().hex[:6]}")
        ensure_app_network(app, runtime)
        made.append(app.network)
        return app.network

    yield make
    client = runtime.client
    for network in made:
        for container in client.containers.list(all=True, filters={"network": network}):
            container.remove(force=True)
        runtime.remove_network(network)


@pytest.fixture
def container(app_network):
    """factory(network, *command): a running container on the network (python's base image)."""
    client = wiring.runtime().client
    started = []

    def start(network: str, command=("sleep", "120")):
        started.append(
            client.containers.run(
                IMAGE,
                list(command),
                name=f"{network}-{len(started)}",
                network=network,
                detach=True,
                labels={TEST_LABEL: "egress"},
            )
        )
        return started[-1]

    yield start
    for each in started:
        with contextlib.suppress(Exception):
            each.remove(force=True)


def fetch_from(container, url: str) -> str:
    _, output = container.exec_run(["python3", "-c", PROBE, url])
    return output.decode().strip()


def gateway_of(network: str) -> str:
    attrs = wiring.runtime().client.networks.get(network).attrs
    return attrs["IPAM"]["Config"][0]["Gateway"]


def address_on(container, network: str) -> str:
    container.reload()
    return container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def with_allow(*entries: str) -> Firewall:
    rules = wiring.firewall()
    rules.allow = parse_allow(entries)
    rules.apply()
    return rules


# --- app containers -------------------------------------------------------------------------


def test_an_app_cannot_reach_a_host_service_the_host_itself_reaches(
    firewall, host_server, app_network, container
):
    network = app_network("host")
    box = container(network)
    port = host_server.server_address[1]
    gateway = gateway_of(network)
    assert fetch_from(box, f"http://{gateway}:{port}/").startswith("blocked")
    assert host_server.hits == 0
    assert requests.get(f"http://{gateway}:{port}/", timeout=2).text == "host-secret"
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=2).text == "host-secret"


def test_an_app_cannot_reach_a_private_or_link_local_address(
    firewall, namespace, app_network, container
):
    box = container(app_network("lan"))
    for address in (PRIVATE, LINK_LOCAL):
        assert fetch_from(box, f"http://{address}:{NS_PORT}/").startswith("blocked"), address
        assert _answers(f"http://{address}:{NS_PORT}/")  # the host does reach it


def test_an_allowed_address_becomes_reachable_and_only_it(
    firewall, namespace, app_network, container
):
    box = container(app_network("allowed"))
    with_allow(f"{PRIVATE}/32")
    assert fetch_from(box, f"http://{PRIVATE}:{NS_PORT}/").startswith("reached")
    assert fetch_from(box, f"http://{LINK_LOCAL}:{NS_PORT}/").startswith("blocked")


def test_an_app_reaches_its_add_on_on_its_network_but_no_other_app(
    firewall, app_network, container
):
    network, other_network = app_network("own"), app_network("other")
    serve = ("python3", "-m", "http.server", "--bind", "0.0.0.0", "8000")
    addon, stranger = container(network, serve), container(other_network, serve)
    box = container(network)
    addon_url = f"http://{address_on(addon, network)}:8000/"
    wait_for(lambda: fetch_from(box, addon_url).startswith("reached"), timeout=10, message="add-on")
    assert fetch_from(box, f"http://{addon.name}:8000/").startswith("reached")  # by name
    stranger_url = f"http://{address_on(stranger, other_network)}:8000/"
    assert fetch_from(box, stranger_url).startswith("blocked")  # Docker's isolation holds


def test_an_app_resolves_names_and_reaches_a_public_package_mirror(
    firewall, app_network, container
):
    box = container(app_network("public"))
    url = "http://deb.debian.org/debian/dists/bookworm/Release"
    # The host's nameserver is private here: the DNS hole in the rules is what makes this work.
    assert fetch_from(box, url).startswith("reached")


def test_app_containers_have_no_ipv6(firewall, app_network, container):
    box = container(app_network("v6"))
    _, output = box.exec_run(["cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"])
    assert output.decode().strip() == "1"


# --- builds -------------------------------------------------------------------------------------


def _dockerfile_build(tmp_path: Path, images, body: str):
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nCOPY probe.py /probe.py\n{body}\n")
    lines: list[str] = []
    plan = BuildPlan("dockerfile", "Dockerfile", "")
    network = ensure_build_network(wiring.runtime())
    client = wiring.runtime().client
    build_image(client, tmp_path, plan, images("egress"), {TEST_LABEL: "1"}, lines.append, network)
    return lines


def _run_probe(url: str) -> str:
    # A nonce, so that no cached layer of an earlier run answers for this one.
    return f"RUN python3 /probe.py {url} strict # {uuid.uuid4().hex}"


def test_a_build_step_cannot_reach_private_link_local_or_host_addresses(
    firewall, namespace, host_server, images, tmp_path
):
    gateway = gateway_of(ensure_build_network(wiring.runtime()))
    targets = [f"http://{PRIVATE}:{NS_PORT}/", f"http://{LINK_LOCAL}:{NS_PORT}/"]
    targets.append(f"http://{gateway}:{host_server.server_address[1]}/")
    for url in targets:
        with pytest.raises(BuildError) as caught:
            _dockerfile_build(tmp_path, images, _run_probe(url))
        assert caught.value.code == "build_failed", url
        assert "blocked" in caught.value.message
    assert host_server.hits == 0


def test_a_build_step_reaches_an_allowed_address(firewall, namespace, images, tmp_path):
    with_allow(LINK_LOCAL)
    lines = _dockerfile_build(tmp_path, images, _run_probe(f"http://{LINK_LOCAL}:{NS_PORT}/"))
    assert any("reached" in line for line in lines)


def test_the_build_network_is_on_the_pool(settings):
    network = ensure_build_network(wiring.runtime())
    subnet = IPv4Network(wiring.runtime().network_subnet(network))
    assert subnet.subnet_of(IPv4Network(settings.PAAS_NETWORK_POOL))
    assert ensure_build_network(wiring.runtime()) == network  # made once


# --- ADD <url>: the engine fetches it itself, so it is refused before the build ---------------


def test_a_remote_add_is_refused_before_anything_is_built(engine, images, tmp_path):
    tag = images("remoteadd")
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nADD https://example.com/x /x\n")
    plan = BuildPlan("dockerfile", "Dockerfile", "")
    lines: list[str] = []
    with pytest.raises(BuildError) as caught:
        build_image(engine, tmp_path, plan, tag, {TEST_LABEL: "1"}, lines.append)
    assert caught.value.code == "remote_add_refused" and caught.value.user_fault
    assert (
        "RUN curl" in caught.value.message and "PAAS_BUILD_ALLOW_REMOTE_ADD" in caught.value.message
    )
    assert lines == []  # not a step ran
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(tag)


def test_any_url_source_is_refused_unless_the_operator_allows_remote_add():
    for dockerfile in ("ADD http://8.8.8.8/x /x", "ONBUILD ADD HTTPS://8.8.8.8/x /x"):
        with pytest.raises(BuildError) as caught:
            check_add_sources(f"FROM {IMAGE}\n{dockerfile}\n", False, [])
        assert caught.value.code == "remote_add_refused", dockerfile
        check_add_sources(f"FROM {IMAGE}\n{dockerfile}\n", True, [])  # a public host, checked
    check_add_sources(f"FROM {IMAGE}\nADD app.tar.gz /srv/\n", False, [])
    with pytest.raises(BuildError) as caught:  # a variable could still make it a URL
        check_add_sources(f"FROM {IMAGE}\nADD $FROM_A_BASE_IMAGE /x\n", False, [])
    assert caught.value.code == "build_network_refused"


def test_add_from_loopback_fails_before_anything_is_fetched(
    settings, host_server, images, tmp_path
):
    settings.PAAS_BUILD_ALLOW_REMOTE_ADD = True  # the checked mode: the host is refused
    url = f"http://127.0.0.1:{host_server.server_address[1]}/x"
    with pytest.raises(BuildError) as caught:
        _dockerfile_build(tmp_path, images, f"ADD {url} /x")
    assert caught.value.code == "build_network_refused"
    assert "127.0.0.1" in caught.value.message and "PAAS_EGRESS_ALLOW" in caught.value.message
    assert host_server.hits == 0


def test_add_from_link_local_fails_before_anything_is_fetched(
    settings, namespace, images, tmp_path
):
    settings.PAAS_BUILD_ALLOW_REMOTE_ADD = True
    hits_before = _ns_requests(namespace)
    with pytest.raises(BuildError) as caught:
        _dockerfile_build(tmp_path, images, f"ADD --chown=1:1 http://{LINK_LOCAL}:{NS_PORT}/ /x")
    assert caught.value.code == "build_network_refused"
    assert _ns_requests(namespace) == hits_before


def _ns_requests(namespace: str) -> int:
    """TCP connections the namespace has accepted so far (its PassiveOpens counter)."""
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, "cat", "/proc/net/snmp"],
        capture_output=True,
        text=True,
        timeout=5,
    )
    tcp = [line.split() for line in done.stdout.splitlines() if line.startswith("Tcp:")]
    return int(tcp[1][tcp[0].index("PassiveOpens")])


@pytest.mark.parametrize(
    "dockerfile",
    [
        "ADD http://169.254.169.254/latest /x",
        "ADD --checksum=sha256:00 http://169.254.169.254/latest/meta-data/ /x",
        'ADD ["http://10.0.0.1/a", "/b"]',
        "ADD https://user:pw@deb.debian.org/debian/ /x",
        "ONBUILD ADD http://localhost:2019/config /x",
        "ARG ADMIN=http://127.0.0.1:2019\nADD ${ADMIN}/config /x",
        "ADD \\\n  http://[::1]/ \\\n  /x",
        "ADD $FROM_A_BASE_IMAGE /x",
        "ADD http://2130706433/ /x",
    ],
)
def test_add_sources_on_non_public_hosts_are_refused(dockerfile):
    with pytest.raises(BuildError) as caught:
        refuse_private_sources(f"FROM {IMAGE}\n{dockerfile}\n", [])
    assert caught.value.code == "build_network_refused"


def test_local_sources_and_public_urls_pass():
    dockerfile = (
        "ARG MIRROR=http://8.8.8.8\nADD app.tar.gz /srv/\nADD src/$UNSET_SUBDIR /x\n"
        "ADD ${MIRROR}/x /x\n"
    )
    refuse_private_sources(dockerfile, [])
    assert list(add_sources(dockerfile)) == ["app.tar.gz", "src/$UNSET_SUBDIR", "http://8.8.8.8/x"]


def test_the_classification_of_hosts():
    assert source_problem("http://8.8.8.8/x", []) is None
    assert source_problem("https://[2001:4860:4860::8888]/x", []) is None
    assert source_problem("http://203.0.113.80/x", []) is None  # documentation range: public
    for url in (
        "http://localhost/",
        "http://127.0.0.1/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://169.254.169.254/",
        "http://224.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
    ):
        assert "non-public" in source_problem(url, []), url
    assert "does not resolve" in source_problem("http://nosuch.invalid/", [])


def test_an_allowed_address_may_be_added_from():
    allowed = parse_allow(["10.1.2.3/32", "192.168.5.0/24"])
    assert source_problem("http://10.1.2.3/x", allowed) is None
    assert source_problem("http://192.168.5.9/x", allowed) is None
    assert "non-public" in source_problem("http://10.1.2.4/x", allowed)


# --- the rules themselves ---------------------------------------------------------------------


def test_apply_is_idempotent_and_remove_takes_everything_out(settings):
    rules = Firewall(
        f"{settings.PAAS_INSTANCE}-fwcheck", IPv4Network(settings.PAAS_NETWORK_POOL), []
    )
    try:
        rules.apply()
        first = rules.show()
        rules.apply()
        assert rules.show() == first and rules.is_applied()
        assert _jumps("DOCKER-USER", rules.egress_chain) == 1
        assert _jumps("INPUT", rules.host_chain) == 1
    finally:
        rules.remove()
    rules.remove()  # twice is fine
    assert not rules.is_applied()
    assert _jumps("DOCKER-USER", rules.egress_chain) == 0


def _jumps(hook: str, chain: str) -> int:
    listed = subprocess.run(["iptables", "-S", hook], capture_output=True, text=True, timeout=10)
    return sum(1 for line in listed.stdout.splitlines() if line.endswith(f"-j {chain}"))


def test_a_malformed_allow_entry_is_named():
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        parse_allow(["10.0.0.300"])
