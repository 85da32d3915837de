"""Deployments, their guarded status machine, and their log lines."""

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from deployments.models import log_cap
from paas import transitions
from paas.transitions import InvalidTransition  # noqa: F401 - importable from here too

# The process type the router sends requests to; every other type only has to stay up.
WEB = "web"


class Status(models.TextChoices):
    PENDING = "pending"
    BUILDING = "building"
    STARTING = "starting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


FINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.SUPERSEDED})
ACTIVE_STATUSES = frozenset({Status.PENDING, Status.BUILDING, Status.STARTING})

# Every move a deployment may make. BUILDING/STARTING -> PENDING is the hand-back after a
# worker died mid-run (the warden requeues it, the pipeline undoes what it had made first).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset(
        {Status.BUILDING, Status.CANCELLED, Status.SUPERSEDED, Status.FAILED}
    ),
    Status.BUILDING: frozenset({Status.STARTING, Status.FAILED, Status.CANCELLED, Status.PENDING}),
    Status.STARTING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.PENDING}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.SUPERSEDED: frozenset(),
}


class Trigger(models.TextChoices):
    MANUAL = "manual"
    GIT = "git"
    WEBHOOK = "webhook"
    REDEPLOY = "redeploy"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"
    RESTART = "restart"
    SCALE = "scale"


# A deployment whose build goes to a build node (workers/pipeline/__init__.py) moves through
# these in step_data["handover"]. While QUEUED or BUILT it waits in a Celery queue and
# nothing beats its heartbeat: the warden gives it PAAS_BUILD_WAIT_TIMEOUT, not the
# heartbeat's timeout.
HANDOVER = "handover"
QUEUED, BUILDING_ON_NODE, BUILT, RESUMED = "queued", "building", "built", "resumed"
WAITING_STAGES = (QUEUED, BUILT)


class DeploymentQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_STATUSES)

    def pushed_images(self) -> set[str]:
        """Their images built on a build node, named by digest in the registry: all a
        manager knows of them (workers.pipeline.hand_back)."""
        return {image for image in self.values_list("image_id", flat=True) if "@" in image}

    def visible_to(self, user):
        return self if user.is_staff else self.filter(app__owner=user)

    def successful(self):
        return self.filter(status=Status.SUCCEEDED)


