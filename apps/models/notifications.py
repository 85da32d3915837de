"""Outbound notifications: where an app's events are sent, and a log of every send.

A delivery row is made once per (target, event occurrence) when the event happens; every
retry updates that same row, so the log shows one line per occurrence, not per attempt.
Its body is fixed at that moment: each retry sends the same bytes with the same signature
and the same X-Slipway-Delivery id, so a receiver can drop a duplicate.
"""

import uuid

from django.db import models

from paas.crypto import EncryptedTextField


class NotificationEvent(models.TextChoices):
    DEPLOYMENT_STARTED = "deployment.started", "Deployment started"
    DEPLOYMENT_SUCCEEDED = "deployment.succeeded", "Deployment succeeded"
    DEPLOYMENT_FAILED = "deployment.failed", "Deployment failed"
    APP_CRASHED = "app.crashed", "App crashed"
    APP_RECOVERED = "app.recovered", "App recovered"
    JOB_FAILED = "job.failed", "Scheduled job failed"
    AUTO_ROLLED_BACK = "deployment.auto_rolled_back", "Rolled back automatically"
    ALERT_CRASH_LOOP = "alert.crash_loop", "Alert: a container restarts repeatedly"
    ALERT_MEMORY = "alert.memory", "Alert: memory above 90 % of the limit"
    ALERT_ERROR_RATE = "alert.error_rate", "Alert: error rate above the threshold"
    ALERT_DISK = "alert.disk", "Alert: the data directory's disk is nearly full"
    PROMOTION_REQUESTED = "promotion.requested", "Promotion waiting for approval"
    PROMOTION_APPROVED = "promotion.approved", "Promotion approved"
    PROMOTION_DONE = "promotion.done", "Promotion live in production"


class NotificationTarget(models.Model):
    """A URL that receives an app's events as signed JSON POSTs."""

    app = models.ForeignKey(
        "apps.App", on_delete=models.CASCADE, related_name="notification_targets"
    )
    url = models.URLField(max_length=2000)
    # The events sent to this target; empty means all of them.
    events = models.JSONField(default=list, blank=True)
    secret = EncryptedTextField()
    # Set only when the operator allowed private addresses (PAAS_NOTIFY_ALLOW_PRIVATE) at the
    # moment the target was added: a worker whose own setting is off still delivers to it.
    allow_private = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.app_id} → {self.url}"

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class NotificationDelivery(models.Model):
    target = models.ForeignKey(
        NotificationTarget, on_delete=models.CASCADE, related_name="deliveries"
    )
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=32, choices=NotificationEvent)
    body = models.TextField(help_text="The exact JSON sent (and signed) on every attempt.")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # When the next attempt is due; the warden re-sends a pending delivery whose message was
    # lost (a Redis restart) once this is well past.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "notification deliveries"
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.target_id}: {self.status}"
