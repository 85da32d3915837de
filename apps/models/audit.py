"""The audit log: who did what to which app, when and from where. Never a secret: entries
name env var keys, never values, and hold no tokens or passwords."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from paas import actor as acting_now

TARGET_MAX = 200


class AuditEntry(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the user or the app is deleted: the log outlives both.
    actor_name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16)  # dashboard, api, webhook, admin, warden, worker…
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64)  # e.g. deployment.queue, env.set, app.delete
    app = models.ForeignKey(
        "apps.App", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    app_name = models.CharField(max_length=63, blank=True)
    # The team the app (or the team action) belonged to, and the actor's role on it then.
    team = models.ForeignKey(
        "apps.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    actor_role = models.CharField(max_length=16, blank=True)
    target = models.CharField(max_length=TARGET_MAX, blank=True)  # an environment, a number…
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["app", "-id"], name="audit_by_app"),
            models.Index(fields=["team", "-id"], name="audit_by_team"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or self.source} {self.action}"

    @classmethod
    def record(cls, action: str, app=None, target: str = "", team=None, **details) -> "AuditEntry":
        """One entry for the current actor (paas.actor): the request's user, or the warden;
        with the app's team (or the team acted on) and the actor's role there."""
        who = acting_now.current()
        user = who.user
        team = team or (app.team if app is not None and app.team_id else None)
        return cls.objects.create(
            team=team,
            actor_role=_role_on(team, user),
            actor=user,
            actor_name=user.get_username() if user else who.name or who.source,
            source=who.source,
            address=who.address,
            action=action,
            app=app if app is not None and app.pk else None,
            app_name=app.name if app is not None else "",
            target=str(target)[:TARGET_MAX],
            details=details,
        )


def _role_on(team, user) -> str:
    if team is None or user is None:
        return ""
    return team.role_of(user) or ""
