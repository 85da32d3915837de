"""Route the dashboard's host to its gunicorn, and print the URL to open (scripts/run).

    manage.py paas_platform_route

The warden writes the same route on every round; this makes it there before the first
request, so the printed URL answers at once.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from deployments import wiring


def dashboard_url() -> str:
    if settings.PAAS_PUBLIC_URL:
        return settings.PAAS_PUBLIC_URL
    if settings.PAAS_TLS:
        return f"https://{settings.PAAS_PUBLIC_HOST}"
    port = settings.PAAS_PROXY_HTTP_PORT
    return f"http://{settings.PAAS_PUBLIC_HOST}" + ("" if port == 80 else f":{port}")


class Command(BaseCommand):
    help = "Route PAAS_PUBLIC_HOST to the dashboard (PAAS_DASHBOARD_UPSTREAM); print its URL."

    def handle(self, *args, **options):
        wiring.router().ensure_platform(settings.PAAS_PUBLIC_HOST, settings.PAAS_DASHBOARD_UPSTREAM)
        self.stdout.write(dashboard_url())
