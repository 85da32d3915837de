"""The log collector: stores what every container of this installation prints.

    manage.py paas_collect_logs

scripts/run starts it beside the Celery worker; it stops on SIGTERM or Ctrl-C after
writing what it has read.
"""

import signal

from django.core.management.base import BaseCommand

from deployments import wiring
from deployments.workers.log_collector import LogCollector


class Command(BaseCommand):
    help = "Follow every Slipway container and store its output (the runtime log)."
    # scripts/run's migrate has run the checks; here they would import the whole URL conf
    # (the API's schemas, the admin) into a daemon that serves no request: 34 MiB of its 96
    # (bench/run --memory).
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        collector = LogCollector(wiring.runtime())
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: collector.stop())
        self.stdout.write("log collector running", ending="\n")
        self.stdout.flush()
        collector.run()
