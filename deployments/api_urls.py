from django.urls import path

from deployments import api

urlpatterns = [
    path("openapi.json", api.openapi, name="api-openapi"),
    path("apps", api.apps_collection, name="api-apps"),
    path("apps/<str:name>", api.app_detail, name="api-app"),
    path("apps/<str:name>/logs", api.runtime_logs, name="api-runtime-logs"),
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
