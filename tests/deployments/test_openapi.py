"""The OpenAPI document describes every /api/v1 route the URLconf serves, with its methods."""

import re

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# A value for each path converter, to ask a route which methods it takes.
SAMPLE_VALUES = {"int": "1", "str": "x"}
PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def _api_routes() -> set[str]:
    resolver = get_resolver()
    api = next(p for p in resolver.url_patterns if str(p.pattern) == "api/v1/")
    return set(_routes(api.url_patterns)) - {"openapi.json"}


def _methods(route: str) -> set[str]:
    """What the route answers to, as its 405 for a method nobody takes says."""
    path = PARAMETER.sub(lambda m: SAMPLE_VALUES[m.group(1) or "str"], route)
    refused = Client().options("/api/v1/" + path)
    assert refused.status_code == 405, route
    return set(refused["Allow"].split(", "))


def _normalise(path: str) -> str:
    return re.sub(r"\{\w+\}", "{}", path)


def test_every_api_route_is_documented():
    spec = Client().get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    documented = {_normalise(p): {m.upper() for m in ops} for p, ops in spec["paths"].items()}
    served = {_normalise("/" + PARAMETER.sub(r"{\2}", r)): _methods(r) for r in _api_routes()}
    missing = sorted(r for r in served if r not in documented)
    assert missing == []
    assert {route: documented[route] for route in served} == served
