"""Who is acting, and from where, for the audit log: set once per request by the middleware
(or by a task for the warden and the workers) and read where an action is recorded, so
the use cases need no extra arguments to say it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    source: str  # dashboard, api, webhook, admin, warden, worker, system
    request: Any = None  # the request, read late: the API authenticates after the middleware
    name: str = ""  # for actors that are not users (the warden, a provider's webhook)

    @property
    def user(self):
        request = self.request
        if request is None:
            return None
        user = getattr(request, "auth", None) or getattr(request, "user", None)
        return user if getattr(user, "is_authenticated", False) else None

    @property
    def address(self) -> str | None:
        if self.request is None:
            return None
        # The router is the one way in and sets X-Forwarded-For; without it, the peer.
        forwarded = self.request.META.get("HTTP_X_FORWARDED_FOR", "")
        return forwarded.split(",")[0].strip() or self.request.META.get("REMOTE_ADDR") or None


SYSTEM = Actor("system")
_current: ContextVar[Actor] = ContextVar("slipway_actor", default=SYSTEM)


def current() -> Actor:
    return _current.get()


@contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)
