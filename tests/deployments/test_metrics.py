"""Metrics with history and alerts: the sampler against a live app, the real engine and the
real Traefik; the series API, the chart card and /metrics; downsampling; alerts delivered
once per episode to a receiver on loopback."""

import json
from collections import namedtuple
from datetime import UTC, datetime, timedelta

import docker
import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from apps.models.notifications import NotificationDelivery
from deployments import wiring
from deployments.models import AlertEpisode, ContainerMetric, Deployment, EnvironmentMetric
from deployments.services import notifications
from deployments.workers import alerts
from deployments.workers import metrics as sampler
from tests.deployments.test_notifications import Receiver, loopback_target
from tests.support import through_proxy, wait_for

pytestmark = pytest.mark.live_app("gauged", sample="python")

MiB = 1024 * 1024
DiskUsage = namedtuple("DiskUsage", "total used free")


def _sample() -> dict:
    return sampler.sample(wiring.runtime(), wiring.router_metrics())


def _container(app):
    env = app.environment("production")
    live = Deployment.objects.get(pk=env.live_deployment_id)
    return docker.from_env().containers.get(live.web_containers[0])


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- the sampler, against the live app -------------------------------------------------------


def test_samples_count_requests_and_5xx_and_the_series_answer(live_app, api, outsider_api):
    host = live_app.environment("production").hostname
    assert through_proxy(host).status_code == 200  # Traefik has a series for the service
    assert _sample() == {"containers": 1, "environments": 0}  # the router's baseline
    for _ in range(5):
        assert through_proxy(host).status_code == 200
    _container(live_app).kill()  # the router answers 5xx until the warden restarts it
    assert through_proxy(host).status_code >= 500

    assert _sample()["environments"] == 1

    [row] = EnvironmentMetric.objects.filter(environment__app=live_app)
    # Traefik's retry middleware may send the failed request to the service more than once.
    assert row.requests - row.errors_5xx == 5 and row.errors_5xx >= 1 and row.deployment == 1
    assert row.latency_ms is not None and 0 < row.latency_ms < 5000
    web = ContainerMetric.objects.filter(environment__app=live_app).order_by("at").first()
    assert (web.process, web.replica, web.restarts) == ("web", 1, 0)
    assert 0 < web.memory_bytes < web.memory_limit_bytes == 512 * MiB

    answer = api.get("/apps/gauged/metrics?environment=production&step=30")
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["step"] == 30 and len(data["times"]) == len(data["requests"])
    assert sum(n for n in data["requests"] if n) == row.requests
    assert sum(n for n in data["errors_5xx"] if n) == row.errors_5xx
    [container] = data["containers"]
    assert container["process"] == "web" and max(v or 0 for v in container["memory_bytes"]) > 0
    assert outsider_api.get("/apps/gauged/metrics").status_code == 404


def test_a_crash_loop_alerts_once_to_the_apps_target(live_app, settings):
    hook = Receiver()
    try:
        target, _ = loopback_target(settings, live_app, hook.url, ["alert.crash_loop"])
        settings.PAAS_ALERT_CRASH_RESTARTS = 2
        _sample()
        container = _container(live_app)
        for restarts in (1, 2):
            _crash(container)
            wait_for(lambda n=restarts: _restarted(container, n), timeout=30, message="restart")

        _sample()
        assert alerts.check()["crash_loop"] == 1
        _sample()
        assert alerts.check()["crash_loop"] == 0  # the same episode: nothing new

        [delivery] = NotificationDelivery.objects.filter(target=target)
        body = json.loads(delivery.body)
        assert body["event"] == "alert.crash_loop" and body["environment"] == "production"
        assert (
            body["error"]["code"] == "crash_loop"
            and "restarted 2 times" in body["error"]["message"]
        )
        wait_for(lambda: hook.events() == ["alert.crash_loop"], timeout=20, message="delivered")
    finally:
        hook.close()


def _crash(container) -> None:
    """SIGKILL every process of the app but the init, which then exits: the engine's restart
    policy starts the container again (RestartCount + 1), as it does for a crashing app."""
    script = (
        "import os\n"
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit() and int(p) not in (1, os.getpid()):\n"
        "        try: os.kill(int(p), 9)\n"
        "        except OSError: pass\n"
    )
    container.exec_run(["python3", "-c", script])


