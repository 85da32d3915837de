"""The pipeline on the app page: its stages as boxes, and on each step between two a
promote button with the step's gates in words."""

from django.db.models import prefetch_related_objects

from deployments.models.promotion import PromotionPolicy
from deployments.services.promotion import pipeline_overview


def gate_labels(policy: PromotionPolicy) -> list[str]:
    """What stands between two stages; none means a promotion goes straight through."""
    labels = []
    if policy.require_approval:
        labels.append("a second person approves")
    if policy.has_check:
        labels.append(f"GET {policy.check_path} answers {policy.check_expected_status}")
    if policy.require_ci_success:
        labels.append("CI passed")
    return labels


def pipeline_context(app) -> dict:
    """Each stage with the step that leaves it (None for the last stage)."""
    overview = pipeline_overview(app)
    # Each stage shows its live deployment: one query for them all, not one a stage.
    prefetch_related_objects(overview["stages"], "live_deployment")
    leaving = {step["source"]: step for step in overview["steps"]}
    for step in overview["steps"]:
        step["gate_labels"] = gate_labels(step["gates"])
    return {
        "stages": [(env, leaving.get(env.name)) for env in overview["stages"]],
        "pipeline_default": overview["default"],
        "stage_names": " ".join(env.name for env in overview["stages"]),
    }
