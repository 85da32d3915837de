"""Scheduled jobs: the cron tick (once per fire time, even with ticks racing; an overlapping
fire time skipped and recorded; a failure notified), and a job every minute started by the
real Celery beat and run by the real worker.

The session's test worker runs no beat, so the beat test starts one, as `celery beat` runs
beside the workers in production (scripts/run), on the test database and broker."""

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from apps.models.notifications import NotificationDelivery, NotificationTarget
from deployments.models import Run, RunStatus, ScheduledJob
from deployments.services import runs
from deployments.services.notifications import JOB_FAILED
from deployments.workers import runs as run_worker
from tests.support import ROOT, make_live_deployment, wait_for, worker_database_url

EVERY_MINUTE = "* * * * *"
T0 = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)


def _job(app, schedule=EVERY_MINUTE, command="echo tick", created=T0, **fields) -> ScheduledJob:
    job = ScheduledJob.objects.create(
        environment=app.environment("production"),
        name=fields.pop("name", "tick"),
        schedule=schedule,
        command=command,
        **fields,
    )
    ScheduledJob.objects.filter(pk=job.pk).update(created_at=created)
    job.refresh_from_db()
    return job


@pytest.mark.django_db
def test_a_job_runs_once_per_fire_time(make_app, local_image_id):
    app = make_app("cron")
    make_live_deployment(app, local_image_id)
    job = _job(app)
    assert runs.schedule_due_jobs(T0 + timedelta(seconds=20)) == 0  # 12:00 is before it
    assert runs.schedule_due_jobs(T0 + timedelta(seconds=31)) == 1  # 12:01 passed
    assert runs.schedule_due_jobs(T0 + timedelta(seconds=50)) == 0  # still 12:01
    (run,) = job.runs.all()
    assert (run.status, run.command, run.environment.name) == ("pending", "echo tick", "production")
    job.refresh_from_db()
    assert job.last_scheduled_at == datetime(2030, 1, 1, 12, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_a_due_run_while_the_last_one_still_goes_is_skipped_and_recorded(make_app, local_image_id):
    app = make_app("cron")
    make_live_deployment(app, local_image_id)
    job = _job(app)
    runs.schedule_due_jobs(T0 + timedelta(seconds=31))
    first = job.runs.get()
    Run.objects.filter(pk=first.pk).update(status=RunStatus.RUNNING)
    assert runs.schedule_due_jobs(T0 + timedelta(seconds=91)) == 1  # 12:02
    skipped = job.runs.order_by("-id").first()
    assert (skipped.status, skipped.error_code) == ("cancelled", "skipped")
    assert skipped.message == f"Skipped: run {first.pk} of this job was still running."
    job.refresh_from_db()
    assert job.skipped_count == 1 and job.runs.count() == 2
    Run.objects.filter(pk=first.pk).update(status=RunStatus.SUCCEEDED)
    runs.schedule_due_jobs(T0 + timedelta(seconds=151))  # 12:03: free again
    assert job.runs.order_by("-id").first().status == "pending"


@pytest.mark.django_db
def test_disabled_jobs_and_bursts_of_missed_fire_times(make_app, local_image_id):
    app = make_app("cron")
    make_live_deployment(app, local_image_id)
    job = _job(app, enabled=False)
    assert runs.schedule_due_jobs(T0 + timedelta(minutes=5)) == 0
    ScheduledJob.objects.filter(pk=job.pk).update(enabled=True)
    # An hour of missed minutes is one run, not sixty.
    assert runs.schedule_due_jobs(T0 + timedelta(hours=1)) == 1
    assert job.runs.count() == 1


@pytest.mark.django_db
def test_with_nothing_deployed_a_fire_time_is_recorded_as_skipped(make_app):
    job = _job(make_app("cron"))
    runs.schedule_due_jobs(T0 + timedelta(seconds=31))
    run = job.runs.get()
    assert (run.status, run.error_code) == ("cancelled", "not_deployed")


@pytest.mark.django_db(transaction=True)
def test_two_racing_ticks_start_a_fire_time_once(make_app):
    job = _job(make_app("cron"))  # nothing deployed: each start is a recorded skip, no task
    barrier, taken = threading.Barrier(4), []

    def tick():
        barrier.wait()
        try:
            taken.append(runs.schedule_due_jobs(T0 + timedelta(seconds=31)))
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [0, 0, 0, 1]
    assert job.runs.count() == 1


@pytest.mark.django_db
def test_a_failed_scheduled_run_notifies_like_a_failed_deployment(make_app, local_image_id):
    app = make_app("cron")
    live = make_live_deployment(app, local_image_id)
    NotificationTarget.objects.create(app=app, url="https://hooks.example/", secret="s")
    job = _job(app)
    run = Run.objects.create(
        app=app, environment=job.environment, command="false", scheduled_job=job
    )
    assert run.claim(live, "c")
    run_worker._end(run, "failed", "exit_code", "The command exited with code 1.", 1)
    delivery = NotificationDelivery.objects.get()
    assert delivery.event == JOB_FAILED
    error = json.loads(delivery.body)["error"]
    assert error["code"] == "exit_code"
    assert error["message"].startswith("Scheduled job “tick”") and "code 1" in error["message"]


# --- the real beat ---------------------------------------------------------------------------


@pytest.fixture
def beat(platform, tmp_path):
    """`celery beat` on the test broker, ticking the cron every 2 s."""
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "PAAS_CRON_TICK_SECONDS": "2"}
    log = open(tmp_path / "beat.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "paas", "beat", "-l", "info"]
        + ["-s", str(tmp_path / "beat-schedule"), "--pidfile", str(tmp_path / "beat.pid")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    log.close()


def test_a_job_every_minute_runs_within_70_seconds_and_never_overlaps(
    beat, make_app, local_image_id
):
    app = make_app("cron")
    make_live_deployment(app, local_image_id)
    job = runs.create_job(
        app, {"name": "tick", "schedule": EVERY_MINUTE, "command": "echo tick; sleep 12"}
    )
    first = wait_for(lambda: job.runs.first(), timeout=70, every=0.5, message="the first run")
    wait_for(
        lambda: Run.objects.get(pk=first.pk).status == "running", timeout=30, message="it to run"
    )
    # Its fire time again, as if the next minute came while it still runs.
    job.refresh_from_db()
    rewound = job.last_scheduled_at - timedelta(minutes=1)
    ScheduledJob.objects.filter(pk=job.pk).update(last_scheduled_at=rewound)
    skipped = wait_for(
        lambda: job.runs.filter(error_code="skipped").first(), timeout=20, message="the skip"
    )
    assert skipped.status == "cancelled" and f"run {first.pk}" in skipped.message
    done = wait_for(
        lambda: (r := Run.objects.get(pk=first.pk)).is_final and r, timeout=60, message="the end"
    )
    assert (done.status, done.exit_code) == ("succeeded", 0)
    assert list(done.log_lines.values_list("text", flat=True))[1] == "tick"
