"""The CI status gate: the commit staging runs must have passed CI on the Git provider
(GitHub's statuses and check runs, GitLab's pipeline, Gitea's statuses) before it is
promoted — asked with the owner's token, of fake forges on loopback. And the promotion's
requested, approved and done events reach the app's notification targets."""

import json
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.models import Environment
from apps.models.notifications import NotificationDelivery
from deployments.models import Deployment, PromotionPolicy, PromotionRequest
from deployments.services import Conflict, pipelines
from deployments.services.promotion import approve, request_promotion
from deployments.workers import deliveries
from deployments.workers.pipeline import lifecycle
from tests.deployments.test_notifications import Receiver, loopback_target
from tests.support import make_live_deployment

pytestmark = pytest.mark.django_db

SHA = "ab12cd3" + "9" * 33
PROMOTED, REFUSED = 202, 409


@pytest.fixture
def repo_on(forge, connect, make_app, local_image_id):
    """repo_on("github"): a fake forge holding the owner's private repository, and an app
    from it whose staging runs SHA, gated on CI."""

    def make(kind, **policy):
        fake = forge(kind)
        fake.add_repo("acme/shop", timezone.now(), private=True)
        connect(fake)
        app = make_app("shop", repository=f"{fake.url}/acme/shop.git")
        make_live_deployment(app, local_image_id, "staging", commit_sha=SHA)
        PromotionPolicy.objects.create(
            app=app, environment=app.environment("production"), require_ci_success=True, **policy
        )
        return fake, app

    return make


def promote(api):
    return api.post("/apps/shop/promote")


