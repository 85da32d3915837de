"""The app page's "Run a command" card in a real browser, with the real worker and Docker:
a command's output appears live and its status turns succeeded; the kill button stops a
long one; a scheduled job is added and turned off.

The live deployment is recorded (its image is the local static base, which has a shell):
the card, not the pipeline, is under test."""

import re

from playwright.sync_api import expect

from tests.browser.test_flows import sign_in
from tests.support import make_live_deployment

RUN_TIMEOUT = 30_000  # ms


def test_run_a_command_watch_it_kill_one_and_schedule_a_job(
    platform, page, owner, make_app, local_image_id
):
    app = make_app("cardapp")
    make_live_deployment(app, local_image_id)
    sign_in(page, "alice", "pw-alice-123")
    page.goto(f"/apps/{app.name}/")
    card = page.locator("#runs-card")

    card.locator("#run-command").fill("echo hello-from-the-browser; sleep 1; echo all-done")
    card.get_by_role("button", name="Run", exact=True).click()
    log = card.get_by_role("log")
    expect(log).to_contain_text("all-done", timeout=RUN_TIMEOUT)
    expect(log).to_contain_text("hello-from-the-browser")
    expect(card.get_by_test_id("run-status")).to_have_text("succeeded", timeout=RUN_TIMEOUT)

    card.locator("#run-command").fill("echo started-long; sleep 120")
    card.get_by_role("button", name="Run", exact=True).click()
    expect(card.get_by_role("log")).to_contain_text("started-long", timeout=RUN_TIMEOUT)
    card.get_by_role("button", name=re.compile(r"^Kill run")).click()
    # The output poller brings the status along: killed within a second or two.
    expect(card.get_by_test_id("run-status")).to_have_text("cancelled", timeout=RUN_TIMEOUT)

    card.locator("#job-name").fill("nightly")
    card.locator("#job-schedule").fill("0 3 * * *")
    card.locator("#job-command").fill("echo report")
    card.get_by_role("button", name="Add job").click()
    expect(card.get_by_test_id("jobs")).to_contain_text("nightly")
    card.get_by_role("button", name="Turn off nightly").click()
    expect(card.get_by_test_id("jobs")).to_contain_text("off")
    assert page.js_errors == []
