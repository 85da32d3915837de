"""Pipelines and their gates: the ordered stages an app's image moves along, what must
hold before it moves into a stage, and the requests that wait for a second person."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from paas import transitions
from paas.transitions import InvalidTransition

# The check runs while the dashboard's request waits: bounded well under the web timeout.
CHECK_TIMEOUT_MAX = 15.0

validate_check_path = RegexValidator(
    r"^/[^\s#]*$", "A path on the source stage's site, starting with “/” (e.g. /healthz)."
)


class PipelineStage(models.Model):
    """One environment's place in its app's pipeline; a promotion moves the live image of
    one stage to the next. An app without rows has the default pipeline (see
    deployments/services/pipelines.py). Deleting an environment takes its stage along."""

    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="pipeline_stages")
    environment = models.OneToOneField(
        "apps.Environment", on_delete=models.CASCADE, related_name="pipeline_stage"
    )
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["app", "position"]
        constraints = [
            models.UniqueConstraint(fields=["app", "position"], name="pipeline_stage_position")
        ]

    def __str__(self) -> str:
        return f"{self.app} stage {self.position}: {self.environment.name}"


class PromotionPolicy(models.Model):
    """The gates of one pipeline step, named by the environment it promotes into; no row
    (or every gate off) means promotions into that environment go straight through."""

    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="promotion_policies")
    environment = models.OneToOneField(
        "apps.Environment",
        on_delete=models.CASCADE,
        related_name="promotion_policy",
        help_text="The step into this environment (from the stage before it).",
    )
    require_approval = models.BooleanField(
        default=False,
        help_text="A second person (the owner, or a superuser) approves each promotion.",
    )
    check_path = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_check_path],
        help_text="Empty: no check. Else the source stage must answer GET <path> first.",
    )
    check_expected_status = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(100), MaxValueValidator(599)]
    )
    check_timeout = models.FloatField(
        default=5.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(CHECK_TIMEOUT_MAX)],
        help_text=f"Seconds, at most {CHECK_TIMEOUT_MAX:g}.",
    )
    require_ci_success = models.BooleanField(
        default=False,
        help_text="The commit the source stage runs must have passed CI on the Git provider.",
    )

    class Meta:
        verbose_name_plural = "promotion policies"

    def __str__(self) -> str:
        return f"promotion policy of {self.app} into {self.environment.name}"

    @property
    def has_check(self) -> bool:
        return bool(self.check_path)

    @property
    def has_gates(self) -> bool:
        return self.require_approval or self.has_check or self.require_ci_success


class PromotionStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


# A request is decided once, from pending; every decision is final.
PROMOTION_TRANSITIONS: dict[str, frozenset[str]] = {
    PromotionStatus.PENDING: frozenset(
        {PromotionStatus.APPROVED, PromotionStatus.REJECTED, PromotionStatus.EXPIRED}
    ),
    PromotionStatus.APPROVED: frozenset(),
    PromotionStatus.REJECTED: frozenset(),
    PromotionStatus.EXPIRED: frozenset(),
}

# The old name: the request was decided already (by someone else a moment ago, or long
# ago). `except PromotionDecided` catches every refused move.
PromotionDecided = InvalidTransition


class PromotionRequest(models.Model):
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="promotion_requests")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_deployment = models.ForeignKey(
        "deployments.Deployment", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The step: from one stage to the next. A deleted environment takes its requests along.
    source_environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="+"
    )
    target_environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=PromotionStatus, default=PromotionStatus.PENDING
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Whoever decided: approved or rejected.",
    )
    deployment = models.ForeignKey(
        "deployments.Deployment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The promote deployment queued on approval.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Two people pressing "promote" at once get the same request, not two.
            models.UniqueConstraint(
                fields=["target_environment"],
                condition=Q(status="pending"),
                name="one_pending_promotion_per_step",
            )
        ]

    def __str__(self) -> str:
        return f"promotion of {self.app} into {self.target_environment.name} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == PromotionStatus.PENDING

    def approve(self, user, deployment) -> None:
        self._decide(PromotionStatus.APPROVED, approved_by=user, deployment=deployment)

    def reject(self, user) -> None:
        self._decide(PromotionStatus.REJECTED, approved_by=user)

    def expire(self) -> None:
        self._decide(PromotionStatus.EXPIRED)

    def _decide(self, status: str, **fields) -> None:
        """Only a pending request is decided, and only once (a guarded move). When someone
        else decided first, this object learns their decision and the move is refused."""
        transitions.move(
            self, "status", PROMOTION_TRANSITIONS, status, decided_at=timezone.now(), **fields
        )
