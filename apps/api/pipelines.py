"""/api/v1 pipelines: an app's stages in promotion order, with each step's gates."""

from ninja import Router

from apps.access import CHANGE, READ, app_for
from apps.api.schemas import AppName, PipelineIn, PipelineOut, answers
from deployments.services import pipelines, promotion

router = Router(tags=["pipelines"])


@router.get("/apps/{name}/pipeline", response=answers(200, PipelineOut, 404), by_alias=True)
def get_pipeline(request, name: AppName):
    """Each stage's live deployment, and between each two the step's gates; promote along
    a step with POST /apps/{name}/promote {"from", "to"}."""
    return promotion.pipeline_overview(app_for(request.auth, name, to=READ))


@router.put("/apps/{name}/pipeline", response=answers(200, PipelineOut, 400, 404), by_alias=True)
def set_pipeline(request, name: AppName, payload: PipelineIn):
    """Replace the stages: existing environments, each once, previews excluded. Pending
    promotions along steps that disappear expire."""
    app = app_for(request.auth, name, to=CHANGE)
    pipelines.set_pipeline(app, payload.stages)
    return promotion.pipeline_overview(app)
