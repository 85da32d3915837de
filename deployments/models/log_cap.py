"""A log keeps its head and its tail: one build printing forever cannot fill the database.

Each owner of a log (a Deployment, a Run) counts the lines it was sent in
`log_lines_written`: one `UPDATE … RETURNING` per line, never a COUNT(*). The first half
of PAAS_LOG_MAX_LINES is kept as written. When the line after it arrives, an empty marker
line is put in first (hidden while empty); from then on the newest lines are kept, and
every so often the ones between the marker and the newest half are deleted in one
statement and the marker says how many went.
"""

from django.conf import settings
from django.db import connection, models


def head_and_tail() -> tuple[int, int]:
    cap = max(settings.PAAS_LOG_MAX_LINES, 2)
    return cap // 2, cap - cap // 2


def append(owner: models.Model, lines: models.QuerySet, **fields) -> models.Model:
    """Write one line of `owner`'s log (`lines`: its log's queryset, which creates it)."""
    written = _count_one(owner)
    head, tail = head_and_tail()
    if written == head + 1:
        marker = lines.create(text="")
        type(owner).objects.filter(pk=owner.pk).update(log_marker_id=marker.pk)
        owner.log_marker_id = marker.pk
    line = lines.create(**fields)
    over = written - head - tail
    if over > 0 and over % _batch(tail) == 0:
        _drop_middle(owner, lines, over, head, tail)
    return line


def visible(owner: models.Model, lines: models.QuerySet) -> models.QuerySet:
    """The log as it is shown: the marker only once it has something to say."""
    if owner.log_marker_id is None:
        return lines
    return lines.exclude(pk=owner.log_marker_id, text="")


def _batch(tail: int) -> int:
    # Prune every so many lines, not at every one: the log briefly holds a little more.
    return max(1, min(tail // 10, 500))


def _count_one(owner: models.Model) -> int:
    table = connection.ops.quote_name(owner._meta.db_table)
    column = connection.ops.quote_name("log_lines_written")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = {column} + 1 WHERE id = %s RETURNING {column}",
            [owner.pk],
        )
        return cursor.fetchone()[0]


def _drop_middle(owner, lines: models.QuerySet, over: int, head: int, tail: int) -> None:
    marker_id = type(owner).objects.values_list("log_marker_id", flat=True).get(pk=owner.pk)
    after_marker = lines.filter(pk__gt=marker_id)
    last_to_drop = list(after_marker.order_by("-pk").values_list("pk", flat=True)[tail : tail + 1])
    if not last_to_drop:
        return
    after_marker.filter(pk__lte=last_to_drop[0]).delete()
    lines.filter(pk=marker_id).update(
        text=f"[… {over} lines dropped: a log keeps its first {head} and its last {tail} lines"
        " (PAAS_LOG_MAX_LINES) …]"
    )
