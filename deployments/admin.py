from django.contrib import admin
from django.utils.html import format_html

from deployments import services
from deployments.models import Deployment, LogLine
from deployments.models.promotion import PromotionPolicy, PromotionRequest
from deployments.models.runs import Run, RunLogLine, ScheduledJob
from deployments.models.webhook import WebhookDelivery
from deployments.services import runs
from paas.admin_helpers import SuperuserActions, service_action


def _redeploy(request, deployment) -> str:
    new = services.redeploy(deployment, requested_by=request.user)
    return f"redeploy queued as #{new.number}."


def _cancel(request, deployment) -> str:
    services.cancel_deployment(deployment)
    return "cancelled."


@admin.register(Deployment)
class DeploymentAdmin(SuperuserActions, admin.ModelAdmin):
    list_display = [
        "__str__",
        "environment",
        "status",
        "trigger",
        "commit_short",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "app", "environment__name"]
    search_fields = ["app__name", "commit_sha"]
    list_select_related = ["app", "environment__app"]
    actions = [
        service_action(
            "redeploy",
            "Redeploy (build the same source again)",
            _redeploy,
            select_related=("app", "environment"),
            superuser_only=True,
        ),
        service_action("cancel", "Cancel", _cancel),
    ]
    readonly_fields = [f.name for f in Deployment._meta.fields if f.name not in ("id",)] + ["log"]

    def has_add_permission(self, request):
        return False  # deployments are made by App.new_deployment through the services

    @admin.display(description="commit")
    def commit_short(self, obj):
        return obj.commit_sha[:10]

    @admin.display(description="log (last 500 lines)")
    def log(self, obj):
        lines = LogLine.objects.filter(deployment=obj).order_by("-id")[:500]
        text = "\n".join(line.text for line in reversed(lines))
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["app", "provider", "delivery_id", "outcome", "received_at"]
    list_filter = ["provider"]
    search_fields = ["app__name", "delivery_id"]

    def has_add_permission(self, request):
        return False


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(admin.ModelAdmin):
    list_display = ["app", "require_approval", "check_path"]


@admin.register(PromotionRequest)
class PromotionRequestAdmin(admin.ModelAdmin):
    list_display = ["app", "status", "requested_by", "approved_by", "created_at"]
    list_filter = ["status"]


def _cancel_run(request, run) -> str:
    runs.cancel_run(run)
    return "cancel requested."


@admin.register(Run)
class RunAdmin(SuperuserActions, admin.ModelAdmin):
    """One-off and scheduled runs: read only; started from the dashboard, API or a job.
    Their output may hold the app's secrets: superusers alone see it, and cancel a run."""

    list_display = ["pk", "app", "environment", "command", "status", "exit_code", "created_at"]
    list_filter = ["status", "app"]
    search_fields = ["app__name", "command"]
    list_select_related = ["app", "environment__app"]
    actions = [
        service_action(
            "cancel_run", "Cancel (kill the container)", _cancel_run, superuser_only=True
        )
    ]
    readonly_fields = [f.name for f in Run._meta.fields if f.name != "id"] + ["log"]

    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if request.user.is_superuser else [f for f in fields if f != "log"]

    @admin.display(description="log (last 500 lines)")
    def log(self, obj):
        lines = RunLogLine.objects.filter(run=obj).order_by("-id")[:500]
        text = "\n".join(line.text for line in reversed(lines))
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)


@admin.register(ScheduledJob)
class ScheduledJobAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "schedule", "command", "enabled", "last_scheduled_at"]
    list_filter = ["enabled"]
    list_editable = ["enabled"]
    search_fields = ["name", "environment__app__name", "command"]
    # Only on/off here, and only by superusers (a job runs the owner's commands): a schedule
    # is made and checked (croniter) by the services.
    readonly_fields = [
        "environment",
        "name",
        "schedule",
        "command",
        "last_scheduled_at",
        "skipped_count",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)
