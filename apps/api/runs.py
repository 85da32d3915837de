"""/api/v1 one-off runs: a command in a fresh container from an environment's live image,
its output paged by cursor, and a kill. The run payloads are defined here, once."""

from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from apps.access import CHANGE, app_for
from apps.api.schemas import (
    AppName,
    EnvironmentChoice,
    Failure,
    Id,
    LogLineOut,
    Timestamp,
    WholeNumber,
    answers,
)
from deployments.models import RunLogLine
from deployments.services import runs as service

router = Router(tags=["runs"])

RUN = "/apps/{name}/runs/{int:run_id}"
LOG_PAGE, LOG_MAX = 500, 5000


class RunIn(Schema):
    model_config = ConfigDict(extra="forbid")

    environment: EnvironmentChoice = "production"
    command: str = Field(description="Run by `sh -c` in the live image; at most 2000 characters.")


class RunQueuedOut(Schema):
    id: int
    status: str


class RunOut(Schema):
    id: int
    environment: str
    command: str
    status: str = Field(description="pending, running, succeeded, failed or cancelled.")
    exit_code: int | None
    error: Failure | None = Field(description="Why it failed, was cancelled or skipped.")
    scheduled_job: int | None = Field(description="The scheduled job that started it.")
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None

    @staticmethod
    def resolve_environment(run) -> str:
        return run.environment.name

    @staticmethod
    def resolve_error(run) -> Failure | None:
        return Failure(code=run.error_code, message=run.message) if run.error_code else None

    @staticmethod
    def resolve_scheduled_job(run) -> int | None:
        return run.scheduled_job_id


class RunListOut(Schema):
    runs: list[RunOut]


class RunLogOut(Schema):
    lines: list[LogLineOut]
    next: int = Field(description="Pass as ?after= to get the lines after these.")
    final: bool = Field(description="The run is over: no more lines will come.")

    @classmethod
    def page(cls, run, lines: list, after: int) -> "RunLogOut":
        return cls(lines=lines, next=lines[-1].id if lines else after, final=run.is_final)


@router.post("/apps/{name}/runs", response=answers(202, RunQueuedOut, 400, 404, 409))
def start_run(request, name: AppName, payload: RunIn):
    """409 when nothing is deployed to the environment (nothing is made then)."""
    app = app_for(request.auth, name, to=CHANGE)
    run = service.start_run(app, payload.environment, payload.command, requested_by=request.auth)
    return Status(202, run)


@router.get("/apps/{name}/runs", response=answers(200, RunListOut, 404))
def list_runs(request, name: AppName):
    """The latest runs, newest first (scheduled ones included)."""
    return {"runs": service.runs_of(app_for(request.auth, name, to=CHANGE))}


@router.get(RUN, response=answers(200, RunOut, 404))
def get_run(request, name: AppName, run_id: Id):
    return service.run_for(app_for(request.auth, name, to=CHANGE), run_id)


@router.get(RUN + "/logs", response=answers(200, RunLogOut, 400, 404))
def run_log(request, name: AppName, run_id: Id, after: WholeNumber = 0, limit: WholeNumber = 0):
    """Its output after a cursor; `final` once nothing more will come."""
    run = service.run_for(app_for(request.auth, name, to=CHANGE), run_id)  # read before the lines
    lines = RunLogLine.page(run, after=after, limit=min(limit or LOG_PAGE, LOG_MAX))
    return RunLogOut.page(run, lines, after)


@router.post(RUN + "/cancel", response=answers(202, RunOut, 404, 409))
def cancel_run(request, name: AppName, run_id: Id):
    """Pending: cancelled at once. Running: its container is killed within a second or two
    (the status turns cancelled then)."""
    run = service.run_for(app_for(request.auth, name, to=CHANGE), run_id)
    return Status(202, service.cancel_run(run))
