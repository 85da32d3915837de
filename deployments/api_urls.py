from django.urls import path

from deployments import api, api_actions

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
