from django.urls import path

from apps.api import actions as api_actions
from apps.api import applications as api

urlpatterns = [
    path("openapi.json", api.openapi, name="api-openapi"),
    path("apps", api.apps_collection, name="api-apps"),
    path("apps/<str:name>", api.app_detail, name="api-app"),
    path("apps/<str:name>/logs", api.runtime_logs, name="api-runtime-logs"),
    path("apps/<str:name>/webhook", api_actions.webhook, name="api-webhook"),
    path("apps/<str:name>/restart", api_actions.restart, name="api-restart"),
    path("apps/<str:name>/stop", api_actions.stop, name="api-stop"),
    path("apps/<str:name>/start", api_actions.start, name="api-start"),
    path("apps/<str:name>/promote", api_actions.promote, name="api-promote"),
    path(
        "apps/<str:name>/deployments/<int:number>/rollback",
        api_actions.rollback,
        name="api-rollback",
    ),
    path(
        "apps/<str:name>/deployments/<int:number>/redeploy",
        api_actions.redeploy,
        name="api-redeploy",
    ),
    path("apps/<str:name>/deployments", api.deployments_collection, name="api-deployments"),
    path("apps/<str:name>/archives", api.archives_collection, name="api-archives"),
    path("apps/<str:name>/deployments/<int:number>", api.deployment_detail, name="api-deployment"),
    path(
        "apps/<str:name>/deployments/<int:number>/cancel",
        api.deployment_cancel,
        name="api-deployment-cancel",
    ),
    path(
        "apps/<str:name>/deployments/<int:number>/logs",
        api.deployment_logs,
        name="api-deployment-logs",
    ),
]

# Notifications and resource usage.
from apps.api import notifications as api_notifications  # noqa: E402
from apps.api import resources as api_resources

NOTIFICATIONS = "apps/<str:name>/notifications"
urlpatterns += [
    path(NOTIFICATIONS, api_notifications.targets_collection, name="api-notifications"),
    path(
        NOTIFICATIONS + "/<int:target_id>",
        api_notifications.target_detail,
        name="api-notification",
    ),
    path(
        NOTIFICATIONS + "/<int:target_id>/deliveries",
        api_notifications.target_deliveries,
        name="api-notification-deliveries",
    ),
    path("apps/<str:name>/stats", api_resources.app_stats, name="api-app-stats"),
]

# Add-ons and their backups.
from apps.api import addons as api_addons  # noqa: E402

ADDONS = "apps/<str:name>/addons"
ADDON = ADDONS + "/<int:addon_id>"
urlpatterns += [
    path(ADDONS, api_addons.addons_collection, name="api-addons"),
    path(ADDON, api_addons.addon_detail, name="api-addon"),
    path(ADDON + "/restart", api_addons.addon_restart, name="api-addon-restart"),
    path(ADDON + "/backups", api_addons.backups_collection, name="api-addon-backups"),
    path(
        ADDON + "/backups/<int:backup_id>/restore",
        api_addons.backup_restore,
        name="api-addon-backup-restore",
    ),
]

# Custom domains and volumes.
from apps.api import domains as api_domains  # noqa: E402

urlpatterns += [
    path("apps/<str:name>/domains", api_domains.domains_collection, name="api-domains"),
    path("apps/<str:name>/domains/<str:hostname>", api_domains.domain_detail, name="api-domain"),
    path("apps/<str:name>/volumes", api_domains.volumes_collection, name="api-volumes"),
    path("apps/<str:name>/volumes/<int:volume_id>", api_domains.volume_detail, name="api-volume"),
]

# Promotion gates.
from apps.api import promotions as api_promotions  # noqa: E402

PROMOTIONS = "apps/<str:name>/promotions"
urlpatterns += [
    path("apps/<str:name>/promotion-policy", api_promotions.policy, name="api-promotion-policy"),
    path(PROMOTIONS, api_promotions.requests_collection, name="api-promotions"),
    path(
        PROMOTIONS + "/<int:request_id>/approve",
        api_promotions.approve,
        name="api-promotion-approve",
    ),
    path(
        PROMOTIONS + "/<int:request_id>/reject", api_promotions.reject, name="api-promotion-reject"
    ),
]
