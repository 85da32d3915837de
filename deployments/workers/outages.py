"""Writes that outlast a short PostgreSQL outage (a restart, a failover): a build's or a
run's output line is written a few seconds late instead of failing the build or the run
(the engine keeps the container's output meanwhile, so nothing is lost)."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

PATIENCE_SECONDS = 60.0


def through_outages(write: Callable[[], T], patience: float = PATIENCE_SECONDS) -> T:
    """write(), again on a new connection while the database is unreachable, for up to
    `patience` seconds. Inside a transaction nothing is retried: its work is lost with the
    connection, and only its caller can start it again."""
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or time.monotonic() >= deadline:
                raise
            logger.warning("database unreachable; writing again in %.1f s", delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
