"""Pipelines: an app's environments in promotion order, each step with its own gates.
Promote moves one stage's live image to the next — with the target's env vars, no rebuild —
and only along a step of the pipeline. The first test runs it all on the real worker,
dockerd and router; the rest check the request side against the database."""

import pytest

from apps.models import AuditEntry, Environment
from deployments import services
from deployments.models import Deployment, PromotionPolicy, PromotionRequest
from deployments.services import environments, pipelines
from deployments.services.promotion import approve, request_promotion
from tests.support import commit, log_text, make_live_deployment, through_proxy, wait_final

PROMOTED, REFUSED, INVALID = 202, 409, 400


def gate(app, into: str, **fields) -> PromotionPolicy:
    return PromotionPolicy.objects.create(app=app, environment=app.environment(into), **fields)


def promotions(app):
    return Deployment.objects.filter(app=app, trigger="promote")


# --- end to end ---------------------------------------------------------------------------


@pytest.mark.live_app("pipe", sample="python")
def test_an_image_moves_along_three_stages_through_each_steps_gates(live_app, staff):
    """dev → staging needs a second person; staging → production needs staging to answer
    GET / with 200 through the router. Each stage runs dev's image with its own env."""
    app = live_app
    environments.create_environment(app, "dev")
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    for name in ("dev", "staging", "production"):
        services.set_env_vars(app.environment(name), {"GREETING": f"from {name}"})
    gate(app, "staging", require_approval=True)
    gate(app, "production", check_path="/", check_expected_status=200)
    source = app.repo / "app.py"
    commit(app.repo, {"app.py": source.read_text().replace("v1", "v2")}, "v2")

    built = wait_final(services.queue_deployment(app, "dev"))
    assert built.status == "succeeded", log_text(built)
    assert through_proxy(app.environment("dev").hostname).text == "python says from dev v2"

    with pytest.raises(services.Conflict) as skipped:
        request_promotion(app, app.owner, "dev", "production")
    assert skipped.value.code == "not_a_step" and not promotions(app).exists()

    waiting = request_promotion(app, app.owner, "dev", "staging")
    assert isinstance(waiting, PromotionRequest) and not promotions(app).exists()
    staged = wait_final(approve(waiting, staff))
    assert staged.status == "succeeded", log_text(staged)
    assert (staged.environment.name, staged.image_id) == ("staging", built.image_id)
    assert "Step 1/" not in log_text(staged)  # no build
    assert through_proxy(app.environment("staging").hostname).text == "python says from staging v2"

    live = wait_final(request_promotion(app, app.owner, "staging", "production"))
    assert live.status == "succeeded", log_text(live)
    assert live.image_id == built.image_id and live.commit_sha == built.commit_sha
    assert through_proxy(app.environment("production").hostname).text == (
        "python says from production v2"
    )


# --- the request side ---------------------------------------------------------------------


@pytest.fixture
def app(make_app, local_image_id):
    """dev, staging and production, each running a succeeded deployment (no containers)."""
    app = make_app("flow")
    Environment.create_for(app, "dev")
    for name in ("dev", "staging", "production"):
        make_live_deployment(app, local_image_id, name, commit_sha=name[0] * 40)
    return app


def stage_names(app) -> list[str]:
    return [env.name for env in pipelines.stages_of(app)]


@pytest.mark.django_db
def test_an_app_that_never_set_one_has_staging_then_production(app, api):
    body = api.get("/apps/flow/pipeline").json()
    assert body["default"] is True
    assert [stage["name"] for stage in body["stages"]] == ["staging", "production"]
    assert [(step["from"], step["to"]) for step in body["steps"]] == [("staging", "production")]
    staging = body["stages"][0]
    assert staging["live_deployment"] == app.environment("staging").live_deployment.number
    assert staging["commit"] == "s" * 40 and staging["deployed_at"]
    assert staging["url"] == app.environment("staging").url


@pytest.mark.django_db
def test_without_staging_the_default_pipeline_is_production_alone(make_app):
    app = make_app("solo")
    app.environment("staging").delete()
    assert stage_names(app) == ["production"] and pipelines.steps_of(app) == []


