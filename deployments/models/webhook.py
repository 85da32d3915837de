"""Webhook deliveries already handled, so a provider's retry of the same push deploys once."""

from django.db import models


class WebhookProvider(models.TextChoices):
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"
    GITEA = "gitea", "Gitea / Forgejo"


class WebhookDelivery(models.Model):
    """One verified push delivery. The unique constraint, not a lookup, decides duplicates:
    two copies of a delivery arriving at once cannot both pass it."""

    MAX_ID_LENGTH = 200

    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="webhook_deliveries")
    provider = models.CharField(max_length=16, choices=WebhookProvider)
    delivery_id = models.CharField(max_length=MAX_ID_LENGTH)
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["app", "provider", "delivery_id"], name="webhook_delivery_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.delivery_id} → {self.outcome}"
