"""One-off runs and scheduled jobs: the use cases behind the API, the dashboard and the cron
tick. A run is a row first and a container later: the worker (deployments/workers/runs.py)
claims it, runs the command from the environment's live image and records how it ended."""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.models import App, Environment
from deployments import jobs
from deployments.models import (
    ACTIVE_RUN_STATUSES,
    InvalidTransition,
    Run,
    RunStatus,
    ScheduledJob,
    validate_command,
    validate_job_name,
    validate_schedule,
)
from deployments.services import Conflict, environment_named
from deployments.services.audit import audited

logger = logging.getLogger(__name__)

HISTORY = 50  # runs listed at most


# --- lookups (another user's app is a 404 already: app_for) ----------------------------------


def run_for(app: App, run_id: int) -> Run:
    return get_object_or_404(Run.objects.select_related("environment", "app"), pk=run_id, app=app)


def job_for(app: App, job_id: int) -> ScheduledJob:
    jobs_of_app = ScheduledJob.objects.select_related("environment__app")
    return get_object_or_404(jobs_of_app, pk=job_id, environment__app=app)


def runs_of(app: App, limit: int = HISTORY) -> list[Run]:
    return list(app.runs.select_related("environment", "scheduled_job")[:limit])


def jobs_of(app: App) -> list[ScheduledJob]:
    return list(ScheduledJob.objects.filter(environment__app=app).select_related("environment"))


def runs_of_job(job: ScheduledJob, limit: int = HISTORY) -> list[Run]:
    return list(job.runs.select_related("environment")[:limit])


# --- one-off runs -----------------------------------------------------------------------------


# The command is not recorded: a one-off may carry a secret on its command line.
@audited("run.start", target=lambda run, *a, **k: f"run #{run.pk} {run.environment.name}")
def start_run(app: App, environment_name: str, command: str, requested_by=None) -> Run:
    """Queue `command` in a fresh container from the environment's live image. Refused (and
    nothing made) with 409 when nothing is live there."""
    command = validate_command(command)
    environment = environment_named(app, environment_name)
    _check_runnable(app, environment)
    run = Run.objects.create(
        app=app, environment=environment, command=command, requested_by=requested_by
    )
    jobs.run_command(run.pk)
    return run


def _check_runnable(app: App, environment: Environment) -> None:
    if app.cleanup_requested_at is not None:
        raise Conflict(f"The app “{app.name}” is being deleted.", "app_deleting")
    if environment.live_deployment_id is None:
        raise Conflict(
            f"Nothing is deployed to {environment.name} yet: a command runs in a container "
            "from the live deployment's image, so deploy the app first.",
            "not_deployed",
        )


@audited("run.cancel", target=lambda r, run: f"run #{run.pk}")
def cancel_run(run: Run) -> Run:
    """A pending run is cancelled at once; a running one is killed by its worker within a
    second or so (it turns cancelled then)."""
    if run.status == RunStatus.PENDING:
        try:
            run.mark_cancelled("Cancelled before it started.")
            return run
        except InvalidTransition:
            pass  # a worker claimed it meanwhile: ask that worker
    if run.status == RunStatus.RUNNING:
        run.request_cancel()
        return run
    raise Conflict(f"Run {run.pk} is {run.status} and cannot be cancelled.", "not_cancellable")


# --- scheduled jobs ---------------------------------------------------------------------------


@audited(
    "job.create",
    target=lambda job, *a: job.name,
    details=lambda job, *a: {"schedule": job.schedule},
)
def create_job(app: App, data: dict) -> ScheduledJob:
    """Check every field (all the errors at once, per field) and save; nothing on a refusal."""
    environment_name = data.get("environment", "production")
    cleaned, errors = _cleaned_job(data)
    if errors:
        raise ValidationError(errors)
    environment = environment_named(app, environment_name)
    try:
        with transaction.atomic():
            return ScheduledJob.objects.create(environment=environment, **cleaned)
    except IntegrityError:
        raise ValidationError(
            {"name": [f"A job called “{cleaned['name']}” exists in {environment.name} already."]}
        ) from None


def _cleaned_job(data: dict) -> tuple[dict, dict]:
    cleaned, errors = {}, {}
    checks = {
        "name": validate_job_name,
        "schedule": validate_schedule,
        "command": validate_command,
    }
    for field, check in checks.items():
        try:
            cleaned[field] = check(data.get(field, ""))
        except ValidationError as exc:
            errors.update(exc.message_dict)
    cleaned["enabled"] = bool(data.get("enabled", True))
    return cleaned, errors


@audited(
    "job.enable",
    target=lambda r, job, enabled: job.name,
    details=lambda r, job, enabled: {"enabled": enabled},
)
def set_job_enabled(job: ScheduledJob, enabled: bool) -> ScheduledJob:
    """Turned on, a job starts from now: fire times it missed while off never run."""
    changes = {"enabled": enabled}
    if enabled and not job.enabled:
        changes["last_scheduled_at"] = timezone.now()
    ScheduledJob.objects.filter(pk=job.pk).update(**changes)
    for field, value in changes.items():
        setattr(job, field, value)
    return job


@audited("job.delete", target=lambda r, job: job.name)
def delete_job(job: ScheduledJob) -> None:
    """Its runs stay in the history (scheduled_job becomes empty); a running one finishes."""
    job.delete()


# --- the cron tick ----------------------------------------------------------------------------


def schedule_due_jobs(now=None) -> int:
    """For every enabled job with a fire time since it was last scheduled, take that fire
    time (a conditional update: two racing ticks start it once) and start a run, or record
    a skip. Returns how many fire times were taken."""
    now = now or timezone.now()
    taken = 0
    candidates = ScheduledJob.objects.filter(
        enabled=True, environment__app__cleanup_requested_at__isnull=True
    ).select_related("environment__app")
    for job in candidates:
        fire_time = job.due_fire_time(now)
        if fire_time is None or not job.claim_fire_time(fire_time):
            continue
        taken += 1
        try:
            start_scheduled(job)
        except Exception:  # noqa: BLE001 - one job must not keep the others from running
            logger.exception("could not start scheduled job %s", job)
    return taken


def start_scheduled(job: ScheduledJob) -> Run:
    """A run of the job, or a run recorded as skipped (cancelled, with the reason) when the
    previous one is still going or nothing is deployed."""
    environment = job.environment
    busy = job.runs.filter(status__in=ACTIVE_RUN_STATUSES).order_by("-id").first()
    if busy is not None:
        job.record_skip()
        reason = f"Skipped: run {busy.pk} of this job was still {busy.status}."
        return _skipped(job, "skipped", reason)
    if environment.live_deployment_id is None:
        job.record_skip()
        return _skipped(job, "not_deployed", f"Skipped: nothing is deployed to {environment.name}.")
    run = Run.objects.create(
        app=environment.app, environment=environment, command=job.command, scheduled_job=job
    )
    jobs.run_command(run.pk)
    return run


def _skipped(job: ScheduledJob, code: str, message: str) -> Run:
    now = timezone.now()
    logger.info("scheduled job %s: %s", job, message)
    return Run.objects.create(
        app=job.environment.app,
        environment=job.environment,
        command=job.command,
        scheduled_job=job,
        status=RunStatus.CANCELLED,
        error_code=code,
        message=message,
        finished_at=now,
    )
