"""Write Traefik's static configuration from Slipway's settings (scripts/services runs it).

    manage.py paas_router_config var/traefik/slipway/traefik.yml [--print-ping-url]

Also creates the dynamic directory Traefik watches (PAAS_ROUTER_DYNAMIC_DIR), its log
directory and, with TLS, the directory of its ACME storage.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from deployments.adapters.router.traefik import ping_url, write_static_config


class Command(BaseCommand):
    help = "Write Traefik's static configuration (YAML) from the settings to PATH."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="where to write the YAML")
        parser.add_argument(
            "--print-ping-url",
            action="store_true",
            help="print the URL that answers once this Traefik is up (for scripts)",
        )

    def handle(self, *args, path: Path, print_ping_url: bool, **options):
        try:
            write_static_config(path)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if print_ping_url:
            self.stdout.write(ping_url())
