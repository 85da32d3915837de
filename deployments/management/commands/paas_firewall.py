"""The egress rules of this installation (scripts/run and scripts/test apply them at start).

    manage.py paas_firewall apply|remove|show

The worker applies them again when it starts, so a rebooted host gets them back.
"""

from django.core.management.base import BaseCommand, CommandError

from deployments import wiring
from deployments.adapters.firewall import FirewallError


class Command(BaseCommand):
    help = (
        "Apply, remove or show the iptables rules that keep apps and builds off private networks."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["apply", "remove", "show"])

    def handle(self, *args, action, **options):
        firewall = wiring.firewall()
        try:
            if action == "show":
                self.stdout.write(firewall.show())
            elif action == "apply":
                firewall.apply()
                self.stdout.write(
                    f"egress rules applied: {firewall.egress_chain}, {firewall.host_chain}"
                )
            else:
                firewall.remove()
                self.stdout.write(
                    f"egress rules removed: {firewall.egress_chain}, {firewall.host_chain}"
                )
        except FirewallError as exc:
            raise CommandError(str(exc)) from None