class Deployment(models.Model):
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="deployments")
    environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="deployments"
    )
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=16, choices=Trigger, default=Trigger.MANUAL)
    commit_sha = models.CharField(max_length=64, blank=True)
    commit_message = models.CharField(max_length=500, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    source_deployment = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    image_id = models.CharField(max_length=128, blank=True)
    image_tag = models.CharField(max_length=200, blank=True)
    build_method = models.CharField(max_length=16, blank=True)
    containers = models.JSONField(default=list, blank=True)
    step = models.CharField(max_length=32, blank=True, help_text="The pipeline step reached.")
    step_data = models.JSONField(default=dict, blank=True)
    # The log's head-and-tail cap (deployments/models/log_cap.py): lines sent, and the
    # line that says how many were dropped.
    log_lines_written = models.PositiveIntegerField(default=0, editable=False)
    log_marker_id = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = DeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["app", "number"], name="deployment_number_unique")
        ]
        indexes = [models.Index(fields=["environment", "status"])]

    def __str__(self) -> str:
        return f"{self.app.name} #{self.number}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    # --- guarded transitions -------------------------------------------------------------

    def _move(self, target: str, **fields) -> None:
        """Move only if the row still has the status this object saw (a conditional update),
        so a cancel from the dashboard and a step finishing in the worker cannot both win."""
        if not self.can_move_to(target):
            raise InvalidTransition(self._subject, self.status, target)
        if target in FINAL_STATUSES:
            fields["finished_at"] = timezone.now()
        try:
            transitions.move(self, "status", TRANSITIONS, target, self._subject, **fields)
        except InvalidTransition:
            # Another move won the race. It may have written more than the status (a
            # cancel's error fields), and the pipeline reads those from this object.
            self.refresh_from_db()
            raise

    @property
    def _subject(self) -> str:
        return f"deployment #{self.number} of {self.app_id}"

    def can_move_to(self, target: str) -> bool:
        return transitions.allows(TRANSITIONS, self.status, target)

    def mark_building(self) -> None:
        self._move(Status.BUILDING, started_at=self.started_at or timezone.now())

    def mark_starting(self) -> None:
        self._move(Status.STARTING)

    def mark_succeeded(self) -> None:
        self._move(Status.SUCCEEDED, error_code="", error_message="")

    def mark_failed(self, code: str, message: str) -> None:
        self._move(Status.FAILED, error_code=code, error_message=message[:4000])

    def mark_cancelled(self, message: str = "Cancelled.") -> None:
        self._move(Status.CANCELLED, error_code="cancelled", error_message=message)

    def mark_superseded(self, by: "Deployment") -> None:
        self._move(
            Status.SUPERSEDED,
            error_code="superseded",
            error_message=f"Superseded by deployment #{by.number}.",
        )

    def mark_pending_again(self) -> None:
        """Hand a deployment whose worker died back to the queue."""
        self._move(Status.PENDING, attempt=self.attempt + 1)

    # --- claiming ------------------------------------------------------------------------

    def claim(self) -> bool:
        """Move pending -> building only if still pending; a duplicate task gets False."""
        now = timezone.now()
        try:
            self._move(Status.BUILDING, started_at=now, heartbeat_at=now)
        except InvalidTransition:
            return False
        self.refresh_from_db()
        return True

    def beat(self) -> None:
        self.heartbeat_at = timezone.now()
        Deployment.objects.filter(pk=self.pk).update(heartbeat_at=self.heartbeat_at)

    # --- pipeline bookkeeping ------------------------------------------------------------

    def hand_over(self, expected: str, to: str, attempt: int) -> bool:
        """Move a build node's hand-over (step_data["handover"], PAAS_BUILD_QUEUE) from
        `expected` to `to`, once and only for this attempt: a duplicate message, or one the
        warden's retry overtook, finds it elsewhere and gets False."""
        with transaction.atomic():
            row = (
                Deployment.objects.select_for_update()
                .filter(pk=self.pk, status=Status.BUILDING, attempt=attempt)
                .first()
            )
            if row is None or row.step_data.get(HANDOVER, "") != expected:
                return False
            row.step_data = {**row.step_data, HANDOVER: to}
            row.heartbeat_at = timezone.now()
            row.save(update_fields=["step_data", "heartbeat_at"])
        self.refresh_from_db()
        return True

    def record_step(self, step: str, **data) -> None:
        self.step = step
        self.step_data = {**self.step_data, **data}
        self.heartbeat_at = timezone.now()
        self.save(update_fields=["step", "step_data", "heartbeat_at"])

    @property
    def web_containers(self) -> list[str]:
        """Its web replicas' containers, in replica order (recorded by the start step)."""
        data = self.step_data
        if "container_ids" in data:
            return list(data["container_ids"])
        # A deployment made before replicas had one container, under this key.
        return [data["container_id"]] if data.get("container_id") else []

    @property
    def processes(self) -> dict[str, str]:
        """Process type -> command, settled when it was built (Procfile, start command); web's
        "" means the image's own command. Never holds `release` (see release_command)."""
        return dict(self.step_data.get("processes") or {WEB: ""})

    @property
    def release_command(self) -> str:
        return self.step_data.get("release_command", "")

    @property
    def process_containers(self) -> dict[str, list[str]]:
        """Its containers of each process type but web, in replica order."""
        recorded = self.step_data.get("process_containers") or {}
        return {kind: list(ids) for kind, ids in recorded.items()}

    @property
    def web_port(self) -> int | None:
        """The port its web replicas listen on when found by the health check (not $PORT)."""
        return self.step_data.get("port")

    @property
    def recorded_upstreams(self) -> list[str]:
        """Where its web replicas answered when last checked ("ip:port" each)."""
        data = self.step_data
        if "upstreams" in data:
            return list(data["upstreams"])
        return [data["upstream"]] if data.get("upstream") else []

    def patch_step_data(self, check=None, **changes) -> dict | None:
        """Change some step_data keys under a row lock (None removes a key), so the warden
        and a stop or start never overwrite each other's keys; with `check`, only if it
        approves the current data. Returns the new data, or None when check refused."""
        with transaction.atomic():
            data = Deployment.objects.select_for_update().get(pk=self.pk).step_data
            if check is not None and not check(data):
                return None
            data = {k: v for k, v in {**data, **changes}.items() if v is not None}
            Deployment.objects.filter(pk=self.pk).update(step_data=data)
        self.step_data = data
        return data

    def log(self, text: str, stream: str = "deploy") -> "LogLine":
        return log_cap.append(self, self.log_lines, text=text, stream=stream)


class LogLine(models.Model):
    """One line of build or deploy output. The id is the cursor: a page after any cursor is
    `deployment = X AND id > cursor ORDER BY id`, one range scan of the composite index."""

    id = models.BigAutoField(primary_key=True)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="log_lines")
    stream = models.CharField(max_length=8, default="deploy")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["deployment", "id"], name="logline_cursor")]

    def __str__(self) -> str:
        return self.text[:80]

    @classmethod
    def page(cls, deployment: Deployment, after: int = 0, limit: int = 500) -> list["LogLine"]:
        lines = log_cap.visible(deployment, cls.objects.filter(deployment=deployment))
        return list(lines.filter(id__gt=after).order_by("id")[:limit])