@pytest.mark.django_db
def test_put_sets_the_stages_and_get_shows_each_step_with_its_gates(app, api):
    gate(app, "staging", require_approval=True)
    answer = api.put_json("/apps/flow/pipeline", {"stages": ["dev", "staging", "production"]})
    assert answer.status_code == 200, answer.content
    body = api.get("/apps/flow/pipeline").json()
    assert body["default"] is False
    assert [stage["name"] for stage in body["stages"]] == ["dev", "staging", "production"]
    steps = {(step["from"], step["to"]): step["gates"] for step in body["steps"]}
    assert list(steps) == [("dev", "staging"), ("staging", "production")]
    assert steps[("dev", "staging")]["require_approval"] is True
    assert steps[("staging", "production")]["require_approval"] is False
    entry = AuditEntry.objects.get(action="pipeline.set")
    assert entry.details["stages"] == ["dev", "staging", "production"]


@pytest.mark.parametrize(
    ("stages", "says"),
    [
        ([], "at least one"),
        (["dev", "staging", "dev"], "Named twice: dev"),
        (["qa", "production"], "no environment named qa"),
        (["pr-7", "production"], "Preview environments are not stages: pr-7"),
        (["Dev", "production"], "no environment named Dev"),
    ],
)
@pytest.mark.django_db
def test_a_bad_pipeline_is_refused_and_changes_nothing(app, api, stages, says):
    Environment.create_for(app, "pr-7")  # as a preview is made (the service refuses pr-*)
    pipelines.set_pipeline(app, ["staging", "production"])
    answer = api.put_json("/apps/flow/pipeline", {"stages": stages})
    assert answer.status_code == INVALID
    assert says in " ".join(answer.json()["error"]["fields"]["stages"])
    assert stage_names(app) == ["staging", "production"]


@pytest.mark.parametrize(
    "body",
    [{"stages": "dev staging"}, {"stages": [1, 2]}, {"order": ["dev"]}, {}],
)
@pytest.mark.django_db
def test_a_pipeline_body_of_the_wrong_shape_is_refused(app, api, body):
    answer = api.put_json("/apps/flow/pipeline", body)
    assert answer.status_code == INVALID and answer.json()["error"]["code"] == "invalid"
    assert not app.pipeline_stages.exists()


@pytest.mark.django_db
def test_another_users_pipeline_is_not_found(app, outsider_api):
    assert outsider_api.get("/apps/flow/pipeline").status_code == 404
    assert outsider_api.put_json("/apps/flow/pipeline", {"stages": ["dev"]}).status_code == 404
    assert not app.pipeline_stages.exists()


@pytest.mark.django_db
def test_promote_with_a_body_moves_along_that_step(app, api):
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    answer = api.post("/apps/flow/promote", {"from": "dev", "to": "staging"})
    assert answer.status_code == PROMOTED, answer.content
    deployment = promotions(app).get()
    assert deployment.environment.name == "staging"
    assert deployment.source_deployment == app.environment("dev").live_deployment
    assert deployment.commit_sha == "d" * 40


@pytest.mark.django_db
def test_promote_without_a_body_still_means_staging_to_production(app, api):
    answer = api.post("/apps/flow/promote")
    assert answer.status_code == PROMOTED
    deployment = promotions(app).get()
    assert (deployment.environment.name, deployment.commit_sha) == ("production", "s" * 40)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"from": "dev", "to": "production"}, "not_a_step"),
        ({"from": "production", "to": "staging"}, "not_a_step"),
        ({"from": "staging", "to": "staging"}, "not_a_step"),
        ({"from": "qa", "to": "staging"}, "invalid_environment"),
        ({"from": "dev", "to": "staging", "force": True}, "invalid"),
        ({"from": "../dev"}, "invalid_environment"),
    ],
)
@pytest.mark.django_db
def test_a_promotion_off_the_pipeline_is_refused_and_queues_nothing(app, api, body, code):
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    answer = api.post("/apps/flow/promote", body)
    assert answer.status_code in (INVALID, REFUSED)
    assert answer.json()["error"]["code"] == code
    assert not promotions(app).exists() and not PromotionRequest.objects.exists()


@pytest.mark.django_db
def test_when_staging_is_not_a_stage_the_old_call_says_so(app, api):
    pipelines.set_pipeline(app, ["dev", "production"])
    answer = api.post("/apps/flow/promote")
    assert answer.status_code == REFUSED and answer.json()["error"]["code"] == "not_a_step"
    assert "dev → production" in answer.json()["error"]["message"]