def refusal(response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def nothing_queued(app) -> bool:
    promoted = Deployment.objects.filter(app=app, trigger="promote").exists()
    return not promoted and not PromotionRequest.objects.exists()


# --- GitHub: commit statuses and check runs ---------------------------------------------------


def test_github_pending_checks_refuse_and_queue_nothing(repo_on, api):
    fake, app = repo_on("github")
    fake.add_commit(
        SHA,
        statuses=[("ci/lint", "success"), ("ci/deploy-preview", "pending")],
        check_runs=[("tests", "in_progress", None), ("build", "queued", None)],
    )

    status, code, message = refusal(promote(api))

    assert (status, code) == (REFUSED, "ci_pending")
    assert message.startswith("CI is still running for ab12cd3 (3 checks pending)")
    assert "promote again when it finishes" in message
    assert nothing_queued(app)
    # Both endpoints, with the owner's token.
    asked = fake.hits("GET", f"/repos/acme/shop/commits/{SHA}/")
    assert sorted(hit["path"].rsplit("/", 1)[1] for hit in asked) == ["check-runs", "status"]
    assert all(hit["authorization"] == f"Bearer {fake.token}" for hit in asked)


def test_github_a_failed_check_run_is_named(repo_on, api):
    fake, app = repo_on("github")
    fake.add_commit(
        SHA,
        statuses=[("ci/lint", "success")],
        check_runs=[("unit tests", "completed", "failure"), ("build", "completed", "success")],
    )

    status, code, message = refusal(promote(api))

    assert (status, code) == (REFUSED, "ci_failed")
    assert "CI failed for ab12cd3: unit tests" in message and "build" not in message
    assert nothing_queued(app)


def test_github_an_errored_status_fails_even_with_green_check_runs(repo_on, api):
    fake, app = repo_on("github")
    fake.add_commit(
        SHA, statuses=[("ci/jenkins", "error")], check_runs=[("tests", "completed", "success")]
    )
    status, code, message = refusal(promote(api))
    assert (status, code) == (REFUSED, "ci_failed") and "ci/jenkins" in message


def test_github_a_commit_without_any_ci_is_unknown(repo_on, api):
    fake, app = repo_on("github")
    fake.add_commit(SHA)

    status, code, message = refusal(promote(api))

    assert (status, code) == (REFUSED, "ci_unknown")
    assert "No CI status found for ab12cd3 on GitHub" in message
    assert nothing_queued(app)


def test_github_success_promotes(repo_on, api):
    fake, app = repo_on("github")
    fake.add_commit(
        SHA,
        statuses=[("ci/lint", "success")],
        check_runs=[
            ("tests", "completed", "success"),
            ("docs", "completed", "neutral"),
            ("nightly", "completed", "skipped"),
        ],
    )

    response = promote(api)

    assert response.status_code == PROMOTED
    assert (response.json()["trigger"], response.json()["environment"]) == (
        "promote",
        "production",
    )


# --- GitLab pipelines and Gitea statuses -----------------------------------------------------


@pytest.mark.parametrize(
    ("pipeline", "expected", "code"),
    [
        ("running", REFUSED, "ci_pending"),
        ("failed", REFUSED, "ci_failed"),
        (None, REFUSED, "ci_unknown"),
        ("success", PROMOTED, None),
    ],
)
def test_gitlab_the_last_pipeline_decides(repo_on, api, pipeline, expected, code):
    fake, app = repo_on("gitlab")
    fake.add_commit(SHA, pipeline=pipeline)

    response = promote(api)

    assert response.status_code == expected
    if code:
        assert response.json()["error"]["code"] == code and nothing_queued(app)
    hit = fake.hits("GET", f"/api/v4/projects/acme%2Fshop/repository/commits/{SHA}")
    assert hit and hit[0]["authorization"] == f"Bearer {fake.token}"


def test_gitlab_a_failed_pipeline_is_named(repo_on, api):
    fake, _ = repo_on("gitlab")
    fake.add_commit(SHA, pipeline="failed")
    message = refusal(promote(api))[2]
    assert "CI failed for ab12cd3: pipeline #7" in message and "/pipelines/7" in message


@pytest.mark.parametrize(
    ("statuses", "expected", "code"),
    [
        ([("woodpecker/push", "pending")], REFUSED, "ci_pending"),
        ([("woodpecker/push", "success"), ("actions/test", "failure")], REFUSED, "ci_failed"),
        ([("actions/test", "warning")], REFUSED, "ci_failed"),
        ([], REFUSED, "ci_unknown"),
        ([("woodpecker/push", "success"), ("actions/test", "success")], PROMOTED, None),
    ],
)
def test_gitea_the_combined_status_decides(repo_on, api, statuses, expected, code):
    fake, app = repo_on("gitea")
    fake.add_commit(SHA, statuses=statuses)

    response = promote(api)

    assert response.status_code == expected
    if code:
        assert response.json()["error"]["code"] == code and nothing_queued(app)
    if code == "ci_failed":
        assert "actions/test" in response.json()["error"]["message"]
    hit = fake.hits("GET", f"/api/v1/repos/acme/shop/commits/{SHA}/status")
    assert hit and hit[0]["authorization"] == f"token {fake.token}"


# --- when the provider cannot say --------------------------------------------------------


def test_an_unreachable_provider_is_unknown_and_the_message_holds_no_token(repo_on, api):
    fake, app = repo_on("github")
    fake.server.shutdown()
    fake.server.server_close()

    status, code, message = refusal(promote(api))

    assert (status, code) == (REFUSED, "ci_unknown")
    assert "could not be asked" in message and "could not reach GitHub" in message
    assert fake.token not in message and nothing_queued(app)


@pytest.mark.parametrize(
    ("breakage", "said"),
    [("fail_status", "failed (HTTP 500)"), ("token", "sign-in has expired")],
)
def test_a_provider_that_refuses_is_unknown_with_a_clear_reason(repo_on, api, breakage, said):
    fake, app = repo_on("github")
    fake.add_commit(SHA, statuses=[("ci", "success")])
    if breakage == "fail_status":
        fake.fail_status = 500
    else:
        fake.token = "rotated-on-the-provider"  # ours is no longer accepted

    status, code, message = refusal(promote(api))

    assert (status, code) == (REFUSED, "ci_unknown") and said in message
    assert "github-access-1" not in message and "0xdead" not in message
    assert nothing_queued(app)


def test_an_unknown_commit_is_unknown(repo_on, api):
    repo_on("gitlab")  # no commits at all: GitLab answers 404
    status, code, message = refusal(promote(api))
    assert (status, code) == (REFUSED, "ci_unknown") and "ab12cd3" in message


def test_an_archive_deployment_has_no_commit_to_check(repo_on, api, local_image_id):
    _, app = repo_on("github")
    make_live_deployment(app, local_image_id, "staging", commit_sha="")

    status, code, message = refusal(promote(api))

    assert (status, code) == (REFUSED, "ci_unknown") and "archive" in message
    assert nothing_queued(app)


def test_a_repository_on_no_connected_provider_is_unknown(make_app, api, local_image_id):
    app = make_app("shop", repository="https://git.example.org/acme/shop.git")
    make_live_deployment(app, local_image_id, "staging", commit_sha=SHA)
    PromotionPolicy.objects.create(
        app=app, environment=app.environment("production"), require_ci_success=True
    )
    status, code, message = refusal(promote(api))
    assert (status, code) == (REFUSED, "ci_unknown") and "connected Git providers" in message


# --- the policy, the dashboard, approval ------------------------------------------------------


def test_the_policy_api_turns_the_gate_on_and_off(make_app, api):
    make_app("shop")
    assert api.get("/apps/shop/promotion-policy").json()["require_ci_success"] is False
    changed = api.put_json("/apps/shop/promotion-policy", {"require_ci_success": True})
    assert changed.status_code == 200 and changed.json()["require_ci_success"] is True
    assert PromotionPolicy.objects.get(app__name="shop").require_ci_success


def test_the_dashboard_shows_the_refusal_in_its_toast(repo_on, owner):
    fake, app = repo_on("github")
    fake.add_commit(SHA, check_runs=[("tests", "queued", None)])
    web = Client()
    web.force_login(owner)

    response = web.post(reverse("app-promote", args=["shop"]), headers={"HX-Request": "true"})

    assert response.status_code == REFUSED
    assert "CI is still running for ab12cd3 (1 check pending)" in response.content.decode()
    assert nothing_queued(app)


def test_approval_asks_ci_again(repo_on, owner, staff):
    fake, app = repo_on("github", require_approval=True)
    fake.add_commit(SHA, check_runs=[("tests", "completed", "success")])
    request = request_promotion(app, owner)
    assert isinstance(request, PromotionRequest)

    fake.add_commit(SHA, check_runs=[("tests", "completed", "failure")])  # re-run, now red
    with pytest.raises(Conflict) as refused:
        approve(request, staff)

    assert refused.value.code == "ci_failed" and "tests" in refused.value.message
    request.refresh_from_db()
    assert request.is_pending and not Deployment.objects.filter(trigger="promote").exists()


# --- promotion.requested, promotion.approved, promotion.done ----------------------------------


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


def delivered_bodies(target, hook) -> list[dict]:
    """Each recorded delivery attempted once, in order; what the receiver got."""
    for delivery in NotificationDelivery.objects.filter(target=target).order_by("id"):
        deliveries.attempt_delivery(delivery.pk, 1)
    return [json.loads(body) for _, body in hook.requests]


def test_the_promotion_events_reach_a_target(repo_on, owner, staff, settings, hook):
    fake, app = repo_on("github", require_approval=True)
    fake.add_commit(SHA, statuses=[("ci", "success")])
    target, _ = loopback_target(settings, app, hook.url)
    source = app.environment("staging").live_deployment

    request = request_promotion(app, owner)
    deployment = approve(request, staff)
    _go_live(deployment)

    bodies = delivered_bodies(target, hook)
    assert [b["event"] for b in bodies] == [
        "promotion.requested",
        "promotion.approved",
        "deployment.succeeded",
        "promotion.done",
    ]
    requested, approved, _, done = bodies
    assert requested["deployment"] == source.number and requested["environment"] == "staging"
    assert requested["promotion"] == {
        "from": "staging",
        "to": "production",
        "request": request.pk,
        "source_deployment": source.number,
        "commit": SHA,
        "requested_by": "alice",
        "approved_by": None,
    }
    assert approved["promotion"]["approved_by"] == "operator"
    assert (done["environment"], done["deployment"]) == ("production", deployment.number)
    assert done["promotion"]["approved_by"] == "operator"


def test_an_ungated_promotion_announces_only_that_it_is_done(make_app, settings, hook, owner):
    app = make_app("plain")
    target, _ = loopback_target(settings, app, hook.url, ["promotion.done", "promotion.requested"])
    deployment = app.new_deployment(app.environment("production"), trigger="promote")

    _go_live(deployment)

    [done] = delivered_bodies(target, hook)
    assert done["event"] == "promotion.done" and done["promotion"]["request"] is None


def _go_live(deployment):
    """The pipeline's last move, with just what it reads of its context."""
    deployment.mark_building()
    deployment.mark_starting()
    ctx = SimpleNamespace(
        deployment=deployment,
        app=deployment.app,
        environment=deployment.environment,
        log=lambda line: None,
    )
    lifecycle.go_live(ctx)


# --- a gate on one step of a longer pipeline ----------------------------------------------


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_on_a_three_stage_pipeline_ci_gates_only_its_own_step(
    forge, connect, make_app, local_image_id, api, kind
):
    """dev → staging waits for CI; staging → production has no gate and goes through."""
    fake = forge(kind)
    fake.add_repo("acme/shop", timezone.now(), private=True)
    connect(fake)
    app = make_app("shop", repository=f"{fake.url}/acme/shop.git")
    Environment.create_for(app, "dev")
    make_live_deployment(app, local_image_id, "dev", commit_sha=SHA)
    make_live_deployment(app, local_image_id, "staging", commit_sha="5" * 40)
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    PromotionPolicy.objects.create(
        app=app, environment=app.environment("staging"), require_ci_success=True
    )
    running = {"gitlab": {"pipeline": "running"}}.get(kind, {"statuses": [("ci", "pending")]})
    fake.add_commit(SHA, **running)

    pending = api.post("/apps/shop/promote", {"from": "dev", "to": "staging"})
    assert refusal(pending)[:2] == (REFUSED, "ci_pending")
    assert nothing_queued(app)
    assert api.post("/apps/shop/promote").status_code == PROMOTED  # its own step: no gate

    passed = {"gitlab": {"pipeline": "success"}}.get(kind, {"statuses": [("ci", "success")]})
    fake.add_commit(SHA, **passed)
    promoted = api.post("/apps/shop/promote", {"from": "dev", "to": "staging"})
    assert promoted.status_code == PROMOTED, promoted.content
    into_staging = Deployment.objects.get(app=app, environment__name="staging", trigger="promote")
    assert into_staging.commit_sha == SHA
