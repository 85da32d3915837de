"""The one-off run worker: claim a run, run its command in a fresh container from the
environment's live image (its env vars, PORT, the app's network, so add-ons answer), put
every output line into the run's log, and record how it ended. And the warden's part:
runs whose worker died are failed, their containers removed, lost messages sent again."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from deployments import jobs
from deployments.adapters.runtime import (
    ContainerSpec,
    RunOutcome,
    RuntimeBackend,
    RuntimeBackendError,
)
from deployments.models import InvalidTransition, Run, RunStatus, RuntimeLogLine
from deployments.services.notifications import JOB_FAILED, notify
from deployments.workers.networks import ensure_app_network
from deployments.workers.outages import through_outages

logger = logging.getLogger(__name__)

RUN_KIND = {"slipway.kind": "run"}
MAX_LOG_LINES = 20_000  # a run's log keeps this many lines, then says how many it dropped
HEARTBEAT_EVERY = timedelta(seconds=settings.PAAS_HEARTBEAT_SECONDS)
# A pending run whose message was lost (Redis restarted, say) is sent again after this long.
PENDING_REQUEUE_SECONDS = 30


def execute(run_id: int, runtime: RuntimeBackend) -> str:
    run = Run.objects.select_related("app", "environment__live_deployment").filter(pk=run_id)
    run = run.first()
    if run is None or run.status != RunStatus.PENDING:
        return "taken"
    live = run.environment.live_deployment
    if live is None or not live.image_id:
        _end(run, "failed", "not_deployed", "Nothing is deployed to this environment any more.")
        return "failed"
    if not run.claim(live, container_name(run)):
        return "taken"  # another worker got there first, or it was cancelled
    run.log(f"==> Running `{run.command}` from the image of deployment #{live.number}")
    return _finish(run, _run(run, runtime))


def container_name(run: Run) -> str:
    return f"{settings.PAAS_INSTANCE}-{run.app.name}-{run.environment.name}-run-{run.pk}"


def run_spec(run: Run) -> ContainerSpec:
    """Like a web container (env vars, PORT, limits, volumes, labels), run to completion."""
    app, environment = run.app, run.environment
    port = app.port or settings.PAAS_DEFAULT_PORT
    return ContainerSpec(
        name=container_name(run),
        image=run.deployment.image_id,
        env={**environment.env_dict(), "PORT": str(port)},
        port=port,
        labels={**run.labels, **RUN_KIND},
        network=app.network,
        memory=settings.PAAS_CONTAINER_MEMORY,
        cpus=settings.PAAS_CONTAINER_CPUS,
        command=["sh", "-c", run.command],
        volumes=environment.volume_mounts(),
        restart=False,
        constraints=app.placement_constraints,
    )


def _run(run: Run, runtime: RuntimeBackend) -> RunOutcome | RuntimeBackendError:
    output = _Output(run)
    try:
        ensure_app_network(run.app, runtime)
        return runtime.run_once(
            run_spec(run), output.line, settings.PAAS_RUN_TIMEOUT, _Watch(run).cancelled
        )
    except RuntimeBackendError as exc:
        return exc
    except Exception as exc:  # a time limit or a bug: the run must not stay running
        _end(run, "failed", "run_error", f"The run stopped: {type(exc).__name__}.")
        raise


class _Output:
    def __init__(self, run: Run):
        self.run, self.count = run, 0
        self.process = "cron" if run.scheduled_job_id else "run"

    def line(self, text: str) -> None:
        # Each write on its own: one retried after an outage is not written twice.
        self.count += 1
        if self.count <= MAX_LOG_LINES:
            through_outages(lambda: self.run.log(text))
            through_outages(
                lambda: RuntimeLogLine.record(
                    self.run.environment,
                    self.process,
                    self.run.container_name,
                    text,
                    deployment=self.run.deployment.number,
                )
            )
        elif self.count == MAX_LOG_LINES + 1:
            self.run.log(f"==> More than {MAX_LOG_LINES} lines: the rest is not kept.")


class _Watch:
    """The runtime's cancelled(): reads the row (about once a second) and beats its heart.
    A row gone, cancelled, or failed by the warden meanwhile: kill the container."""

    def __init__(self, run: Run):
        self.run, self.last_beat = run, timezone.now()

    def cancelled(self) -> bool:
        try:
            return self._read_and_beat()
        except DatabaseError:
            # PostgreSQL away for a moment: the command goes on, and the beats with it once
            # the database is back (on a new connection), before the warden would miss them.
            logger.warning("run %s could not reach the database; going on", self.run.pk)
            connection.close()
            return False

    def _read_and_beat(self) -> bool:
        now = timezone.now()
        if now - self.last_beat >= HEARTBEAT_EVERY:
            self.run.beat()
            self.last_beat = now
        row = Run.objects.filter(pk=self.run.pk).values("status", "cancel_requested").first()
        return row is None or row["cancel_requested"] or row["status"] != RunStatus.RUNNING


def _finish(run: Run, outcome: RunOutcome | RuntimeBackendError) -> str:
    if isinstance(outcome, RuntimeBackendError):
        run.log(f"==> {outcome.message}")
        return _end(run, "failed", outcome.code, outcome.message)
    code = outcome.exit_code
    if outcome.cancelled:
        run.log("==> Killed: the run was cancelled.")
        return _end(run, "cancelled", "cancelled", "Killed by request.", code)
    if outcome.timed_out:
        limit = settings.PAAS_RUN_TIMEOUT
        message = f"Killed after the time limit of {limit}s (PAAS_RUN_TIMEOUT)."
        run.log(f"==> {message}")
        return _end(run, "failed", "run_timeout", message, code)
    run.log(f"==> Exited with code {code}")
    if code == 0:
        return _end(run, "succeeded", "", "", 0)
    return _end(run, "failed", "exit_code", f"The command exited with code {code}.", code)


def _end(run: Run, status: str, code: str, message: str, exit_code: int | None = None) -> str:
    moves = {
        "succeeded": lambda: run.mark_succeeded(exit_code),
        "failed": lambda: run.mark_failed(code, message, exit_code),
        "cancelled": lambda: run.mark_cancelled(message, exit_code),
    }
    try:
        moves[status]()
    except InvalidTransition:
        return run.status  # the warden ended it first (it thought this worker dead)
    if status == "failed" and run.scheduled_job_id:
        _notify_job_failed(run)
    return status


def _notify_job_failed(run: Run) -> None:
    job = run.scheduled_job
    name = job.name if job else "?"
    message = f"Scheduled job “{name}” (run {run.pk}) failed: {run.message}"
    notify(run.app, JOB_FAILED, environment=run.environment, error=(run.error_code, message))


# --- the warden's part -------------------------------------------------------------------------


def reconcile_runs(runtime: RuntimeBackend) -> dict:
    return {
        "lost": fail_lost_runs(),
        "removed": remove_orphan_containers(runtime),
        "requeued": requeue_lost_pending(),
    }


def fail_lost_runs() -> int:
    """Running runs whose heartbeat went quiet: their worker died (SIGKILL, OOM, reboot)."""
    cutoff = timezone.now() - timedelta(seconds=settings.PAAS_HEARTBEAT_TIMEOUT)
    lost = Run.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff)
    failed = 0
    for run in lost.select_related("app", "environment", "scheduled_job"):
        message = "The worker running this command was lost; its container was removed."
        if _end(run, "failed", "worker_lost", message) == "failed":
            run.log(f"==> {message}")
            failed += 1
    return failed


def remove_orphan_containers(runtime: RuntimeBackend) -> int:
    """A run container whose run is not running any more (its worker died) goes. A worker
    starts the container only after it claimed the run, and removes it before the end."""
    labels = {"slipway.instance": settings.PAAS_INSTANCE, **RUN_KIND}
    containers = runtime.containers_with_labels(labels)
    ids = {c.labels.get("slipway.run", "") for c in containers}
    running = {
        str(pk)
        for pk in Run.objects.filter(
            pk__in=[int(i) for i in ids if i.isdigit()], status=RunStatus.RUNNING
        ).values_list("pk", flat=True)
    }
    orphans = [c for c in containers if c.labels.get("slipway.run") not in running]
    for container in orphans:
        logger.warning("removing %s: its run is over", container.name)
        runtime.remove(container.id)
    return len(orphans)


def requeue_lost_pending() -> int:
    cutoff = timezone.now() - timedelta(seconds=PENDING_REQUEUE_SECONDS)
    lost = Run.objects.filter(status=RunStatus.PENDING, created_at__lt=cutoff).exclude(
        heartbeat_at__gte=cutoff
    )
    ids = list(lost.values_list("pk", flat=True))
    Run.objects.filter(pk__in=ids).update(heartbeat_at=timezone.now())
    for pk in ids:
        jobs.run_command(pk)
    return len(ids)
