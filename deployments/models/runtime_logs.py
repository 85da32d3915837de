"""Runtime logs in Slipway's own store: what every container printed, kept across deployments.

Why PostgreSQL: it is already the platform's one durable store (backups, one connection
string), and a page of logs is a keyset query on the `(environment, ns, id)` index: the
cost of a page after any cursor is a B-tree descent plus `limit` rows, whatever the log's
size (bench/logs.py measures it). Bounded by age (PAAS_RUNTIME_LOG_RETENTION_DAYS) and by
bytes per app (PAAS_RUNTIME_LOG_MAX_BYTES_PER_APP), both pruned oldest first in batches.
"""

import time

from django.db import models
from django.db.models import F

STDOUT, STDERR = "stdout", "stderr"
STREAMS = (STDOUT, STDERR)
TEXT_MAX = 16 * 1024  # one line longer than this is cut: a log is for reading


class RuntimeLogLine(models.Model):
    """One line one container printed, with where it came from."""

    id = models.BigAutoField(primary_key=True)
    app = models.ForeignKey("apps.App", on_delete=models.CASCADE, related_name="+", db_index=False)
    environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    deployment = models.PositiveIntegerField(null=True, blank=True)  # its number, if any
    process = models.CharField(max_length=64)  # web, worker, …, release, run, addon-postgres
    replica = models.PositiveSmallIntegerField(default=1)
    container = models.CharField(max_length=128)  # the container's name (a run's: run-<id>)
    stream = models.CharField(max_length=6, default=STDOUT)
    ns = models.BigIntegerField()  # nanoseconds since the epoch, the engine's timestamp
    text = models.TextField()

    class Meta:
        ordering = ["ns", "id"]
        indexes = [
            models.Index(fields=["environment", "ns", "id"], name="runtimelog_page"),
            models.Index(fields=["app", "id"], name="runtimelog_app_oldest"),
            models.Index(fields=["ns"], name="runtimelog_age"),
        ]

    def __str__(self) -> str:
        return self.text[:80]

    @classmethod
    def record(cls, environment, process: str, container: str, text: str, deployment=None):
        """One line a worker read itself (a one-off run's, the release phase's: their
        containers live shorter than the collector's poll), stamped now."""
        cls.objects.create(
            app_id=environment.app_id,
            environment=environment,
            deployment=deployment,
            process=process,
            container=container[:128],
            ns=time.time_ns(),
            text=text[:TEXT_MAX].replace("\x00", ""),
        )
        RuntimeLogUsage.add(environment.app_id, len(text))


class RuntimeLogUsage(models.Model):
    """Bytes of log text stored per app: the size cap is checked against this counter, so
    nobody sums a billion-row table."""

    app = models.OneToOneField("apps.App", on_delete=models.CASCADE, primary_key=True)
    bytes = models.BigIntegerField(default=0)

    @classmethod
    def add(cls, app_id: int, amount: int) -> None:
        updated = cls.objects.filter(app_id=app_id).update(bytes=F("bytes") + amount)
        if not updated:
            cls.objects.get_or_create(app_id=app_id, defaults={"bytes": 0})
            cls.objects.filter(app_id=app_id).update(bytes=F("bytes") + amount)


class CollectedContainer(models.Model):
    """How far the collector has read one container's streams, so a restarted collector
    resumes where it stopped instead of storing a line twice."""

    container_id = models.CharField(max_length=64, primary_key=True)
    stdout_ns = models.BigIntegerField(default=0)
    stderr_ns = models.BigIntegerField(default=0)
    finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def cursor(self, stream: str) -> int:
        return self.stderr_ns if stream == STDERR else self.stdout_ns
