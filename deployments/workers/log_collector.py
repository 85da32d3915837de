"""The log collector: follows every container of this installation and stores what it
prints in RuntimeLogLine, so logs outlive the container and page in constant time.

One process (`manage.py paas_collect_logs`), one thread per container stream, one writer.
Each line is stored once: a stream's cursor (CollectedContainer) moves in the same
transaction as its lines, and a stream is followed again only after everything its last
follower read is written. One-off runs are stored by the worker that runs them (their
containers live shorter than a poll), so the collector leaves them and build steps alone.
"""

import logging
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from apps.models import Environment
from deployments.adapters.runtime import ContainerInfo, RuntimeBackendError
from deployments.models.runtime_logs import (
    STDERR,
    STREAMS,
    TEXT_MAX,
    CollectedContainer,
    RuntimeLogLine,
    RuntimeLogUsage,
)
from deployments.workers import log_pruning

logger = logging.getLogger(__name__)

BATCH_LINES = 5000
# A follower waits while this many lines are unwritten: memory stays bounded, and the
# engine keeps the rest in its (capped) log file meanwhile.
PENDING_LINES = 50_000
WRITE_EVERY = 0.2  # seconds: how stale the store may be behind a container


@dataclass(frozen=True)
class Origin:
    """Where a container's lines come from, read from its labels."""

    app_id: int
    environment_id: int
    deployment: int | None
    process: str
    replica: int
    container: str


@dataclass(frozen=True)
class _End:
    key: tuple[str, str]


def origin_of(container: ContainerInfo, names: "NameCache") -> Origin | None:
    """None for what is not an app's long-running container: a build step, and the one-off
    runs and release phases (their workers store their output)."""
    labels = container.labels
    if labels.get("slipway.kind") == "run" or labels.get("slipway.role") == "build":
        return None
    if labels.get("slipway.process") == "release":
        return None
    process = labels.get("slipway.process") or _addon_process(labels)
    found = names.environment(labels.get("slipway.app", ""), labels.get("slipway.environment", ""))
    if not process or found is None:
        return None
    deployment = labels.get("slipway.deployment", "")
    return Origin(
        app_id=found[0],
        environment_id=found[1],
        deployment=int(deployment) if deployment.isdigit() else None,
        process=process[:64],
        replica=int(labels.get("slipway.replica", "1") or 1),
        container=container.name[:128],
    )


def _addon_process(labels: dict[str, str]) -> str:
    kind = labels.get("slipway.addon", "")
    return f"addon-{kind}" if kind else ""


class NameCache:
    """(app id, environment id) by the names on a container's labels."""

    def __init__(self):
        self._found: dict[tuple[str, str], tuple[int, int] | None] = {}

    def environment(self, app: str, environment: str) -> tuple[int, int] | None:
        key = (app, environment)
        if self._found.get(key) is None:
            row = (
                Environment.objects.filter(app__name=app, name=environment)
                .values_list("app_id", "pk")
                .first()
            )
            self._found[key] = row
        return self._found[key]

    def forget(self) -> None:
        self._found.clear()


