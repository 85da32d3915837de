"""The apps list's rows, read in one hand-written statement (and its count in another).

The list polls every three seconds in every open tab. Read through the ORM (the apps, a
prefetch of their production environments, their newest deployments), composing and
compiling the queries and making model instances of the rows were half of a page's CPU
(bench/run --hundred-apps, a page of 25 apps). Here the rows come back as dicts, which the
template also reads faster than attributes of models. The access rule is visible_to's
(VisibleSql); tests/apps/test_app_list_rows.py holds the two equal.
"""

import functools
from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime

from apps.models.app import App, AppStatus, Environment, EnvironmentName, VisibleSql
from deployments.models import Deployment

COLUMNS = (
    "name",
    "status",
    "repository",
    "production_host",
    "production_live_id",
    "latest_number",
    "latest_status",
    "latest_created_at",
)
STATUS_LABELS = dict(AppStatus.choices)


def app_list_count(user, team_id: int | None = None) -> int:
    """How many apps visible_to(user) has (only team `team_id`'s when given)."""
    visible, where, params = _visible(user, team_id)
    sql = f"SELECT COUNT(*) FROM {App._meta.db_table} a{visible.join}{where}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def app_list_rows(user, team_id: int | None, offset: int, limit: int) -> list[dict]:
    """visible_to(user)'s apps (only team `team_id`'s when given) by name, `limit` of them
    from `offset`: each a dict of COLUMNS and `status_label`. The production host and live
    deployment are None for an app without production, the latest_* for one that was
    never deployed."""
    visible, where, params = _visible(user, team_id)
    sql = f"{_rows_select()}{visible.join}{where} ORDER BY a.name LIMIT %s OFFSET %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [EnvironmentName.PRODUCTION, *params, limit, offset])
        rows = [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        row["status_label"] = STATUS_LABELS.get(row["status"], row["status"])
        row["latest_created_at"] = _aware(row["latest_created_at"])
    return rows


def _visible(user, team_id: int | None) -> tuple[VisibleSql, str, list]:
    visible = VisibleSql.of(user)
    conditions, params = list(visible.conditions), [*visible.join_params]
    params.extend(visible.condition_params)
    if team_id is not None:
        conditions.append("a.team_id = %s")
        params.append(team_id)
    return visible, (" WHERE " + " AND ".join(conditions)) if conditions else "", params


@functools.cache
def _rows_select() -> str:
    app, env, deployment = (m._meta.db_table for m in (App, Environment, Deployment))
    newest = f"FROM {deployment} d WHERE d.app_id = a.id ORDER BY d.number DESC LIMIT 1"
    return (
        "SELECT a.name, a.status, a.repository, p.host_label, p.live_deployment_id,"
        f" (SELECT d.number {newest}), (SELECT d.status {newest}),"
        f" (SELECT d.created_at {newest})"
        f" FROM {app} a LEFT JOIN {env} p ON p.app_id = a.id AND p.name = %s"
    )


def _aware(value) -> datetime | None:
    """PostgreSQL hands back an aware datetime; SQLite a naive one (or, without its
    converter, the text), in the UTC Django stored."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
