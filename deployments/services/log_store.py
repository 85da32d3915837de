"""Reading the runtime log from the store: pages by a nanosecond cursor, filtered.

Every page is a keyset query on RuntimeLogLine's `(environment, ns, id)` index, so its cost
does not grow with the log (the bench's table). `since` pages forward (the live tail),
`before` pages back; without either, the newest page.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from deployments.models.runtime_logs import STREAMS, RuntimeLogLine

SEARCH_MAX = 200


@dataclass(frozen=True)
class LogFilter:
    """What to show; empty fields show everything."""

    process: str = ""
    replica: int | None = None
    deployment: int | None = None
    stream: str = ""
    search: str = ""

    def __post_init__(self):
        if self.stream and self.stream not in STREAMS:
            raise ValidationError({"stream": [f"Use one of: {', '.join(STREAMS)}."]})
        if len(self.search) > SEARCH_MAX:
            raise ValidationError({"search": [f"At most {SEARCH_MAX} characters."]})

    def apply(self, lines):
        if self.process:
            lines = lines.filter(process=self.process)
        if self.replica is not None:
            lines = lines.filter(replica=self.replica)
        if self.deployment is not None:
            lines = lines.filter(deployment=self.deployment)
        if self.stream:
            lines = lines.filter(stream=self.stream)
        if self.search:
            lines = lines.filter(text__contains=self.search)
        return lines


def _lines(environment, filters: LogFilter | None):
    return (filters or LogFilter()).apply(RuntimeLogLine.objects.filter(environment=environment))


def page_after(environment, since_ns: int, limit: int, filters=None) -> list[RuntimeLogLine]:
    """Lines strictly after since_ns, oldest first. Past the limit, lines sharing the last
    timestamp come too: the next page, after that timestamp, must not skip one."""
    lines = _lines(environment, filters)
    page = list(lines.filter(ns__gt=since_ns).order_by("ns", "id")[:limit])
    if len(page) == limit:
        last = page[-1]
        page += list(lines.filter(ns=last.ns, id__gt=last.id).order_by("id"))
    return page


def page_before(environment, before_ns: int, limit: int, filters=None) -> list[RuntimeLogLine]:
    """The `limit` lines just before before_ns, oldest first."""
    lines = _lines(environment, filters).filter(ns__lt=before_ns).order_by("-ns", "-id")
    return list(reversed(lines[:limit]))


def newest(environment, limit: int, filters=None) -> list[RuntimeLogLine]:
    lines = _lines(environment, filters).order_by("-ns", "-id")
    return list(reversed(lines[:limit]))


def page(environment, since_ns: int = 0, limit: int = 200, filters=None):
    """The API's and the pages' one call: the newest page, or the lines after since_ns."""
    if since_ns <= 0:
        return newest(environment, limit, filters)
    return page_after(environment, since_ns, limit, filters)
