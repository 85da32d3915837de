"""Beat in a thread of the worker (`celery worker --beat-thread`, as scripts/lib.sh's
exec_worker starts it for scripts/run): it sends the periodic tasks to the broker, and a
SIGKILL of the worker leaves no beat behind (Celery's `-B` forks one that would outlive it).

The worker here uses a Redis database of its own and consumes a queue nothing is sent to,
so what its beat sends is counted in the broker, not run by anyone."""

import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings

from tests.support import ROOT, wait_for, worker_database_url

BROKER_DB = 6  # the suite's own is 1 (scripts/test), the benchmarks' 2 and 3
QUEUE = "beat-thread-test"  # nothing is routed here: the worker runs none of beat's tasks


@pytest.fixture
def broker():
    url = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{BROKER_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url, client
    client.flushdb()


@pytest.fixture
def worker_with_beat(broker, tmp_path, transactional_db):
    url, _ = broker
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": url,
        "PAAS_CRON_TICK_SECONDS": "1",
    }
    log_path = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "paas", "worker", "-l", "info"]
    argv += ["-Q", QUEUE, "--concurrency", "1", "--beat-thread", str(tmp_path / "schedule")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    yield process, log_path
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


def _group_alive(pgid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-g", str(pgid), "-a"], capture_output=True, text=True)
    return found.stdout.splitlines()


def test_the_workers_beat_thread_sends_the_periodic_tasks(broker, worker_with_beat):
    _, client = broker
    process, log_path = worker_with_beat
    # The cron's tick (every second here) reaches the default queue, which nobody consumes.
    wait_for(lambda: client.llen("celery") >= 2, timeout=60, message="beat's tasks in the broker")
    log = log_path.read_text()
    assert "beat: Starting" in log and "Scheduler: Sending due task scheduled-jobs" in log
    assert process.poll() is None, log


def test_a_killed_worker_leaves_no_beat_behind(broker, worker_with_beat):
    _, client = broker
    process, log_path = worker_with_beat
    wait_for(lambda: client.llen("celery") >= 1, timeout=60, message="beat to have started")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=20)
    # Its pool's child notices its parent gone and ends; nothing else was ever a process.
    wait_for(lambda: not _group_alive(process.pid), timeout=30, message="the worker's group gone")
    sent = client.llen("celery")
    time.sleep(3)  # three of the cron's one-second ticks, were a beat still running
    assert client.llen("celery") == sent, log_path.read_text()[-2000:]
