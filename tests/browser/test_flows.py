"""The dashboard in a real browser, end to end: sign in, create an app from a git repository,
watch it build and go live, change an env var and redeploy, roll back, delete.

Headless Chromium drives the live server; the real worker builds with Docker and routes with
Caddy. Screenshots of the main pages go to docs/screenshots/ (1280x800).
"""

import re

import pytest
from playwright.sync_api import expect

from apps.models import App
from apps.models.providers import ProviderCredential
from tests.apps.test_providers import API_PREFIX, NOW, FakeForge
from tests.support import ROOT, make_repo, sample_files, through_proxy, wait_for

SHOTS = ROOT / "docs" / "screenshots"
DEPLOY_TIMEOUT = 120_000  # ms; a cached Python build and start take ~10 s here


def shot(page, name: str, scroll_to: str | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    if scroll_to:
        page.locator(scroll_to).evaluate("element => element.scrollIntoView()")
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def sign_in(page, login: str, password: str, screenshot: str | None = None) -> None:
    page.goto("/accounts/login/")
    if screenshot:
        shot(page, screenshot)
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', password)
    page.locator('form[action="/accounts/login/"] button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"/$"))


def status_strip(page):
    return page.locator("#app-status")


def wait_until_running(page) -> None:
    """Until the status badge says Running; a failure ends the wait at once, with the log."""
    badge = status_strip(page).get_by_test_id("app-status")
    expect(badge).to_have_text(re.compile("Running|Failed"), timeout=DEPLOY_TIMEOUT)
    assert badge.inner_text() == "Running", page.locator("#current").inner_text()


def test_create_watch_change_rollback_and_delete_an_app(
    platform, page, owner, tmp_path, live_server
):
    repo = make_repo(tmp_path / "webflow", sample_files("python"))
    sign_in(page, "alice", "pw-alice-123", screenshot="sign-in")

    # Home, empty: it says what to do first.
    expect(page.get_by_role("heading", name="No apps yet")).to_be_visible()
    shot(page, "home-empty")
    page.locator("#create-first-app").click()

    # Create: the name is checked as it is typed; the repository is a local path.
    expect(page.get_by_role("heading", name="Create app")).to_be_visible()
    page.locator("#id_name").press_sequentially("Bad_Name", delay=20)
    expect(page.locator("#name-check")).to_contain_text("Use lowercase letters")
    page.locator("#id_name").fill("")
    page.locator("#id_name").press_sequentially("webflow", delay=20)
    expect(page.locator("#name-check")).to_contain_text("“webflow” is available")
    page.get_by_label("Repository", exact=True).fill(str(repo))
    page.locator('input[name="env-production-key"]').first.fill("GREETING")
    page.locator('input[name="env-production-value"]').first.fill("hi-one")
    page.get_by_role("button", name="+ Add variable").first.click()
    expect(page.locator('input[name="env-production-key"]')).to_have_count(2)
    page.locator('input[name="env-production-key"]').nth(1).fill("LOG_LEVEL")
    page.locator('input[name="env-production-value"]').nth(1).fill("info")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "create-form")
    page.get_by_role("button", name="Create and deploy").click()

    # The app page: the log fills and the status reaches running without a reload.
    expect(page).to_have_url(re.compile(r"/apps/webflow/$"))
    log = page.locator("#current .log")
    expect(log).to_contain_text("Cloning", timeout=DEPLOY_TIMEOUT)
    shot(page, "app-building", scroll_to="#current-title")
    wait_until_running(page)
    expect(page.locator("#current").get_by_test_id("deployment-status")).to_have_text("succeeded")
    expect(log).to_contain_text("==> Live at", timeout=10_000)
    # The runtime log appears once something is live, and tails the container.
    expect(page.locator("#runtime .log")).to_contain_text("Listening at", timeout=15_000)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "app-running")
    shot(page, "app-running-logs", scroll_to="#current-title")
    app = App.objects.get(name="webflow")
    host = app.environment("production").hostname
    assert through_proxy(host).text == "python says hi-one v1"

    page.goto("/")
    expect(page.locator("#app-link-webflow")).to_be_visible()
    expect(page.get_by_test_id("app-status")).to_have_text("Running")
    shot(page, "home-with-app")
    page.locator("#app-link-webflow").click()

    # Change an env var (the owner may reveal the old value first), then redeploy.
    page.get_by_role("link", name="Settings & env vars").click()
    production = page.locator("#env-production")
    production.get_by_role("button", name="Reveal GREETING").click()
    expect(production.get_by_test_id("revealed")).to_have_text("hi-one")
    production.get_by_label("Key", exact=True).fill("GREETING")
    production.get_by_label("Value", exact=True).fill("hi-two")
    production.get_by_role("button", name="Save to production").click()
    expect(production.locator(".notice")).to_contain_text(
        "A redeploy is needed to apply it to production"
    )
    shot(page, "settings-env-vars", scroll_to="#env-title")
    production.get_by_role("button", name="Redeploy production").click()
    expect(page.locator("#toasts")).to_contain_text("Deployment #2 to production is queued.")
    page.get_by_role("link", name="Back to webflow").click()
    expect(status_strip(page)).to_contain_text("live #2", timeout=DEPLOY_TIMEOUT)
    assert wait_for(lambda: through_proxy(host).text == "python says hi-two v1", timeout=10)

    # Roll back to deployment #1: its image goes live again, without a build.
    page.locator("#rollback-1").click()
    expect(page.locator("#toasts")).to_contain_text(
        "Rolling production back to #1 (deployment #3)."
    )
    expect(status_strip(page)).to_contain_text("live #3", timeout=DEPLOY_TIMEOUT)
    expect(page.locator("#deployment-row-3")).to_contain_text("rollback of #1")
    expect(page.locator("#current .log")).to_contain_text("Reusing the image of deployment #1")
    assert through_proxy(host).text.startswith("python says")
    shot(page, "app-history", scroll_to="#history-title")

    # Delete: a wrong name is refused; the right one removes the app.
    page.get_by_role("link", name="Settings & env vars").click()
    confirm = page.get_by_label("Type webflow to confirm")
    confirm.fill("webflo")
    page.get_by_role("button", name="Delete webflow").click()
    expect(page.locator("#danger-zone")).to_contain_text("Type “webflow” exactly")
    assert App.objects.filter(name="webflow", cleanup_requested_at__isnull=True).exists()
    page.get_by_label("Type webflow to confirm").fill("webflow")
    page.get_by_role("button", name="Delete webflow").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator(".messages")).to_contain_text("webflow is being deleted")
    expect(page.get_by_role("heading", name="No apps yet")).to_be_visible(timeout=60_000)
    assert not App.objects.filter(name="webflow").exists()
    assert through_proxy(host).status_code != 200 or "python says" not in through_proxy(host).text
    assert page.js_errors == []


