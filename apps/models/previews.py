"""Preview environments: one `pr-<number>` environment per open pull (merge) request.

The environment is an ordinary row (apps.models.app.Environment); this row says which pull
request it is for, which commit it should run and where the provider wants its status.
"""

from django.db import models

from apps.models.app import App, Environment

PREFIX = "pr-"


class Preview(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="previews")
    environment = models.OneToOneField(
        Environment, on_delete=models.CASCADE, related_name="preview"
    )
    number = models.PositiveIntegerField()
    provider = models.CharField(max_length=16)  # github | gitlab | gitea, as its webhook
    repository = models.CharField(max_length=300)  # the base repository's full name
    title = models.CharField(max_length=300, blank=True)
    link = models.URLField(max_length=500, blank=True)  # the pull request's page
    head_sha = models.CharField(max_length=64)
    head_branch = models.CharField(max_length=255, blank=True)
    # What the fetch step asks for: the branch itself, or the forge's PR ref for a fork
    # (whose branch is not in the base repository).
    fetch_ref = models.CharField(max_length=300)
    from_fork = models.BooleanField(default=False)
    # Set once its add-on is provisioned (and seeded) and its first deployment queued:
    # until then a new head only moves head_sha, and the preparation deploys that.
    prepared_at = models.DateTimeField(null=True, blank=True)
    # Why it could not be prepared (its database not made or not seeded); nothing deploys.
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app__name", "number"]
        constraints = [
            models.UniqueConstraint(fields=["app", "number"], name="preview_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.app.name} {self.environment_name}"

    @staticmethod
    def environment_name_for(number: int) -> str:
        return f"{PREFIX}{number}"

    @property
    def environment_name(self) -> str:
        return self.environment_name_for(self.number)

    @property
    def short_sha(self) -> str:
        return self.head_sha[:7]

    @property
    def latest_deployment(self):
        return self.environment.deployments.order_by("-number").first()

    @property
    def status(self) -> str:
        """What the dashboard and the API say: the latest deployment's status, or that the
        preview is still being prepared (its database made and seeded)."""
        if self.error_message:
            return "failed"
        latest = self.latest_deployment
        if latest is not None:
            return latest.status
        return "preparing" if self.prepared_at is None else "queued"
