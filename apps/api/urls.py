"""/api/v1: one NinjaAPI with a router per resource, bearer-token auth on every operation,
and the OpenAPI document generated from apps/api/schemas.py at /api/v1/openapi.json."""

from django.http import JsonResponse
from django.urls import include, path
from ninja import NinjaAPI

from apps.api import (
    actions,
    addons,
    applications,
    audit,
    domains,
    env_vars,
    environments,
    jobs,
    log_drains,
    metrics,
    notifications,
    pipelines,
    previews,
    promotions,
    resources,
    runs,
    teams,
)
from apps.api.auth import BearerToken
from apps.api.errors import json_method_not_allowed, register_error_handlers
from apps.api.parsing import JsonObjectParser
from apps.models.tokens import SAFE_METHODS

ROUTERS = (
    applications,
    audit,
    resources,
    metrics,
    actions,
    environments,
    env_vars,
    addons,
    domains,
    notifications,
    log_drains,
    pipelines,
    promotions,
    previews,
    runs,
    jobs,
    teams,
)


class SlipwayAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation) -> str:
        # Unique across the routers; generated clients name their methods after these.
        return operation.view_func.__name__


api = SlipwayAPI(
    title="Slipway API",
    version="1",
    auth=BearerToken(),
    parser=JsonObjectParser(),
    urls_namespace="api",
    # openapi.json is served below, with paths relative to /api/v1 as before; no docs page,
    # which would load its scripts from a CDN (Slipway runs air-gapped).
    openapi_url=None,
    docs_url=None,
)
register_error_handlers(api)
for module in ROUTERS:
    api.add_router("", module.router)


def openapi_document(request):
    document = api.get_openapi_schema(path_prefix="")
    document["servers"] = [{"url": request.build_absolute_uri("/api/v1")}]
    _document_read_only_refusals(document)
    return JsonResponse(document)


def _document_read_only_refusals(document: dict) -> None:
    """Every operation that changes something answers 403 to a read-only token (auth.py
    refuses it, whatever the operation), in the error format its 401 already names."""
    for operations in document["paths"].values():
        for method, operation in operations.items():
            if method.upper() not in SAFE_METHODS:
                unauthorized = operation["responses"][401]
                operation["responses"][403] = {**unauthorized, "description": "Forbidden"}


def _operations():
    patterns, _app_name, namespace = api.urls
    # ninja's root route ("") serves only to find the API's base path, which
    # openapi_document does not need: /api/v1/ stays a plain 404, as before.
    wrapped = [
        path(str(p.pattern), json_method_not_allowed(p.callback), name=p.name)
        for p in patterns
        if str(p.pattern)
    ]
    return include((wrapped, namespace))


urlpatterns = [
    path("openapi.json", openapi_document, name="api-openapi"),
    path("", _operations()),
]