class LogCollector:
    def __init__(self, runtime, poll_seconds: float | None = None):
        self.runtime = runtime
        self.poll_seconds = poll_seconds or settings.PAAS_LOG_COLLECT_SECONDS
        # Followers append, the writer pops: a deque's ends are thread-safe and cost far
        # less per line than a Queue's locks (lines come by the ten thousand a second).
        self.lines: deque = deque()
        self.following: set[tuple[str, str]] = set()  # until their _End is written
        self.names = NameCache()
        self.stopping = threading.Event()

    # --- the two loops ------------------------------------------------------------------

    def run(self) -> None:
        """Poll for containers and write lines until stop() (SIGTERM in the command)."""
        writer = threading.Thread(target=self._write_forever, name="log-writer", daemon=True)
        writer.start()
        next_prune = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.poll_once()
                if time.monotonic() >= next_prune:
                    log_pruning.prune()
                    next_prune = time.monotonic() + settings.PAAS_RUNTIME_LOG_PRUNE_SECONDS
            except RuntimeBackendError as exc:
                logger.warning("log collector: %s (retrying)", exc.message)
            except Exception:  # noqa: BLE001 - the collector outlives a bad poll
                logger.exception("log collector poll failed")
                close_old_connections()
            self.stopping.wait(self.poll_seconds)
        writer.join(timeout=10)

    def stop(self) -> None:
        self.stopping.set()

    def poll_once(self) -> int:
        """Start a follower for every stream not followed yet; the number started."""
        found = self.runtime.containers_with_labels({"slipway.instance": settings.PAAS_INSTANCE})
        cursors = _cursors([c.id for c in found])
        started = 0
        for container in found:
            origin = origin_of(container, self.names)
            if origin is None:
                continue
            state = cursors.get(container.id)
            if container.status != "running" and state is not None and state.finished:
                continue
            for stream in STREAMS:
                started += self._follow(container, origin, stream, state)
        self.names.forget()  # an app deleted and made again under its name: look it up anew
        return started

    def _follow(self, container, origin, stream, state) -> int:
        key = (container.id, stream)
        if key in self.following:
            return 0
        self.following.add(key)
        since = state.cursor(stream) if state else 0
        thread = threading.Thread(
            target=self._read, args=(key, origin, since), name=f"log-{key[0][:12]}", daemon=True
        )
        thread.start()
        return 1

    def _read(self, key, origin: Origin, since: int) -> None:
        container_id, stream = key
        try:
            for ns, text in self.runtime.follow_logs(container_id, stream, since):
                self.lines.append((key, origin, ns, text))
                while len(self.lines) > PENDING_LINES and not self.stopping.is_set():
                    time.sleep(0.05)
                if self.stopping.is_set():
                    break
        except RuntimeBackendError:
            pass  # gone, or the engine restarts: the next poll decides
        finally:
            self.lines.append(_End(key))

    def _write_forever(self) -> None:
        while not (self.stopping.is_set() and not self.lines):
            batch = self._next_batch()
            while batch:
                try:
                    self.write(batch)
                    batch = []
                except Exception:  # noqa: BLE001 - a lost database: the same batch again
                    logger.exception("log collector write failed; retrying")
                    close_old_connections()
                    time.sleep(1)

    def _next_batch(self) -> list:
        if len(self.lines) < BATCH_LINES:
            time.sleep(WRITE_EVERY)
        batch = []
        while self.lines and len(batch) < BATCH_LINES:
            batch.append(self.lines.popleft())
        return batch

    # --- writing ------------------------------------------------------------------------

    def write(self, batch: list) -> None:
        """Store a batch of lines and move their streams' cursors, in one transaction."""
        rows, newest, sizes, ended = [], {}, defaultdict(int), []
        for item in batch:
            if isinstance(item, _End):
                ended.append(item.key)
                continue
            key, origin, ns, text = item
            rows.append(_row(origin, key[1], ns, text))
            newest[key] = max(ns, newest.get(key, 0))
            sizes[origin.app_id] += len(text)
        rows = _of_existing_environments(rows)
        with transaction.atomic():
            _copy(rows)
            for app_id, amount in sizes.items():
                if any(row[APP] == app_id for row in rows):
                    RuntimeLogUsage.add(app_id, amount)
            for key, ns in newest.items():
                _move_cursor(key, ns)
            for key in ended:
                _mark_ended(key, self.runtime)
        self.following.difference_update(ended)


def _row(origin: Origin, stream: str, ns: int, text: str) -> tuple:
    """In COPY_COLUMNS' order. A tuple, not a model instance: building one of those costs
    more than storing the line."""
    text = text[:TEXT_MAX].replace("\x00", "")  # PostgreSQL text holds no NUL
    return (
        origin.app_id,
        origin.environment_id,
        origin.deployment,
        origin.process,
        origin.replica,
        origin.container,
        stream,
        ns,
        text,
    )


COPY_COLUMNS = (
    "app_id",
    "environment_id",
    "deployment",
    "process",
    "replica",
    "container",
    "stream",
    "ns",
    "text",
)
APP, ENVIRONMENT = 0, 1


def _copy(rows: list[tuple]) -> None:
    """COPY, not INSERT: several times the rows per second (the collector must keep up
    with a chatty app before Docker's capped json-file rotates lines away)."""
    if not rows:
        return
    table = RuntimeLogLine._meta.db_table
    statement = f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _of_existing_environments(rows: list[tuple]) -> list[tuple]:
    """An app deleted while its lines were in flight: its lines go with it (else the
    batch would fail on the foreign key forever)."""
    ids = {row[ENVIRONMENT] for row in rows}
    existing = set(Environment.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if existing == ids:
        return rows
    return [row for row in rows if row[ENVIRONMENT] in existing]


def _cursors(ids: list[str]) -> dict[str, CollectedContainer]:
    return {c.container_id: c for c in CollectedContainer.objects.filter(container_id__in=ids)}


def _move_cursor(key: tuple[str, str], ns: int) -> None:
    container_id, stream = key
    field = "stderr_ns" if stream == STDERR else "stdout_ns"
    state, _ = CollectedContainer.objects.select_for_update().get_or_create(
        container_id=container_id
    )
    if ns > getattr(state, field):
        setattr(state, field, ns)
        state.finished = False
        state.save()


def _mark_ended(key: tuple[str, str], runtime) -> None:
    """A follower ended: the container stopped (read to the end) or is going away."""
    container_id, _ = key
    try:
        running = runtime.is_running(container_id)
    except RuntimeBackendError:
        return
    if not running:
        CollectedContainer.objects.update_or_create(
            container_id=container_id, defaults={"finished": True}
        )
