"""The app page's metrics card in a real browser: uPlot (from static/vendor) draws the series
the metrics JSON answers, without a script error."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from deployments.models import ContainerMetric, EnvironmentMetric
from tests.browser.test_flows import SHOTS, sign_in

MiB = 1024 * 1024


def test_the_card_draws_the_four_charts(page, owner, make_app):
    env = make_app("plotted").environment("production")
    now = timezone.now()
    for i in range(10):
        at = now - timedelta(seconds=30 * i)
        EnvironmentMetric.objects.create(
            environment=env,
            deployment=1,
            at=at,
            step=30,
            requests=10 + i,
            errors_5xx=i % 3,
            latency_ms=5.0 + i,
        )
        ContainerMetric.objects.create(
            environment=env,
            container="p" * 64,
            process="web",
            replica=1,
            at=at,
            step=30,
            cpu_percent=float(i),
            memory_bytes=(40 + i) * MiB,
            memory_limit_bytes=512 * MiB,
        )
    sign_in(page, "alice", "pw-alice-123")
    page.goto("/apps/plotted/")

    card = page.get_by_test_id("metrics")
    expect(card.locator(".uplot")).to_have_count(4)
    expect(card.locator("[data-metrics-status]")).to_have_text("")
    expect(card.locator('[data-chart="memory"]')).to_contain_text("web.1")  # its legend
    card.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "app-metrics.png"), full_page=False)  # for the README
    assert page.js_errors == []