@pytest.mark.django_db(transaction=True)
def test_api_tokens_are_created_once_and_revoked(page, owner):
    sign_in(page, "alice", "pw-alice-123")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Token name").fill("ci-deploy")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_test_id("new-token").inner_text()
    assert token.startswith("slw_")
    shot(page, "api-tokens")
    page.goto("/settings/tokens/")  # shown once: not on the next visit
    expect(page.get_by_test_id("new-token")).to_have_count(0)
    expect(page.locator("#tokens")).to_contain_text(token[:8])
    page.get_by_role("button", name="Revoke ci-deploy").click()
    expect(page.locator("#tokens")).to_contain_text("Token “ci-deploy” is revoked.")
    assert owner.api_tokens.count() == 0
    assert page.js_errors == []


@pytest.mark.django_db(transaction=True)
def test_picking_a_repository_from_a_connected_provider(page, owner, settings):
    from datetime import timedelta

    fake = FakeForge("github")
    try:
        for n in range(14):
            fake.add_repo(f"acme/service-{n:02d}", NOW - timedelta(hours=n))
        fake.add_repo("acme/shop", NOW, branches=("main", "next", "release"), default="next")
        api_url = fake.url + API_PREFIX["github"]
        settings.PAAS_GIT_PROVIDERS = {
            **settings.PAAS_GIT_PROVIDERS,
            "github": {"name": "GitHub", "web_url": fake.url, "api_url": api_url},
        }
        ProviderCredential.objects.create(
            user=owner, provider="github", web_url=fake.url, api_url=api_url,
            login="alice-forge", access_token=fake.token,
        )  # fmt: skip
        sign_in(page, "alice", "pw-alice-123")
        page.goto("/new/")
        results = page.locator("#repo-results")
        expect(results).to_contain_text("acme/service-00")  # loaded with the page
        results.get_by_role("button", name="Next →").click()
        expect(results).to_contain_text("Page 2")
        page.get_by_label("Search your repositories").press_sequentially("shop", delay=20)
        expect(results).not_to_contain_text("acme/service-00")
        results.get_by_role("button", name="acme/shop").click()
        expect(page.locator("#source-fields")).to_contain_text("Picked acme/shop")
        expect(page.get_by_label("Repository", exact=True)).to_have_value(
            f"{fake.url}/acme/shop.git"
        )
        branch = page.get_by_label("Branch", exact=True)
        expect(branch).to_have_value("next")
        expect(branch.locator("option")).to_have_count(4)  # the default branch, and three
        shot(page, "create-from-provider", scroll_to="legend >> text=Source")
        assert page.js_errors == []
    finally:
        fake.server.shutdown()
        fake.server.server_close()
