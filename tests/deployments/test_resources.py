"""CPU and memory of an app's live containers, from the real Docker engine."""

import threading
from types import SimpleNamespace

import docker
import pytest
from django.test import Client

from deployments import services, wiring
from deployments.adapters.runtime.docker import container_usage
from deployments.services.resources import _sample_all, resource_usage
from tests.support import wait_for

pytestmark = pytest.mark.live_app("measured")

MiB = 1024 * 1024


def _htmx_client(user) -> Client:
    client = Client(headers={"HX-Request": "true"})
    client.force_login(user)
    return client


def test_a_running_app_has_cpu_and_memory_numbers(live_app, api, settings):
    [production] = resource_usage(live_app)  # staging has nothing deployed

    assert production["environment"] == "production" and production["running"] is True
    assert isinstance(production["cpu_percent"], float) and production["cpu_percent"] >= 0
    assert 0 < production["memory_bytes"] < production["memory_limit_bytes"]
    assert production["memory_limit_bytes"] == 512 * MiB  # PAAS_CONTAINER_MEMORY
    answer = api.get("/apps/measured/stats")
    assert answer.status_code == 200
    [entry] = answer.json()["environments"]
    assert entry["deployment"] == 1 and entry["memory_bytes"] > 0


def test_the_panel_polls_while_running_and_shows_a_stopped_app(live_app, owner):
    client = _htmx_client(owner)
    panel = client.get("/apps/measured/notifications/resources/")
    assert panel.status_code == 200
    html = panel.content.decode()
    assert "every 5s" in html and "of 512.0" in html

    services.stop(live_app, "production")
    wait_for(
        lambda: "Stopped" in client.get("/apps/measured/notifications/resources/").content.decode(),
        timeout=30,
        message="the panel to show the stop",
    )
    assert resource_usage(live_app)[0]["running"] is False


@pytest.mark.django_db
def test_outsiders_get_404_from_the_api_and_the_panel(make_app, outsider, outsider_api):
    make_app("private")
    assert outsider_api.get("/apps/private/stats").status_code == 404
    assert _htmx_client(outsider).get("/apps/private/notifications/resources/").status_code == 404


@pytest.mark.django_db
def test_the_panel_stops_polling_when_nothing_is_deployed(make_app, owner):
    make_app("empty")
    panel = _htmx_client(owner).get("/apps/empty/notifications/resources/")
    assert panel.status_code == 286
    assert "every 5s" not in panel.content.decode()


def test_usage_counts_cpu_per_core_and_memory_without_page_cache():
    sample = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 3_000_000_000},
            "system_cpu_usage": 20_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 2_000_000_000},
            "system_cpu_usage": 18_000_000_000,
        },
        "memory_stats": {
            "usage": 300 * MiB,
            "limit": 1024 * MiB,
            "stats": {"inactive_file": 44 * MiB},
        },
    }
    usage = container_usage(sample)
    assert usage["cpu_percent"] == 100.0  # one of two cores busy for the whole interval
    assert usage["memory_bytes"] == 256 * MiB and usage["memory_percent"] == 25.0
    cgroup_v1 = {
        **sample,
        "memory_stats": {**sample["memory_stats"], "stats": {"total_inactive_file": 44 * MiB}},
    }
    assert container_usage(cgroup_v1)["memory_bytes"] == 256 * MiB
    assert container_usage({})["cpu_percent"] == 0.0  # a stopped container reports nothing


def test_every_container_is_sampled_at_once_not_one_after_another():
    """The engine takes about a second per sample: sampled in turn, ten replicas would hold
    the dashboard's request for ten seconds."""
    client = docker.from_env()
    started = [
        client.containers.run("slipway/debian:bookworm", ["sleep", "60"], detach=True)
        for _ in range(3)
    ]
    runtime = wiring.runtime()
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def counted_stats(container_id):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            return runtime.stats(container_id)
        finally:
            with lock:
                in_flight[0] -= 1

    counting = SimpleNamespace(stats=counted_stats)
    try:
        samples = _sample_all([c.id for c in started], counting)
    finally:
        for container in started:
            container.remove(force=True)
    assert most[0] == 3
    assert all(samples[c.id]["memory_bytes"] > 0 for c in started)