@pytest.mark.django_db
def test_each_step_has_its_own_gates(app, api, owner, staff):
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    answer = api.put_json("/apps/flow/promotion-policy?to=staging", {"require_approval": True})
    assert answer.status_code == 200 and answer.json()["require_approval"] is True
    assert api.get("/apps/flow/promotion-policy").json()["require_approval"] is False

    waiting = request_promotion(app, owner, "dev", "staging")
    assert isinstance(waiting, PromotionRequest)
    assert (waiting.source_environment.name, waiting.target_environment.name) == (
        "dev",
        "staging",
    )
    straight = request_promotion(app, owner, "staging", "production")
    assert isinstance(straight, Deployment) and straight.environment.name == "production"
    listed = api.get("/apps/flow/promotions").json()["requests"]
    assert [(r["source_environment"], r["target_environment"]) for r in listed] == [
        ("dev", "staging")
    ]
    assert approve(waiting, staff).environment.name == "staging"


@pytest.mark.django_db
def test_a_policy_for_an_unknown_step_is_refused(app, api):
    answer = api.put_json("/apps/flow/promotion-policy?to=qa", {"require_approval": True})
    assert answer.status_code == INVALID and answer.json()["error"]["code"] == "invalid_environment"
    assert not PromotionPolicy.objects.exists()


@pytest.mark.django_db
def test_one_request_waits_per_step(app, owner):
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    gate(app, "staging", require_approval=True)
    gate(app, "production", require_approval=True)
    into_staging = request_promotion(app, owner, "dev", "staging")
    into_production = request_promotion(app, owner, "staging", "production")
    assert into_staging.pk != into_production.pk
    assert request_promotion(app, owner, "dev", "staging").pk == into_staging.pk


@pytest.mark.django_db
def test_redrawing_the_pipeline_expires_requests_along_steps_that_are_gone(app, owner):
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    gate(app, "staging", require_approval=True)
    gate(app, "production", require_approval=True)
    gone = request_promotion(app, owner, "dev", "staging")
    kept = request_promotion(app, owner, "staging", "production")
    pipelines.set_pipeline(app, ["staging", "production"])
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert (gone.status, kept.status) == ("expired", "pending")


@pytest.mark.django_db
def test_a_request_goes_stale_when_its_source_stage_changes(app, owner, staff, local_image_id):
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    gate(app, "staging", require_approval=True)
    waiting = request_promotion(app, owner, "dev", "staging")
    make_live_deployment(app, local_image_id, "dev", commit_sha="e" * 40)
    with pytest.raises(services.Conflict) as stale:
        approve(waiting, staff)
    assert stale.value.code == "promotion_stale" and "Dev changed" in stale.value.message
    assert not promotions(app).exists()


@pytest.mark.django_db
def test_a_deleted_environment_leaves_the_pipeline_with_its_gates(app):
    pipelines.set_pipeline(app, ["dev", "staging", "production"])
    gate(app, "staging", require_approval=True)
    app.environment("staging").delete()  # what the cleanup job does last
    assert stage_names(app) == ["dev", "production"]
    assert [(s.name, t.name) for s, t in pipelines.steps_of(app)] == [("dev", "production")]
    assert not PromotionPolicy.objects.exists()


@pytest.mark.django_db
def test_the_dashboard_sets_the_pipeline_and_promotes_along_it(app, client, owner):
    client.force_login(owner)
    answer = client.post("/apps/flow/pipeline/", {"stages": "dev → staging, production"})
    assert answer.status_code in (200, 302)
    assert stage_names(app) == ["dev", "staging", "production"]
    refused = client.post("/apps/flow/pipeline/", {"stages": "dev qa"}, HTTP_HX_REQUEST="true")
    assert refused.status_code == INVALID and b"no environment named qa" in refused.content
    assert stage_names(app) == ["dev", "staging", "production"]

    client.post("/apps/flow/promote/", {"source": "dev", "target": "staging"})
    assert promotions(app).get().environment.name == "staging"
    page = client.get("/apps/flow/").content.decode()
    assert 'data-testid="pipeline"' in page and 'data-testid="stage-dev"' in page
