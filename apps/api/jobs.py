"""/api/v1 scheduled jobs: a command an environment runs on a cron schedule (5 fields, UTC)
as a one-off run. The job payloads are defined here, once."""

from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict, StrictBool

from apps.access import CHANGE, app_for
from apps.api.runs import RunListOut, RunOut
from apps.api.schemas import AppName, EnvironmentChoice, Id, Timestamp, answers
from deployments.services import runs as service

router = Router(tags=["scheduled jobs"])

JOB = "/apps/{name}/jobs/{int:job_id}"


class JobIn(Schema):
    model_config = ConfigDict(extra="forbid")

    environment: EnvironmentChoice = "production"
    name: str = Field(description="Lowercase letters, digits and hyphens; unique per environment.")
    schedule: str = Field(description="5 cron fields, UTC: minute hour day month weekday.")
    command: str = Field(description="Run by `sh -c` in the live image, as a one-off run.")
    enabled: StrictBool = True


class JobPatchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool


class JobOut(Schema):
    id: int
    environment: str
    name: str
    schedule: str
    command: str
    enabled: bool
    skipped: int = Field(description="Fire times skipped: the previous run was still going.")
    last_scheduled_at: Timestamp | None
    last_run: RunOut | None
    created_at: Timestamp

    @staticmethod
    def resolve_environment(job) -> str:
        return job.environment.name

    @staticmethod
    def resolve_skipped(job) -> int:
        return job.skipped_count


class JobListOut(Schema):
    jobs: list[JobOut]


class JobDeletedOut(Schema):
    id: int
    deleted: bool


@router.get("/apps/{name}/jobs", response=answers(200, JobListOut, 404))
def list_jobs(request, name: AppName):
    return {"jobs": service.jobs_of(app_for(request.auth, name, to=CHANGE))}


@router.post("/apps/{name}/jobs", response=answers(201, JobOut, 400, 404))
def create_job(request, name: AppName, payload: JobIn):
    """A bad schedule, name or command: 400 naming each field; nothing is made."""
    app = app_for(request.auth, name, to=CHANGE)
    return Status(201, service.create_job(app, payload.dict()))


@router.get(JOB, response=answers(200, JobOut, 404))
def get_job(request, name: AppName, job_id: Id):
    return service.job_for(app_for(request.auth, name, to=CHANGE), job_id)


@router.patch(JOB, response=answers(200, JobOut, 400, 404))
def change_job(request, name: AppName, job_id: Id, payload: JobPatchIn):
    """Turn it on or off; turned on, it runs from its next fire time on."""
    job = service.job_for(app_for(request.auth, name, to=CHANGE), job_id)
    return service.set_job_enabled(job, payload.enabled)


@router.delete(JOB, response=answers(200, JobDeletedOut, 404))
def delete_job(request, name: AppName, job_id: Id):
    """Its runs stay in the app's run history."""
    job = service.job_for(app_for(request.auth, name, to=CHANGE), job_id)
    service.delete_job(job)
    return JobDeletedOut(id=job_id, deleted=True)


@router.get(JOB + "/runs", response=answers(200, RunListOut, 404))
def job_runs(request, name: AppName, job_id: Id):
    """The runs it started, skipped ones too (cancelled, error code `skipped`), newest first."""
    job = service.job_for(app_for(request.auth, name, to=CHANGE), job_id)
    return {"runs": service.runs_of_job(job)}
