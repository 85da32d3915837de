"""What the admin sites of apps and deployments share."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest

from deployments import services


class SuperuserActions:
    """For a ModelAdmin whose actions may be `superuser_only`: the admin is staff-only, and
    staff manage the platform, but deploying another owner's code (with the owner's provider
    token) or running their commands is for superusers (apps/access.py's CHANGE)."""

    def has_superuser_permission(self, request) -> bool:
        return request.user.is_superuser


def service_action(
    name: str,
    description: str,
    act: Callable[[HttpRequest, Model], str],
    select_related: tuple[str, ...] = (),
    superuser_only: bool = False,
):
    """An admin action that runs act(request, row) for every selected row and reports each
    outcome: act returns what it did, and a service's refusal (a ServiceError) is that row's
    error, not the end of the batch. name is the action's name in the admin's form.
    superuser_only: offered to superusers alone (the ModelAdmin mixes in SuperuserActions)."""

    permissions = ["superuser"] if superuser_only else None

    @admin.action(description=description, permissions=permissions)
    def action(modeladmin, request, queryset):
        for row in queryset.select_related(*select_related) if select_related else queryset:
            try:
                done = act(request, row)
            except services.ServiceError as exc:
                modeladmin.message_user(request, f"{row}: {exc.message}", messages.ERROR)
            else:
                modeladmin.message_user(request, f"{row}: {done}")

    action.__name__ = name
    return action
