"""One-off runs (a command in a fresh container from an environment's live image), their
output, and the scheduled jobs (cron) that start them."""

import re
from datetime import datetime

from croniter import croniter
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from deployments.models import log_cap
from paas import transitions
from paas.transitions import InvalidTransition  # noqa: F401 - importable from here too

COMMAND_MAX = 2000
JOB_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
CRON_FIELDS = 5


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = frozenset({RunStatus.PENDING, RunStatus.RUNNING})
FINAL_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})

# A pending run is claimed by a worker (running) or cancelled or failed before it starts
# (nothing live any more); a running one ends. Every end is final.
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def validate_command(command: str) -> str:
    """A shell command line: not empty, no NUL byte (no process can take one), not too long."""
    if not isinstance(command, str) or not command.strip():
        raise ValidationError({"command": ["Enter a command to run."]})
    if "\x00" in command:
        raise ValidationError({"command": ["A command cannot hold a NUL character."]})
    if len(command) > COMMAND_MAX:
        raise ValidationError({"command": [f"At most {COMMAND_MAX} characters."]})
    return command.strip()


class Run(models.Model):
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="runs")
    environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="runs"
    )
    command = models.TextField(max_length=COMMAND_MAX)
    status = models.CharField(
        max_length=16, choices=RunStatus, default=RunStatus.PENDING, db_index=True
    )
    exit_code = models.IntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scheduled_job = models.ForeignKey(
        "deployments.ScheduledJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    # The live deployment whose image it runs (chosen when it starts).
    deployment = models.ForeignKey(
        "deployments.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    container_name = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The log's head-and-tail cap (deployments/models/log_cap.py): lines sent, and the
    # line that says how many were dropped.
    log_lines_written = models.PositiveIntegerField(default=0, editable=False)
    log_marker_id = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["app", "-id"], name="run_app_recent")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.app_id}: {self.command[:40]}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def labels(self) -> dict[str, str]:
        """Labels of its container: the warden finds a dead worker's container by them."""
        return {
            "slipway.instance": settings.PAAS_INSTANCE,
            "slipway.app": self.app.name,
            "slipway.environment": self.environment.name,
            "slipway.run": str(self.pk),
        }

    # --- guarded transitions -------------------------------------------------------------

    def _move(self, target: str, **fields) -> None:
        if target in FINAL_RUN_STATUSES:
            fields["finished_at"] = timezone.now()
        transitions.move(self, "status", RUN_TRANSITIONS, target, f"run {self.pk}", **fields)

    def claim(self, deployment, container_name: str) -> bool:
        """pending -> running, only if still pending: a duplicate task gets False."""
        now = timezone.now()
        try:
            self._move(
                RunStatus.RUNNING,
                started_at=now,
                heartbeat_at=now,
                deployment=deployment,
                container_name=container_name,
            )
        except InvalidTransition:
            return False
        return True

    def mark_succeeded(self, exit_code: int) -> None:
        self._move(RunStatus.SUCCEEDED, exit_code=exit_code)

    def mark_failed(self, code: str, message: str, exit_code: int | None = None) -> None:
        self._move(RunStatus.FAILED, error_code=code, message=message[:4000], exit_code=exit_code)

    def mark_cancelled(self, message: str = "Cancelled.", exit_code: int | None = None) -> None:
        self._move(
            RunStatus.CANCELLED, error_code="cancelled", message=message, exit_code=exit_code
        )

    def request_cancel(self) -> None:
        """Tell the worker running it to kill its container (it looks every second)."""
        self.cancel_requested = True
        Run.objects.filter(pk=self.pk).update(cancel_requested=True)

    def beat(self) -> None:
        self.heartbeat_at = timezone.now()
        Run.objects.filter(pk=self.pk).update(heartbeat_at=self.heartbeat_at)

    def log(self, text: str) -> "RunLogLine":
        return log_cap.append(self, self.log_lines, text=text)


class RunLogLine(models.Model):
    """One line of a run's output; the id is the cursor, as for a deployment's LogLine."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="runlogline_cursor")]

    def __str__(self) -> str:
        return self.text[:80]

    @classmethod
    def page(cls, run: Run, after: int = 0, limit: int = 500) -> list["RunLogLine"]:
        lines = log_cap.visible(run, cls.objects.filter(run=run))
        return list(lines.filter(id__gt=after).order_by("id")[:limit])


def validate_job_name(name: str) -> str:
    if not isinstance(name, str) or not JOB_NAME.fullmatch(name):
        raise ValidationError(
            {"name": ["Use 1-63 lowercase letters, digits and hyphens (not first or last)."]}
        )
    return name


def validate_schedule(schedule: str) -> str:
    """Five cron fields (minute hour day-of-month month day-of-week), checked by croniter."""
    expression = " ".join(str(schedule or "").split())
    if len(expression.split(" ")) != CRON_FIELDS:
        raise ValidationError(
            {"schedule": ["Use 5 cron fields: minute hour day-of-month month day-of-week."]}
        )
    if not croniter.is_valid(expression):
        raise ValidationError(
            {
                "schedule": [
                    f"“{expression}” is not a valid cron expression (a field is out of range?)."
                ]
            }
        )
    return expression


class ScheduledJob(models.Model):
    """A command an environment runs on a cron schedule (5 fields, UTC), as a one-off run."""

    environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="scheduled_jobs"
    )
    name = models.CharField(max_length=63)
    schedule = models.CharField(max_length=200)
    command = models.TextField(max_length=COMMAND_MAX)
    enabled = models.BooleanField(default=True)
    # The last fire time a tick claimed (a conditional update): each fire time runs once.
    last_scheduled_at = models.DateTimeField(null=True, blank=True)
    skipped_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["environment_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="scheduled_job_unique")
        ]

    def __str__(self) -> str:
        return f"{self.environment}: {self.name}"

    @property
    def app(self):
        return self.environment.app

    @property
    def last_run(self) -> Run | None:
        return self.runs.order_by("-id").first()

    def due_fire_time(self, now: datetime) -> datetime | None:
        """The latest fire time at or before now, when it is later than the last one claimed
        (or than the job's creation); None when nothing is due. Missed fire times after a
        pause collapse into this one: a job never catches up with a burst."""
        latest = croniter(self.schedule, now).get_prev(datetime)
        since = self.last_scheduled_at or self.created_at
        return latest if latest > since else None

    def claim_fire_time(self, fire_time: datetime) -> bool:
        """Take this fire time with a conditional update: of two ticks, one wins."""
        # `last_scheduled_at=None` is IS NULL in Django: a job's first fire time too.
        claimed = ScheduledJob.objects.filter(
            pk=self.pk, last_scheduled_at=self.last_scheduled_at, enabled=True
        )
        if not claimed.update(last_scheduled_at=fire_time):
            return False
        self.last_scheduled_at = fire_time
        return True

    def record_skip(self) -> None:
        self.skipped_count += 1
        ScheduledJob.objects.filter(pk=self.pk).update(skipped_count=models.F("skipped_count") + 1)
