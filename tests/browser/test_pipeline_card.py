"""The pipeline on the app page in a real browser: the stages as boxes with their live
deployments, each step's gates in words, and a promote button that queues the promotion
and answers with a toast."""

from playwright.sync_api import expect

from apps.models import Environment
from deployments.models import Deployment, PromotionPolicy
from deployments.services import pipelines
from tests.browser.test_flows import SHOTS, sign_in
from tests.support import make_live_deployment


def test_the_boxes_show_each_stage_and_promote_along_a_step(page, make_app, local_image_id):
    app = make_app("piped")
    Environment.create_for(app, "dev")
    for name in ("dev", "staging", "production"):
        make_live_deployment(app, local_image_id, name, commit_sha=name[0] * 40)
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    PromotionPolicy.objects.create(
        app=app, environment=app.environment("production"), check_path="/healthz"
    )
    sign_in(page, "alice", "pw-alice-123")
    page.goto("/apps/piped/")

    pipeline = page.get_by_test_id("pipeline")
    expect(pipeline.locator(".stage")).to_have_count(3)
    expect(pipeline.get_by_test_id("stage-dev")).to_contain_text("dddddd")
    expect(pipeline.get_by_test_id("step-dev-staging")).to_contain_text("No gates")
    expect(pipeline.get_by_test_id("step-staging-production")).to_contain_text(
        "GET /healthz answers 200"
    )
    pipeline.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "app-pipeline.png"), full_page=False)  # for the README

    page.locator("#promote-dev-staging").click()
    expect(page.locator("#toasts")).to_contain_text("Promoting dev to staging")
    promoted = Deployment.objects.get(app=app, trigger="promote")
    assert promoted.environment.name == "staging" and promoted.commit_sha == "d" * 40
    assert page.js_errors == []
