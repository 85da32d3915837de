"""Write the files of Slipway's registry (scripts/services registry runs it).

    manage.py paas_registry_config      prints the path of the registry's config

Certificate and key for PAAS_REGISTRY_ADDRESS, the password and its htpasswd line (made
once, kept after), the config, and this engine's trust of the certificate
(/etc/docker/certs.d/<address>/ca.crt; other nodes need the same file).
"""

from django.core.management.base import BaseCommand, CommandError

from deployments import wiring


class Command(BaseCommand):
    help = "Write the registry's certificate, password, htpasswd and config; print its path."

    def handle(self, *args, **options):
        registry = wiring.registry()
        if registry is None:
            raise CommandError(
                "PAAS_REGISTRY_ADDRESS is not set: give the host:port on the manager's "
                "cluster address the registry is to listen on."
            )
        registry.write_files()
        self.stdout.write(str(registry.config_path))
