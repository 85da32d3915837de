from django import forms
from django.contrib import admin

from apps.models import (
    AddOn,
    ApiToken,
    App,
    AuditEntry,
    Backup,
    Environment,
    EnvVar,
    Membership,
    NotificationDelivery,
    NotificationTarget,
    Team,
)
from deployments import services
from paas.admin_helpers import SuperuserActions, service_action


class EnvVarForm(forms.ModelForm):
    """The value is write-only here: the field starts empty and an empty submit keeps it."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted. Leave empty to keep the current value.",
    )

    class Meta:
        model = EnvVar
        fields = ["environment", "key", "value"]

    def clean_value(self):
        value = self.cleaned_data["value"]
        if not value and self.instance.pk:
            return self.instance.value
        return value


class SuperuserChanges:
    """Staff may look; changing what an app runs is for superusers (apps/access.py's CHANGE)."""

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(EnvVar)
class EnvVarAdmin(SuperuserChanges, admin.ModelAdmin):
    form = EnvVarForm
    list_display = ["key", "masked_value", "protected", "environment", "updated_at"]
    list_filter = ["environment__name", "protected"]
    search_fields = ["key", "environment__app__name"]
    list_select_related = ["environment__app"]
    # Protected: the team's admins and owners mark it, on the dashboard.
    readonly_fields = ["masked_value", "protected"]

    def get_fields(self, request, obj=None):
        # A page one may only view prints every field as text: never the value there.
        view_only = obj is not None and not self.has_change_permission(request, obj)
        fields = ["environment", "key", "masked_value", "protected"]
        return fields if view_only else [*fields[:2], "value", *fields[2:]]

    # A protected var is the team's admins' and owners' alone (apps/access.py), not the
    # platform's superusers'.
    def has_change_permission(self, request, obj=None):
        return not (obj and obj.protected) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not (obj and obj.protected) and super().has_delete_permission(request, obj)

    @admin.display(description="value")
    def masked_value(self, obj):
        return obj.masked


class EnvironmentInline(admin.TabularInline):
    model = Environment
    extra = 0
    can_delete = False
    fields = ["name", "live_deployment", "stopped", "replicas", "formation"]
    readonly_fields = ["name", "live_deployment", "replicas", "formation"]

    def has_add_permission(self, request, obj=None):
        return False  # through the use case (its host label, its cap), not a bare row


def _deploy_production(request, app) -> str:
    d = services.queue_deployment(app, "production", requested_by=request.user)
    return f"deployment #{d.number} queued."


def _request_cleanup(request, app) -> str:
    services.request_cleanup(app)
    return "cleanup requested."


# What only a superuser may change on another owner's app: its source and commands.
SOURCE_FIELDS = [
    "repository",
    "branch",
    "build_method",
    "build_command",
    "start_command",
    "release_command",
]


@admin.register(App)
class AppAdmin(SuperuserActions, admin.ModelAdmin):
    list_display = [
        "name",
        "team",
        "owner",
        "status",
        "repository",
        "branch",
        "build_method",
        "updated_at",
    ]
    list_filter = ["status", "build_method"]
    search_fields = ["name", "repository", "owner__username", "team__name"]
    readonly_fields = [
        "status",
        "deployment_counter",
        "cleanup_requested_at",
        "created_at",
        "updated_at",
    ]
    exclude = ["webhook_secret"]
    inlines = [EnvironmentInline]
    actions = [
        service_action(
            "deploy_production",
            "Deploy production now",
            _deploy_production,
            superuser_only=True,
        ),
        service_action(
            "request_cleanup",
            "Request cleanup (delete the app and everything it runs)",
            _request_cleanup,
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + SOURCE_FIELDS


class MembershipInline(SuperuserChanges, admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(SuperuserChanges, admin.ModelAdmin):
    """Who is in which team with which role; changing it is for superusers."""

    list_display = ["name", "personal_of", "created_at"]
    search_fields = ["name", "memberships__user__username"]
    readonly_fields = ["personal_of", "created_at"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "team",
        "scope",
        "hint",
        "created_at",
        "expires_at",
        "last_used_at",
    ]
    list_select_related = ["user", "team"]
    list_filter = ["scope"]
    readonly_fields = ["hint", "created_at", "last_used_at"]
    search_fields = ["user__username", "name"]


@admin.register(AddOn)
class AddOnAdmin(admin.ModelAdmin):
    list_display = ["alias", "kind", "environment", "status", "node", "updated_at"]
    list_filter = ["kind", "status"]
    search_fields = ["environment__app__name", "alias"]
    exclude = ["password"]  # revealed to the owner on the add-on page, never here
    readonly_fields = [
        "container_name",
        "container_id",
        "volume",
        "node",
        "username",
        "database",
        "error_code",
        "error_message",
    ]


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    list_display = ["addon", "status", "size", "scheduled", "created_at", "restore_status"]
    list_filter = ["status", "scheduled"]


@admin.register(NotificationTarget)
class NotificationTargetAdmin(admin.ModelAdmin):
    list_display = ["app", "url", "created_at"]
    exclude = ["secret"]
    search_fields = ["app__name", "url"]


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
    list_display = ["target", "event", "status", "attempts", "last_response_code", "created_at"]
    list_filter = ["status", "event"]
    exclude = ["body"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The platform-wide audit log, read only: nobody edits history."""

    list_display = ["created_at", "actor_name", "source", "address", "action", "app_name", "target"]
    list_filter = ["source", "action"]
    search_fields = ["app_name", "actor_name", "action", "target"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
