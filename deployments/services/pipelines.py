"""Pipelines: an app's environments in the order an image moves along them (say dev →
staging → production). A promotion moves one stage's live image to the next stage; each
such step has its own gates (deployments/services/promotion.py).

An app that never set its pipeline has the default one: staging → production, or
production alone once staging is gone. Setting it stores rows; deleting an environment
takes its stage (and the gates of the step into it) along.
"""

from __future__ import annotations

from itertools import pairwise

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.models import App, Environment, EnvironmentName
from apps.validators import RESERVED_ENVIRONMENT_PREFIX
from deployments.models.promotion import PipelineStage, PromotionStatus
from deployments.services import Conflict, environment_named, no_staging
from deployments.services.audit import audited

DEFAULT_STAGES = (EnvironmentName.STAGING, EnvironmentName.PRODUCTION)


def stages_of(app: App) -> list[Environment]:
    rows = app.pipeline_stages.select_related("environment__app").order_by("position")
    stages = [row.environment for row in rows]
    if stages:
        return stages
    found = {env.name: env for env in app.environments.filter(name__in=DEFAULT_STAGES)}
    return [found[name] for name in DEFAULT_STAGES if name in found]


def steps_of(app: App) -> list[tuple[Environment, Environment]]:
    """Each stage with the one after it: the promotions the pipeline allows."""
    return list(pairwise(stages_of(app)))


def describe(stages: list[Environment]) -> str:
    return " → ".join(env.name for env in stages) or "(empty)"


def step(app: App, source_name: str, target_name: str) -> tuple[Environment, Environment]:
    """The two environments of a promotion, if the pipeline goes from one to the other."""
    if (
        source_name == EnvironmentName.STAGING
        and not app.environments.filter(name=source_name).exists()
    ):
        raise no_staging(app)  # the call without a body has always answered this way
    source = environment_named(app, source_name)
    target = environment_named(app, target_name)
    if (source, target) not in steps_of(app):
        raise Conflict(
            f"{source.name} → {target.name} is not a step of {app.name}'s pipeline "
            f"({describe(stages_of(app))}): promote from a stage to the one after it.",
            "not_a_step",
        )
    return source, target


@audited("pipeline.set", details=lambda stages, app, names: {"stages": list(names)})
def set_pipeline(app: App, names: list[str]) -> list[Environment]:
    """Replace the stages, all checked first: an invalid list changes nothing. Pending
    promotions of steps that no longer exist expire (approving one would promote along a
    path nobody drew)."""
    stages = _checked_stages(app, names)
    with transaction.atomic():
        app.pipeline_stages.all().delete()
        PipelineStage.objects.bulk_create(
            PipelineStage(app=app, environment=env, position=index)
            for index, env in enumerate(stages)
        )
        _expire_requests_off_the_pipeline(app)
    return stages


def _checked_stages(app: App, names: list[str]) -> list[Environment]:
    if not names:
        raise ValidationError({"stages": ["A pipeline needs at least one environment."]})
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValidationError({"stages": [f"Named twice: {', '.join(twice)}."]})
    found = {env.name: env for env in app.environments.filter(name__in=names)}
    unknown = [name for name in names if name not in found]
    if unknown:
        listed = ", ".join(str(name) for name in unknown)
        raise ValidationError({"stages": [f"{app.name} has no environment named {listed}."]})
    previews = [name for name in names if name.startswith(RESERVED_ENVIRONMENT_PREFIX)]
    if previews:
        raise ValidationError(
            {"stages": [f"Preview environments are not stages: {', '.join(previews)}."]}
        )
    dying = [name for name in names if found[name].cleanup_requested]
    if dying:
        raise ValidationError({"stages": [f"Being deleted: {', '.join(dying)}."]})
    return [found[name] for name in names]


def _expire_requests_off_the_pipeline(app: App) -> None:
    steps = {(source.pk, target.pk) for source, target in steps_of(app)}
    pending = app.promotion_requests.filter(status=PromotionStatus.PENDING)
    for request in pending.select_for_update():
        if (request.source_environment_id, request.target_environment_id) not in steps:
            request.expire()
