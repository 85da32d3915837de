"""Log drains: where an app's runtime log lines are forwarded, and how far each has got.

A drain's cursor is the id of the last RuntimeLogLine the receiver accepted; it moves only
after a whole batch was accepted, so a failed batch is sent again, the same lines in the
same order (an HTTPS receiver can drop a repeat by its batch id). A failure puts the drain
in backoff: the forwarder skips it until `backoff_until`, each failure doubling the wait.
"""

from datetime import datetime, timedelta

from django.db import models

from paas.crypto import EncryptedTextField


class DrainKind(models.TextChoices):
    SYSLOG = "syslog", "Syslog (RFC 5424 over TCP or TLS)"
    HTTPS = "https", "HTTPS (signed JSON lines)"


class LogDrain(models.Model):
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="log_drains")
    kind = models.CharField(max_length=8, choices=DrainKind)
    url = models.CharField(max_length=2000)
    # Signs every HTTPS batch (X-Slipway-Signature); a syslog drain has none.
    secret = EncryptedTextField(blank=True)
    # Stamped when the operator allowed private addresses at the moment the drain was added,
    # as a notification target's is.
    allow_private = models.BooleanField(default=False, editable=False)
    enabled = models.BooleanField(default=True)
    cursor = models.BigIntegerField(default=0)
    # The newest line id seen one tick ago: lines are sent only up to it, so a line whose
    # transaction took a lower id but committed late is not skipped by a cursor gone past it.
    horizon = models.BigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    backoff_until = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["enabled", "backoff_until"], name="logdrain_due")]

    def __str__(self) -> str:
        return f"{self.app_id} → {self.kind} drain {self.pk}"

    @property
    def healthy(self) -> bool:
        return self.failures == 0

    def delivered(self, last_id: int, now: datetime) -> None:
        """The receiver accepted every line up to `last_id`."""
        self._save(
            cursor=last_id,
            failures=0,
            backoff_until=None,
            error_code="",
            last_error="",
            last_delivered_at=now,
        )

    def failed(self, code: str, message: str, now: datetime, delay: float) -> None:
        """The batch was refused; the same batch goes again after `delay` seconds."""
        self._save(
            failures=self.failures + 1,
            backoff_until=now + timedelta(seconds=delay),
            error_code=code[:64],
            last_error=message[:500],
        )

    def saw(self, newest_id: int) -> None:
        if newest_id > self.horizon:
            self._save(horizon=newest_id)

    def _save(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        LogDrain.objects.filter(pk=self.pk).update(**fields)
