"""The router end to end: a real worker, Docker, Traefik and the dashboard's gunicorn.

Routing by host for both environments, replicas that all take traffic and a killed one
that leaves the pool while requests keep succeeding, scaling, maintenance, protected and
internal environments, and the dashboard behind the router on loopback only.
"""

import http.client
import io
import socket
import subprocess
from collections import Counter

import docker
import pytest
import requests
from django.conf import settings
from django.core.management import call_command

from apps.models import App, Environment
from deployments import services
from deployments.services import routing
from tests.support import log_text, make_repo, sample_files, through_proxy, wait_final, wait_for

REQUESTS = 200


def _deploy(owner, tmp_path, name: str, replicas: int = 1, environment: str = "production"):
    files = sample_files("whoami", python_image=settings.PAAS_BASE_IMAGES["python"])
    app = App.objects.create(name=name, owner=owner, repository=str(make_repo(tmp_path, files)))
    Environment.objects.filter(app=app).update(replicas=replicas)
    deployment = wait_final(services.queue_deployment(app, environment))
    assert deployment.status == "succeeded", log_text(deployment)
    return app, deployment


def _host(app, environment="production") -> str:
    return app.environment(environment).hostname


def _answers(host: str, count: int = REQUESTS) -> Counter:
    """`count` requests on one keep-alive connection; a failure raises."""
    # A request that met the dying replica is retried on another one, after at most a few
    # 1 s connect timeouts: the client waits longer than that.
    connection = http.client.HTTPConnection("127.0.0.1", settings.PAAS_PROXY_HTTP_PORT, timeout=15)
    seen = Counter()
    try:
        for _ in range(count):
            connection.request("GET", "/", headers={"Host": host})
            response = connection.getresponse()
            body = response.read().decode()
            assert response.status == 200, (response.status, body)
            seen[body] += 1
    finally:
        connection.close()
    return seen


def test_each_environment_is_routed_by_its_host(platform, owner, tmp_path):
    app, production = _deploy(owner, tmp_path / "repo", "hosts")
    Environment.create_for(app, "staging")
    staging = wait_final(services.queue_deployment(app, "staging"))
    assert staging.status == "succeeded", log_text(staging)
    assert through_proxy(_host(app)).text in {c[:12] for c in production.containers}
    assert through_proxy(_host(app, "staging")).text in {c[:12] for c in staging.containers}
    assert through_proxy("nobody.localhost").status_code == 404


def test_three_replicas_all_take_traffic(platform, owner, tmp_path):
    app, deployment = _deploy(owner, tmp_path / "repo", "trio", replicas=3)
    assert len(deployment.containers) == 3
    wait_for(lambda: len(_answers(_host(app), 30)) == 3, timeout=10, message="all 3 to answer")
    assert set(_answers(_host(app))) == {c[:12] for c in deployment.containers}


def test_a_killed_replica_leaves_the_pool_while_requests_keep_succeeding(platform, owner, tmp_path):
    app, deployment = _deploy(owner, tmp_path / "repo", "killed", replicas=3)
    victim = deployment.containers[1]
    docker.from_env().api.stop(victim, timeout=0)  # SIGKILL, and no restart by the policy
    failed = _failures(_host(app), REQUESTS)
    # At most the one request that was on its way to the replica as it died (see the note
    # in the README's switch section); every later one goes to the others.
    assert failed <= 1
    wait_for(lambda: victim[:12] not in _answers(_host(app), 30), timeout=10, message="it to leave")
    assert _failures(_host(app), REQUESTS) == 0


def _failures(host: str, count: int) -> int:
    """Failed requests of `count` on keep-alive connections (a new one after a failure)."""
    failed, connection = 0, None
    for _ in range(count):
        connection = connection or http.client.HTTPConnection(
            "127.0.0.1", settings.PAAS_PROXY_HTTP_PORT, timeout=15
        )
        try:
            connection.request("GET", "/", headers={"Host": host})
            response = connection.getresponse()
            response.read()
            failed += response.status != 200
        except OSError:
            failed += 1
            connection.close()
            connection = None
    if connection:
        connection.close()
    return failed


def test_scaling_up_and_down_starts_and_retires_replicas(platform, owner, tmp_path):
    app, _ = _deploy(owner, tmp_path / "repo", "scaled")
    up = wait_final(routing.scale(app, "production", 3))
    assert up.status == "succeeded", log_text(up)
    wait_for(lambda: len(_answers(_host(app), 30)) == 3, timeout=10, message="3 replicas")
    down = wait_final(routing.scale(app, "production", 1))
    assert down.status == "succeeded", log_text(down)
    wait_for(lambda: len(_answers(_host(app), 30)) == 1, timeout=20, message="1 replica")
    assert _answers(_host(app), 10) == Counter({down.containers[0][:12]: 10})