def _restarted(container, count: int) -> bool:
    container.reload()
    return container.attrs["RestartCount"] >= count and container.status == "running"


# --- the dashboard card and /metrics -------------------------------------------------------------


@pytest.mark.django_db
def test_the_app_page_has_the_chart_and_its_json_refuses_bad_params(make_app, owner, outsider):
    app = make_app("charted")
    env = app.environment("production")
    EnvironmentMetric.objects.create(
        environment=env, deployment=1, at=timezone.now(), step=30, requests=4, latency_ms=2.5
    )
    client = _logged_in(owner)

    page = client.get("/apps/charted/").content.decode()
    assert (
        "vendor/uplot/uPlot.iife.min." in page
        and 'data-metrics-url="/apps/charted/metrics/"' in page
    )
    answer = client.get("/apps/charted/metrics/?environment=production")
    assert answer.status_code == 200 and sum(n for n in answer.json()["requests"] if n) == 4
    for bad in (
        "environment=nope",
        "step=5",
        "step=x",
        "since=yesterday",
        "since=2999-01-01T00:00:00Z",
    ):
        refused = client.get(f"/apps/charted/metrics/?{bad}")
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["code"] == "invalid"
    assert _logged_in(outsider).get("/apps/charted/metrics/").status_code == 404


@pytest.mark.django_db
def test_the_api_refuses_bad_params(make_app, api):
    make_app("queried")
    for bad in ("environment=nope", "step=5", "step=x", "since=yesterday"):
        assert api.get(f"/apps/queried/metrics?{bad}").status_code == 400, bad


@pytest.mark.django_db
def test_prometheus_answers_staff_and_the_token_only(make_app, staff, owner, settings):
    env = make_app("scraped").environment("production")
    now = timezone.now()
    ContainerMetric.objects.create(
        environment=env,
        container="c" * 64,
        process="web",
        replica=1,
        at=now,
        step=30,
        cpu_percent=1.5,
        memory_bytes=10 * MiB,
        memory_limit_bytes=512 * MiB,
        restarts=0,
    )
    EnvironmentMetric.objects.create(environment=env, deployment=3, at=now, step=30, requests=7)
    settings.PAAS_METRICS_TOKEN = "scrape-secret"

    text = _logged_in(staff).get("/metrics").content.decode()
    labels = 'app="scraped",environment="production",process="web",replica="1"'
    assert f"slipway_container_memory_bytes{{{labels}}} {10 * MiB}\n" in text
    assert 'slipway_environment_requests{app="scraped",environment="production"} 7' in text
    scraper = Client(headers={"Authorization": "Bearer scrape-secret"})
    assert scraper.get("/metrics").status_code == 200
    assert Client(headers={"Authorization": "Bearer wrong"}).get("/metrics").status_code == 401
    assert Client().get("/metrics").status_code == 404
    assert _logged_in(owner).get("/metrics").status_code == 404


# --- downsampling and retention -------------------------------------------------------------


