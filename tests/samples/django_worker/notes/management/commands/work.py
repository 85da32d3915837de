"""The worker process: a note every half second until SIGTERM."""

import signal
import time

from django.core.management.base import BaseCommand

from notes.models import Note


class Command(BaseCommand):
    def handle(self, *args, **options):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        self.stdout.write("worker: started")
        while not stopping:
            Note.objects.create(source="worker", text="tick")
            time.sleep(0.5)
        self.stdout.write("worker: stopped")
