"""Helpers for tests that drive the real platform: local git repositories, a Celery worker
and the dashboard's gunicorn as processes on the test database, waiting for a deployment,
and HTTP through the router."""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import docker
import requests
from django.conf import settings
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.models import Environment
from deployments.models import Deployment, LogLine

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"


def git(cwd, *args) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def make_repo(path: Path, files: dict[str, str], branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    commit(path, files, "initial commit")
    return path


def commit(path: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD")


def sample_files(name: str, **replacements) -> dict[str, str]:
    root = SAMPLES / name
    files = {}
    for file in root.rglob("*"):
        if file.is_file():
            text = file.read_text()
            for key, value in replacements.items():
                text = text.replace("{{" + key + "}}", value)
            files[str(file.relative_to(root))] = text
    return files


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child about to exec: SIGTERM it when the test run that started it dies, even by
    SIGKILL (its own session keeps it out of the run's process group, so nothing else
    would, and a stray worker then takes the next run's tasks from the shared queue)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_database_url() -> str:
    """The test database, for processes (the Celery worker) started outside pytest."""
    db = connections["default"].settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


class Worker:
    """A real `celery worker` process on the test database; kill() sends SIGKILL."""

    def __init__(self, log_path: Path, concurrency: int = 2):
        self.log_path, self.concurrency, self.process = log_path, concurrency, None

    def start(self) -> "Worker":
        env = {**os.environ, "DATABASE_URL": worker_database_url()}
        # A restart appends to the same log: only what this start writes says it is ready.
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "paas",
                "worker",
                "-l",
                "info",
                "-c",
                str(self.concurrency),
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"test-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._wait_ready(log_start)
        return self

    def _wait_ready(self, log_start: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log_path.read_text()[-3000:]}")
            if b" ready." in self.log_path.read_bytes()[log_start:]:
                return
            time.sleep(0.2)
        raise RuntimeError("celery worker did not become ready")

    def ensure_running(self) -> bool:
        """Start it again if it exited, as scripts/run's keep_running does (a Redis restart
        ends Celery's worker once its task is done); True when it had to."""
        if self.process is None or self.process.poll() is None:
            return False
        self.log_file.close()
        self.start()
        return True

    def kill(self) -> None:
        """SIGKILL the whole process group: the parent and its pool children die at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log_file.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self.log_file.close()


class Collector(Worker):
    """The log collector (`manage.py paas_collect_logs`) on the test database; it stops
    and is killed as the worker is."""

    def start(self) -> "Collector":
        env = {**os.environ, "DATABASE_URL": worker_database_url()}
        self.log_file = open(self.log_path, "ab")
        log_start = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "paas_collect_logs"],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for(lambda: self._ready(log_start), timeout=60, every=0.2, message="the collector")
        return self

    def _ready(self, log_start: int) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the collector exited: {self.log_path.read_text()[-3000:]}")
        return b"log collector running" in self.log_path.read_bytes()[log_start:]


class Dashboard:
    """The dashboard as the platform runs it: gunicorn on loopback (PAAS_DASHBOARD_UPSTREAM),
    on the test database. The router sends the platform's host and every page route here."""

    def __init__(self, log_path: Path):
        self.log_path, self.process = log_path, None
        self.host, _, port = settings.PAAS_DASHBOARD_UPSTREAM.rpartition(":")
        self.port = int(port)

    def start(self) -> "Dashboard":
        env = {**os.environ, "DATABASE_URL": worker_database_url()}
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                settings.PAAS_DASHBOARD_UPSTREAM,
                "--workers",
                "2",
                "--threads",
                "4",
                "--keep-alive",  # as scripts/lib.sh's exec_web: a connection per request
                "0",
                "paas.wsgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for(self._answers, timeout=60, every=0.2, message="the dashboard to answer")
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-3000:]}")
        try:
            requests.get(f"http://{settings.PAAS_DASHBOARD_UPSTREAM}/accounts/login/", timeout=2)
        except requests.RequestException:
            return False
        return True

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        self.log_file.close()


def containers(all: bool = True, **filters) -> list:
    """Containers matching `filters`, read so that one removed meanwhile (a retirement, a
    cleanup) is simply not there: docker-py's own list inspects each one it found and fails
    on a container that went in between."""
    client = docker.from_env()
    found = []
    for summary in client.api.containers(all=all, filters=filters):
        with contextlib.suppress(docker.errors.NotFound):
            found.append(client.containers.get(summary["Id"]))
    return found


def remove_containers(**filters) -> None:
    """Force-remove every container matching `filters`; gone already is fine."""
    client = docker.from_env()
    for summary in client.api.containers(all=True, filters=filters):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_container(summary["Id"], force=True)  # 409 "in progress" too


def make_live_deployment(app, image_id: str, environment: str = "production", **fields):
    """A succeeded deployment recorded as live in its environment (no container: for tests
    of the request side, which only read the database and check that the image exists)."""
    now = timezone.now()
    deployment = app.new_deployment(
        app.environment(environment),
        status="succeeded",
        image_id=image_id,
        started_at=now - timedelta(seconds=30),
        finished_at=now - timedelta(seconds=5),
        **fields,
    )
    Environment.objects.filter(app=app, name=environment).update(live_deployment=deployment)
    return deployment


def services_command(*args: str) -> None:
    """scripts/services as root runs it: no argument starts whatever of PostgreSQL, Redis and
    dockerd is down (the fault tests' way back from an outage they made)."""
    command = ["bash", str(ROOT / "scripts" / "services"), *args]
    subprocess.run(command, check=True, capture_output=True)


def wait_for(predicate, timeout: float = 180, every: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def wait_final(deployment, timeout: float = 300):
    def final():
        d = Deployment.objects.get(pk=deployment.pk)
        return d if d.is_final else None

    try:
        return wait_for(final, timeout, message=f"deployment #{deployment.number} to finish")
    except AssertionError:
        print(log_text(deployment))
        raise


def log_text(deployment) -> str:
    return "\n".join(LogLine.objects.filter(deployment=deployment).values_list("text", flat=True))


def through_proxy(
    hostname: str, path: str = "/", timeout: float = 5, headers: dict | None = None
) -> requests.Response:
    """GET through the router, as a client of `hostname` would."""
    return requests.get(
        f"http://127.0.0.1:{settings.PAAS_PROXY_HTTP_PORT}{path}",
        headers={**(headers or {}), "Host": hostname},
        timeout=timeout,
    )


def migrate(targets):
    """Migrate the test database to these (app, migration) pairs; the models as they were
    there, for a data migration's test to fill."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
