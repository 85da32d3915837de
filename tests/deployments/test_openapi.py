"""The OpenAPI document describes every /api/v1 route the URLconf serves."""

import re

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

pytestmark = pytest.mark.django_db


def _api_routes() -> set[str]:
    resolver = get_resolver()
    api = next(p for p in resolver.url_patterns if str(p.pattern) == "api/v1/")
    routes = set()
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        route = "/" + str(pattern.pattern)
        routes.add(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    return routes - {"/openapi.json"}


def _normalise(path: str) -> str:
    return re.sub(r"\{\w+\}", "{}", path)


def test_every_api_route_is_documented():
    spec = Client().get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    documented = {_normalise(p) for p in spec["paths"]}
    missing = sorted(r for r in _api_routes() if _normalise(r) not in documented)
    assert missing == []
