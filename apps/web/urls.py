"""Dashboard routes. Partials (fragments htmx swaps in) end in a noun under the page they
belong to; actions are POST-only and end in a verb."""

from django.urls import path

from apps.web import actions as views_actions
from apps.web import create as views_create
from apps.web import domains as views_domains
from apps.web import pages as views
from apps.web import promotions as views_promotions
from apps.web import settings as views_settings

APP = "apps/<str:name>/"
DEPLOYMENT = APP + "deployments/<int:number>/"
ENV_VAR = APP + "env/<str:environment>/<str:key>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("partials/apps/", views.home_apps, name="home-apps"),
    # creating an app
    path("new/", views_create.app_create, name="app-create"),
    path("new/name-check/", views_create.name_check, name="app-name-check"),
    path("new/detect/", views_create.detect_preview, name="app-create-detect"),
    path("new/repositories/", views_create.repositories, name="app-create-repositories"),
    path("new/repository/", views_create.pick_repository, name="app-create-pick"),
    path("new/env-row/", views_create.env_row, name="app-create-env-row"),
    # the app page and its partials
    path(APP, views.app_detail, name="app-detail"),
    path(APP + "status/", views.app_status, name="app-status"),
    path(APP + "environments/", views.app_environments, name="app-environments"),
    path(APP + "history/", views.app_history, name="app-history"),
    path(APP + "current/", views.app_current, name="app-current"),
    path(APP + "runtime/<str:environment>/", views.runtime_log, name="app-runtime-log"),
    path(DEPLOYMENT, views.deployment_detail, name="deployment-detail"),
    path(DEPLOYMENT + "panel/", views.deployment_panel, name="deployment-panel"),
    path(DEPLOYMENT + "log/", views.deployment_log, name="deployment-log"),
    # actions
    path(APP + "deploy/", views_actions.deploy, name="app-deploy"),
    path(APP + "archive/", views_actions.deploy_archive, name="app-archive"),
    path(APP + "restart/", views_actions.restart, name="app-restart"),
    path(APP + "stop/", views_actions.stop, name="app-stop"),
    path(APP + "start/", views_actions.start, name="app-start"),
    path(APP + "promote/", views_actions.promote, name="app-promote"),
    path(APP + "promotions/", views_promotions.promotions, name="app-promotions"),
    path(
        APP + "promotions/<int:request_id>/approve/",
        views_actions.promotion_approve,
        name="promotion-approve",
    ),
    path(
        APP + "promotions/<int:request_id>/reject/",
        views_actions.promotion_reject,
        name="promotion-reject",
    ),
    path(APP + "delete/", views_actions.delete, name="app-delete"),
    path(DEPLOYMENT + "redeploy/", views_actions.redeploy, name="deployment-redeploy"),
    path(DEPLOYMENT + "rollback/", views_actions.rollback, name="deployment-rollback"),
    path(DEPLOYMENT + "cancel/", views_actions.cancel, name="deployment-cancel"),
    # settings and env vars
    path(APP + "settings/", views_settings.app_settings, name="app-settings"),
    path(APP + "env/<str:environment>/", views_settings.env_set, name="app-env-set"),
    path(ENV_VAR + "reveal/", views_settings.env_reveal, name="app-env-reveal"),
    path(ENV_VAR + "delete/", views_settings.env_delete, name="app-env-delete"),
    # custom domains and volumes
    path(APP + "domains/", views_domains.domains, name="app-domains"),
    path(
        APP + "domains/<str:hostname>/delete/",
        views_domains.domain_delete,
        name="app-domain-delete",
    ),
    path(APP + "volumes/", views_domains.volumes, name="app-volumes"),
    path(
        APP + "volumes/<int:volume_id>/delete/",
        views_domains.volume_delete,
        name="app-volume-delete",
    ),
    # the user's API tokens
    path("settings/tokens/", views_settings.tokens, name="settings-tokens"),
    path("settings/tokens/<int:pk>/revoke/", views_settings.token_revoke, name="token-revoke"),
]
