"""The pipelines migration on a database holding today's apps: every gate guards the step
into production, every promotion request was staging → production, and a request whose
staging is gone goes with it."""

import pytest

from tests.support import migrate

BEFORE = [("apps", "0016_promotion_events"), ("deployments", "0011_promotion_ci_gate")]
AFTER = [("deployments", "0012_pipelines")]


def todays_app(models, owner, name, environments=("production", "staging")):
    app = models.get_model("apps", "App").objects.create(
        name=name, owner_id=owner.pk, repository=f"https://example.com/{name}.git"
    )
    Environment = models.get_model("apps", "Environment")
    for position, env in enumerate(environments):
        label = name if env == "production" else f"{name}-{env}"
        Environment.objects.create(app=app, name=env, position=position, host_label=label)
    return app


@pytest.mark.django_db(transaction=True)
def test_todays_gates_and_requests_land_on_the_staging_to_production_step(owner, back_to_latest):
    old = migrate(BEFORE)
    Policy = old.get_model("deployments", "PromotionPolicy")
    Request = old.get_model("deployments", "PromotionRequest")
    shop = todays_app(old, owner, "shop")
    solo = todays_app(old, owner, "solo", environments=("production",))
    Policy.objects.create(app=shop, require_approval=True, check_path="/up")
    Policy.objects.create(app=solo, require_ci_success=True)
    Request.objects.create(app=shop, requested_by_id=owner.pk, status="pending")
    Request.objects.create(app=solo, requested_by_id=owner.pk, status="approved")

    new = migrate(AFTER)
    Policy = new.get_model("deployments", "PromotionPolicy")
    Request = new.get_model("deployments", "PromotionRequest")
    into = {p.app.name: (p.environment.name, p.require_approval) for p in Policy.objects.all()}
    assert into == {"shop": ("production", True), "solo": ("production", False)}
    (kept,) = Request.objects.all()
    assert (kept.app.name, kept.status) == ("shop", "pending")
    assert (kept.source_environment.name, kept.target_environment.name) == (
        "staging",
        "production",
    )
    assert not new.get_model("deployments", "PipelineStage").objects.exists()  # the default
