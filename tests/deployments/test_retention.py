"""Retention (PAAS_LOG_RETENTION_DAYS, PAAS_ARCHIVE_RETENTION_DAYS): what finished long ago
goes, a batch at a time; what is newer, live or unfinished stays."""

import os
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import LogLine, Run, RunLogLine
from deployments.services.archives import archive_dir
from deployments.workers import retention
from paas.celery import app as celery_app
from tests.support import make_live_deployment

DAY = timedelta(days=1)


@pytest.fixture
def app(make_app, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.PAAS_LOG_RETENTION_DAYS = 30
    settings.PAAS_ARCHIVE_RETENTION_DAYS = 30
    return make_app("oldies")


def finished(app, days_ago: float, status: str = "failed", lines: int = 3, **fields):
    deployment = app.new_deployment(
        app.environment("production"),
        status=status,
        finished_at=timezone.now() - days_ago * DAY if days_ago is not None else None,
        **fields,
    )
    for n in range(lines):
        deployment.log(f"line {n}")
    return deployment


def run_of(app, days_ago, status: str = "succeeded", lines: int = 3):
    run = Run.objects.create(
        app=app,
        environment=app.environment("production"),
        command="true",
        status=status,
        finished_at=timezone.now() - days_ago * DAY if days_ago is not None else None,
    )
    for n in range(lines):
        run.log(f"out {n}")
    return run


def lines_of(deployment) -> int:
    return LogLine.objects.filter(deployment=deployment).count()


def upload(app, days_ago: float):
    folder = archive_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{app.name}-{uuid.uuid4().hex}.tar.gz"
    path.write_bytes(b"archive")
    stamp = time.time() - days_ago * 86400
    os.utime(path, (stamp, stamp))
    return path


# --- logs -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_log_of_a_deployment_finished_before_the_cutoff_goes_and_a_newer_one_stays(app):
    old = finished(app, 31)
    recent = finished(app, 29)

    assert retention.prune_logs()["log_lines"] == 3

    assert (lines_of(old), lines_of(recent)) == (0, 3)


@pytest.mark.django_db
def test_the_live_deployments_log_stays_however_old(app, settings):
    live = make_live_deployment(app, "sha256:live")
    live.log("why it is how it is")
    type(live).objects.filter(pk=live.pk).update(finished_at=timezone.now() - 400 * DAY)
    superseded = finished(app, 400, status="succeeded")

    retention.prune_logs()

    assert (lines_of(live), lines_of(superseded)) == (1, 0)


@pytest.mark.django_db
def test_an_unfinished_deployment_keeps_its_log_whatever_its_age(app):
    building = finished(app, None, status="building")
    LogLine.objects.filter(deployment=building).update(created_at=timezone.now() - 90 * DAY)

    retention.prune_logs()

    assert lines_of(building) == 3


@pytest.mark.django_db
def test_run_logs_go_by_the_runs_finish_time_and_a_running_one_stays(app):
    old, recent, running = run_of(app, 31), run_of(app, 1), run_of(app, None, status="running")

    assert retention.prune_logs()["run_log_lines"] == 3

    counts = [RunLogLine.objects.filter(run=r).count() for r in (old, recent, running)]
    assert counts == [0, 3, 3]


@pytest.mark.django_db
def test_zero_days_keeps_logs_and_archives_forever(app, settings):
    settings.PAAS_LOG_RETENTION_DAYS = 0
    settings.PAAS_ARCHIVE_RETENTION_DAYS = 0
    old, path = finished(app, 3650), upload(app, 3650)

    assert retention.prune_logs() == {"log_lines": 0, "run_log_lines": 0}
    assert retention.prune_archives() == 0

    assert lines_of(old) == 3 and path.exists()


@pytest.mark.django_db
def test_lines_go_in_batches_of_one_short_statement_each(app):
    old = finished(app, 31, lines=5)

    with CaptureQueriesContext(connection) as queries:
        assert retention.delete_in_batches(retention.old_deployment_lines(timezone.now()), 2) == 5

    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert lines_of(old) == 0


# --- archives ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_old_archive_goes_and_a_newer_one_stays(app):
    old, recent = upload(app, 31), upload(app, 2)

    assert retention.prune_archives() == 1

    assert (old.exists(), recent.exists()) == (False, True)


@pytest.mark.django_db
def test_an_old_archive_of_the_live_or_an_unfinished_deployment_stays(app):
    live_archive, pending_archive, failed_archive = (upload(app, 90) for _ in range(3))
    make_live_deployment(app, "sha256:live", step_data={"archive": str(live_archive)})
    finished(app, None, status="pending", step_data={"archive": str(pending_archive)})
    finished(app, 80, step_data={"archive": str(failed_archive)})

    retention.prune_archives()

    assert (live_archive.exists(), pending_archive.exists()) == (True, True)
    assert not failed_archive.exists()  # only a failed deployment used it


@pytest.mark.django_db
def test_files_that_are_not_uploads_are_left_alone(app):
    stranger = archive_dir() / "notes.tar.gz"
    stranger.parent.mkdir(parents=True, exist_ok=True)
    stranger.write_bytes(b"x")
    os.utime(stranger, (0, 0))

    retention.prune_archives()

    assert stranger.exists()


# --- Celery beat ------------------------------------------------------------------------------


def test_beat_runs_both_retention_tasks_periodically():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    tasks = {schedule[name]["task"] for name in ("prune-old-logs", "prune-old-archives")}
    assert tasks == {"deployments.tasks.prune_old_logs", "deployments.tasks.prune_old_archives"}
    assert all(schedule[name]["schedule"] > 0 for name in ("prune-old-logs", "prune-old-archives"))


def test_the_real_worker_prunes_logs_when_beat_sends_the_task(worker, transactional_db, make_app):
    # The worker runs with the defaults (30 days) and the test database. (Not the archive
    # task: the worker's archive folder is the real var/, shared with a running platform.)
    app = make_app("beat")
    old, recent = finished(app, 31), finished(app, 1)
    old_run = run_of(app, 45)

    schedule = django_settings.CELERY_BEAT_SCHEDULE
    registered = {
        name for names in celery_app.control.inspect().registered().values() for name in names
    }
    assert {
        schedule["prune-old-logs"]["task"],
        schedule["prune-old-archives"]["task"],
    } <= registered

    removed = celery_app.send_task(schedule["prune-old-logs"]["task"]).get(timeout=60)

    assert removed["log_lines"] >= 3 and removed["run_log_lines"] >= 3
    assert (lines_of(old), lines_of(recent)) == (0, 3)
    assert not RunLogLine.objects.filter(run=old_run).exists()