def test_maintenance_answers_503_with_the_message_while_the_app_keeps_running(
    platform, owner, tmp_path
):
    app, deployment = _deploy(owner, tmp_path / "repo", "resting")
    env = app.environment("production")
    routing.update_routing(env, {"maintenance": True, "maintenance_message": "Back at <b>5</b>"})
    wait_for(lambda: through_proxy(_host(app)).status_code == 503, timeout=15, message="503")
    page = through_proxy(_host(app))
    assert "Back at &lt;b&gt;5&lt;/b&gt;" in page.text
    assert docker.from_env().containers.get(deployment.containers[0]).status == "running"
    routing.update_routing(env, {"maintenance": False})
    wait_for(lambda: through_proxy(_host(app)).status_code == 200, timeout=15, message="200")


def test_a_protected_environment_asks_for_its_password(platform, owner, tmp_path):
    app, _ = _deploy(owner, tmp_path / "repo", "guarded")
    env = app.environment("production")
    secret = {"basic_auth_user": "team", "basic_auth_password": "correct horse battery"}
    routing.update_routing(env, {"visibility": "protected", **secret})
    wait_for(lambda: through_proxy(_host(app)).status_code == 401, timeout=15, message="401")
    url = f"http://127.0.0.1:{settings.PAAS_PROXY_HTTP_PORT}/"
    wrong = requests.get(url, headers={"Host": _host(app)}, auth=("team", "wrong"), timeout=5)
    right = requests.get(
        url, headers={"Host": _host(app)}, auth=("team", "correct horse battery"), timeout=5
    )
    assert (wrong.status_code, right.status_code) == (401, 200)
    headers = requests.get(
        url + "headers", headers={"Host": _host(app)}, auth=("team", "correct horse battery")
    ).json()
    assert headers["Authorization"] is None  # the app never sees the platform's password


def test_an_internal_environment_is_not_routed_but_keeps_running(platform, owner, tmp_path):
    app, deployment = _deploy(owner, tmp_path / "repo", "inside")
    routing.update_routing(app.environment("production"), {"visibility": "internal"})
    wait_for(lambda: through_proxy(_host(app)).status_code == 404, timeout=15, message="404")
    container = docker.from_env().containers.get(deployment.containers[0])
    assert container.status == "running"
    address = container.attrs["NetworkSettings"]["Networks"][app.network]["IPAddress"]
    # Its own network still reaches it (the host is on that bridge, as the app's peers are).
    assert requests.get(f"http://{address}:{settings.PAAS_DEFAULT_PORT}/", timeout=5).ok


def test_the_router_sets_the_forwarded_proto_whatever_the_client_sends(platform, owner, tmp_path):
    app, _ = _deploy(owner, tmp_path / "repo", "forwarded")
    seen = through_proxy(_host(app), "/headers", headers={"X-Forwarded-Proto": "https"}).json()
    assert seen["X-Forwarded-Proto"] == "http"
    assert seen["Host"] == _host(app)


def test_the_dashboard_answers_through_the_router(platform):
    url = call_command_output("paas_platform_route")  # what scripts/run does
    assert url == f"http://{settings.PAAS_PUBLIC_HOST}:{settings.PAAS_PROXY_HTTP_PORT}"
    wait_for(
        lambda: through_proxy(settings.PAAS_PUBLIC_HOST, "/accounts/login/").status_code == 200,
        timeout=15,
        message="the dashboard through the router",
    )
    assert 'name="login"' in through_proxy(settings.PAAS_PUBLIC_HOST, "/accounts/login/").text


def test_the_dashboard_listens_on_loopback_only(dashboard):
    host, _, port = settings.PAAS_DASHBOARD_UPSTREAM.rpartition(":")
    assert host == "127.0.0.1"
    for address in _public_addresses():
        with pytest.raises(OSError):
            socket.create_connection((address, int(port)), timeout=2).close()


def call_command_output(name: str) -> str:
    out = io.StringIO()
    call_command(name, stdout=out)
    return out.getvalue().strip()


def _public_addresses() -> list[str]:
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    addresses = [a for a in out if not a.startswith("127.") and ":" not in a]
    assert addresses, "this host has no non-loopback IPv4 address to check"
    return addresses
