"""Metrics with history: what each live container used, and what the router saw per environment.

Rows are samples of PAAS_METRICS_SECONDS (`step`); after PAAS_METRICS_DOWNSAMPLE_HOURS they
are merged into DOWNSAMPLED_STEP rows, and after PAAS_METRICS_RETENTION_DAYS deleted
(deployments/workers/metrics.py). `at` is the end of the step a row covers.
"""

from django.db import models

# Old samples are merged into rows of this many seconds.
DOWNSAMPLED_STEP = 300


class EnvironmentMetric(models.Model):
    """What the router counted for one environment during one step (deltas, not totals)."""

    environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="metrics"
    )
    deployment = models.PositiveIntegerField(help_text="The live deployment's number.")
    at = models.DateTimeField()
    step = models.PositiveIntegerField(help_text="Seconds this row covers, ending at `at`.")
    requests = models.PositiveBigIntegerField(default=0)
    errors_5xx = models.PositiveBigIntegerField(default=0)
    latency_ms = models.FloatField(null=True, help_text="Mean over the step; None: no request.")

    class Meta:
        indexes = [models.Index(fields=["environment", "at"], name="envmetric_env_at")]

    @property
    def error_rate(self) -> float | None:
        return self.errors_5xx / self.requests if self.requests else None


class ContainerMetric(models.Model):
    """One container's CPU, memory and restart count at the end of one step."""

    environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="container_metrics"
    )
    container = models.CharField(max_length=128)
    process = models.CharField(max_length=64)
    replica = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    step = models.PositiveIntegerField()
    cpu_percent = models.FloatField()  # 100 = one core busy
    memory_bytes = models.PositiveBigIntegerField()
    memory_limit_bytes = models.PositiveBigIntegerField(default=0)  # 0: no limit
    # The engine's restart count of this container (its restart policy's restarts): a total,
    # so a merged row keeps the largest and a crash loop is the growth over a window.
    restarts = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["environment", "at"], name="ctrmetric_env_at"),
            models.Index(fields=["container", "at"], name="ctrmetric_container_at"),
        ]

    @property
    def memory_fraction(self) -> float | None:
        return self.memory_bytes / self.memory_limit_bytes if self.memory_limit_bytes else None


class RouterCounters(models.Model):
    """The router's totals for an environment at the last sample: the next sample stores the
    difference. Lost (the router restarted and its totals went down), the new totals count
    as the step's."""

    environment = models.OneToOneField(
        "apps.Environment", on_delete=models.CASCADE, related_name="router_counters"
    )
    at = models.DateTimeField()
    requests = models.FloatField()
    errors_5xx = models.FloatField()
    duration_sum = models.FloatField()  # seconds
    duration_count = models.FloatField()


class AlertEpisode(models.Model):
    """An alert that fired and has not cleared: one row per (kind, subject), so a condition
    that holds for an hour notifies once; cleared, the row is deleted (and says recovered)."""

    kind = models.CharField(max_length=32)
    subject = models.CharField(max_length=255)  # a container name, an environment id, "disk"
    environment = models.ForeignKey(
        "apps.Environment", null=True, on_delete=models.CASCADE, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"], name="alert_episode_unique")
        ]
