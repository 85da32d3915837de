"""Traefik's own request counters per service, from its Prometheus endpoint (/metrics on the
loopback `traefik` entry point, enabled by static_config()).

Only the service counters are read: requests by status code and the request-duration
histogram's sum and count. Totals since Traefik started; the sampler takes differences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests
from django.conf import settings

from deployments.adapters.router import ProxyError

API_TIMEOUT = (1, 5)
# One sample line of the text exposition format: name{labels} value [timestamp].
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')
REQUESTS = "traefik_service_requests_total"
DURATION_SUM = "traefik_service_request_duration_seconds_sum"
DURATION_COUNT = "traefik_service_request_duration_seconds_count"
PROVIDER = "@file"


@dataclass
class ServiceTotals:
    requests: float = 0.0
    errors_5xx: float = 0.0
    duration_sum: float = 0.0  # seconds
    duration_count: float = 0.0


class TraefikMetrics:
    def __init__(self, api_url: str | None = None):
        self.api_url = (api_url or settings.PAAS_ROUTER_API_URL).rstrip("/")

    def service_totals(self) -> dict[str, ServiceTotals]:
        """Route id -> its service's totals (only services of the file provider, ours)."""
        try:
            response = requests.get(f"{self.api_url}/metrics", timeout=API_TIMEOUT)
        except requests.RequestException as exc:
            raise ProxyError(f"Traefik's metrics at {self.api_url} did not answer: {exc}") from exc
        if response.status_code != 200:
            raise ProxyError(
                f"Traefik answered {response.status_code} to GET /metrics", code="proxy_rejected"
            )
        return parse_service_totals(response.text)


def parse_service_totals(text: str) -> dict[str, ServiceTotals]:
    totals: dict[str, ServiceTotals] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match or match["name"] not in (REQUESTS, DURATION_SUM, DURATION_COUNT):
            continue
        labels = {m["key"]: m["value"] for m in LABEL.finditer(match["labels"] or "")}
        service = labels.get("service", "")
        if not service.endswith(PROVIDER):
            continue
        _add(totals.setdefault(service[: -len(PROVIDER)], ServiceTotals()), match, labels)
    return totals


def _add(totals: ServiceTotals, match: re.Match, labels: dict[str, str]) -> None:
    value = float(match["value"])
    if match["name"] == REQUESTS:
        totals.requests += value
        if labels.get("code", "").startswith("5"):
            totals.errors_5xx += value
    elif match["name"] == DURATION_SUM:
        totals.duration_sum += value
    else:
        totals.duration_count += value