@pytest.mark.django_db
def test_old_rows_are_merged_into_five_minute_rows_and_the_oldest_deleted(make_app, settings):
    env = make_app("compacted").environment("production")
    now = timezone.now()
    two_days_ago = int((now - timedelta(days=2)).timestamp())
    start = datetime.fromtimestamp(two_days_ago // 300 * 300, tz=UTC)
    for i in range(1, 21):  # ten minutes of 30 s samples: two 5-minute buckets
        at = start + timedelta(seconds=30 * i)
        EnvironmentMetric.objects.create(
            environment=env,
            deployment=1,
            at=at,
            step=30,
            requests=10,
            errors_5xx=i % 2,
            latency_ms=float(i),
        )
        ContainerMetric.objects.create(
            environment=env,
            container="x" * 64,
            process="web",
            replica=1,
            at=at,
            step=30,
            cpu_percent=float(i),
            memory_bytes=i * MiB,
            memory_limit_bytes=512 * MiB,
            restarts=i // 10,
        )
    recent = EnvironmentMetric.objects.create(
        environment=env, deployment=1, at=now, step=30, requests=1
    )
    EnvironmentMetric.objects.create(
        environment=env, deployment=1, at=now - timedelta(days=15), step=300, requests=1
    )

    result = sampler.compact(now)

    merged = list(EnvironmentMetric.objects.filter(step=300).order_by("at"))
    assert [r.requests for r in merged] == [100, 100] and [r.errors_5xx for r in merged] == [5, 5]
    assert merged[0].at == start + timedelta(minutes=5) and merged[0].latency_ms == 5.5
    containers = list(ContainerMetric.objects.order_by("at"))
    assert [(c.step, c.memory_bytes, c.restarts) for c in containers] == [
        (300, 10 * MiB, 1),
        (300, 20 * MiB, 2),
    ]
    assert containers[0].cpu_percent == 5.5
    assert EnvironmentMetric.objects.filter(pk=recent.pk, step=30).exists()
    assert result == {"merged": 40, "deleted": 1}
    assert sampler.compact(now) == {"merged": 0, "deleted": 0}


# --- the other alerts, from stored samples ---------------------------------------------------


def _memory_row(env, at, used):
    return ContainerMetric.objects.create(
        environment=env,
        container="m" * 64,
        process="web",
        replica=1,
        at=at,
        step=30,
        cpu_percent=0,
        memory_bytes=used,
        memory_limit_bytes=100 * MiB,
    )


@pytest.mark.django_db
def test_memory_over_ninety_percent_for_five_minutes_alerts_once_then_recovers(make_app):
    app = _with_target(make_app("hungry"))
    env = app.environment("production")
    now = timezone.now()
    for i in range(11):  # every 30 s for five minutes, at 95 % of the limit
        _memory_row(env, now - timedelta(seconds=300 - 30 * i), 95 * MiB)

    assert alerts.check(now, _disk(0.1))["memory"] == 1
    assert alerts.check(now, _disk(0.1))["memory"] == 0
    _memory_row(env, now + timedelta(seconds=30), 50 * MiB)
    assert alerts.check(now + timedelta(seconds=30), _disk(0.1))["memory"] == 0

    events = [json.loads(d.body)["error"]["code"] for d in _deliveries(app)]
    assert events == ["memory", "memory_recovered"]
    assert not AlertEpisode.objects.exists()


@pytest.mark.django_db
def test_a_short_spike_of_memory_does_not_alert(make_app):
    env = make_app("spiky").environment("production")
    now = timezone.now()
    for i in range(3):
        _memory_row(env, now - timedelta(seconds=60 - 30 * i), 99 * MiB)
    assert alerts.check(now, _disk(0.1))["memory"] == 0


@pytest.mark.django_db
def test_an_error_rate_above_the_threshold_alerts_with_enough_requests(make_app, settings):
    app = _with_target(make_app("erring"))
    env = app.environment("production")
    now = timezone.now()
    EnvironmentMetric.objects.create(
        environment=env, deployment=1, at=now, step=30, requests=10, errors_5xx=5
    )
    assert alerts.check(now, _disk(0.1))["error_rate"] == 0  # under PAAS_ALERT_MIN_REQUESTS
    EnvironmentMetric.objects.create(
        environment=env, deployment=1, at=now, step=30, requests=30, errors_5xx=1
    )
    assert alerts.check(now, _disk(0.1))["error_rate"] == 1  # 6 of 40 > 5 %
    [delivery] = _deliveries(app)
    assert "6 of 40 requests answered 5xx" in json.loads(delivery.body)["error"]["message"]


@pytest.mark.django_db
def test_a_nearly_full_disk_emails_staff_once(staff, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert alerts.check(disk_usage=_disk(0.9))["disk"] == 1
    assert alerts.check(disk_usage=_disk(0.9))["disk"] == 0
    [message] = mail.outbox
    assert message.to == ["ops@example.com"] and "90 % full" in message.subject
    alerts.check(disk_usage=_disk(0.5))
    assert len(mail.outbox) == 2 and "recovered" in mail.outbox[1].subject


def _disk(fraction):
    return lambda path: DiskUsage(1000 * MiB, int(fraction * 1000 * MiB), 0)


def _with_target(app):
    notifications.add_target(app, "https://93.184.215.14/hooks/slipway")  # no DNS needed
    return app


def _deliveries(app):
    # notify() records one delivery per target; these apps have one that takes every event.
    return NotificationDelivery.objects.filter(target__app=app).order_by("created_at", "id")
