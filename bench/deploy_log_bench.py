"""Deployment-log page latency on a 1,000,000-line build log, at the start, the middle and
the end, the way users get a page: the dashboard's log partial (`…/deployments/<n>/log/`,
what the deployment page polls), the API's `…/deployments/<n>/logs`, and the model call
both make (LogLine.page); beside them the raw SQL query for the same rows. Run with
`bench/run --deploy-log` (`--quick`: 10,000 lines, to check the bench itself).

The log is filled with one INSERT … SELECT generate_series, as logs_bench fills the
runtime-log store. The default cap (PAAS_LOG_MAX_LINES, 10,000) keeps a real log far
shorter; a log that went over it has a marker line, and so has this one, so the page's
query is the one a capped log gets.
"""

import os
import platform as host
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.models import ApiToken, App  # noqa: E402
from bench.logs_bench import LINE, median_ms  # noqa: E402
from bench.summary import record  # noqa: E402
from deployments.models import LogLine  # noqa: E402

LINES, QUICK_LINES = 1_000_000, 10_000
PAGE = 500  # the dashboard's poll (LOG_PAGE) and the API's default page
TARGET_MS = 20
APP_NAME = "deploylogbench"
TABLE = LogLine._meta.db_table
PAGE_SQL = (
    f"SELECT id, deployment_id, stream, text, created_at FROM {TABLE}"
    " WHERE deployment_id = %s AND id > %s ORDER BY id LIMIT %s"
)


def make_deployment(owner):
    """A finished deployment of an app of its own, with an empty log."""
    App.objects.filter(name=APP_NAME).delete()
    app = App.objects.create(name=APP_NAME, owner=owner, repository="https://example.com/x.git")
    now = timezone.now()
    return app.new_deployment(
        app.environment("production"),
        status="succeeded",
        started_at=now - timedelta(minutes=10),
        finished_at=now - timedelta(minutes=5),
    )


def fill_log(deployment, lines: int) -> tuple[int, int]:
    """`lines` build-log lines by one INSERT … SELECT; their first and last ids. The middle
    line becomes the cap's marker (its text: what a cap says it dropped)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (deployment_id, stream, text, created_at)"
            " SELECT %s, 'build', 'line ' || lpad(n::text, 8, '0') || ' ' || %s, now()"
            " FROM generate_series(0, %s - 1) AS n",
            [deployment.pk, LINE, lines],
        )
        cursor.execute(f"ANALYZE {TABLE}")
        cursor.execute(
            f"SELECT min(id), max(id) FROM {TABLE} WHERE deployment_id = %s", [deployment.pk]
        )
        first, last = cursor.fetchone()
    marker = first + lines // 2
    LogLine.objects.filter(pk=marker).update(text="[… 0 lines dropped (bench marker) …]")
    type(deployment).objects.filter(pk=deployment.pk).update(
        log_marker_id=marker, log_lines_written=lines
    )
    deployment.refresh_from_db()
    return first, last


def cursors(first: int, last: int, lines: int) -> dict[str, int]:
    """The `after` cursor of each page: the first page, one halfway, the last full page."""
    return {"start": 0, "middle": first + lines // 2, "end": last - PAGE}


def raw_page(deployment_id: int, after: int) -> list:
    with connection.cursor() as cursor:
        cursor.execute(PAGE_SQL, [deployment_id, after, PAGE])
        return cursor.fetchall()


class Paths:
    """Each way a user gets a page of the log, one method each, given the cursor; check()
    makes sure they all show the rows the raw query finds."""

    def __init__(self, deployment, owner):
        self.deployment = deployment
        app_host = {"HTTP_HOST": settings.PAAS_PUBLIC_HOST}
        self.browser = Client(**app_host)
        self.browser.force_login(owner)
        self.token, token = ApiToken.issue(owner, name="deploy-log-bench")
        self.api = Client(HTTP_AUTHORIZATION=f"Bearer {token}", **app_host)
        args = [deployment.app.name, deployment.number]
        self.partial_url = reverse("deployment-log", args=args)
        self.page_url = reverse("deployment-detail", args=args)
        self.api_url = f"/api/v1/apps/{args[0]}/deployments/{args[1]}/logs"

    def partial(self, after: int):
        response = self.browser.get(self.partial_url, {"after": after})
        assert response.status_code == 200, response.status_code
        return response

    def api_page(self, after: int):
        response = self.api.get(self.api_url, {"after": after})
        assert response.status_code == 200, response.content[:500]
        return response

    def model(self, after: int):
        return LogLine.page(self.deployment, after=after, limit=PAGE)

    def detail_page(self):
        response = self.browser.get(self.page_url)
        assert response.status_code == 200, response.status_code
        return response

    def check(self, after: int) -> None:
        """Untimed: every path shows the rows the raw query finds."""
        rows = raw_page(self.deployment.pk, after)
        model_ids = [line.id for line in self.model(after)]
        api_ids = [line["cursor"] for line in self.api_page(after).json()["lines"]]
        assert model_ids == [row[0] for row in rows], "the model's page differs"
        assert api_ids == model_ids, "the API's page differs from the model's"
        assert rows[0][3] in self.partial(after).content.decode(), "the partial lacks a row"


def queries_of(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [query["sql"] for query in captured.captured_queries]


def scans_whole_log(sql: list[str]) -> bool:
    """A query that gets slower as the log grows: a count or an OFFSET on the log table."""
    return any(TABLE in q and ("COUNT(" in q.upper() or " OFFSET " in q.upper()) for q in sql)


def measure(paths: Paths, deployment_id: int, at: dict[str, int]) -> list[dict]:
    rows = []
    for where, after in at.items():
        paths.check(after)
        rows.append(
            {
                "where": where,
                "partial": median_ms(lambda a=after: paths.partial(a)),
                "api": median_ms(lambda a=after: paths.api_page(a)),
                "model": median_ms(lambda a=after: paths.model(a)),
                "sql": median_ms(lambda a=after: raw_page(deployment_id, a)),
            }
        )
    return rows


def explain(deployment_id: int, after: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + PAGE_SQL, [deployment_id, after, PAGE]
        )
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    lines = QUICK_LINES if "--quick" in sys.argv else LINES
    owner, _ = get_user_model().objects.get_or_create(username="bench")
    deployment = make_deployment(owner)
    try:
        first, last = fill_log(deployment, lines)
        at = cursors(first, last, lines)
        paths = Paths(deployment, owner)
        rows = measure(paths, deployment.pk, at)
        page_ms = median_ms(paths.detail_page)
        sql = {
            "partial": queries_of(lambda: paths.partial(at["middle"])),
            "api": queries_of(lambda: paths.api_page(at["middle"])),
        }
        plan = explain(deployment.pk, at["middle"])
        paths.token.delete()
    finally:
        with connection.cursor() as cursor:  # a million rows: not through Django's collector
            cursor.execute(f"DELETE FROM {TABLE} WHERE deployment_id = %s", [deployment.pk])
        deployment.app.delete()
    report(lines, rows, page_ms, sql, plan)


def report(lines: int, rows: list[dict], page_ms: float, sql: dict, plan: str) -> None:
    print(f"Machine: {os.cpu_count()} cores, {host.platform()}, Python {host.python_version()}")
    print(f"\nA {lines:,}-line build log, pages of {PAGE} lines, median of 5.\n")
    print(
        "| Cursor at | Dashboard partial (ms) | API (ms) | LogLine.page (ms)"
        " | Raw SQL (ms) | Partial / SQL |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = row["partial"] / row["sql"] if row["sql"] else float("inf")
        print(
            f"| {row['where']} | {row['partial']:.1f} | {row['api']:.1f} | {row['model']:.1f}"
            f" | {row['sql']:.1f} | {ratio:.1f}× |"
        )
    print(f"\nThe deployment page (its first 2,000 lines rendered with it): {page_ms:.1f} ms")
    for name, queries in sql.items():
        whole = "a whole-log COUNT or OFFSET" if scans_whole_log(queries) else "no COUNT, no OFFSET"
        print(f"{name}: {len(queries)} queries per request, {whole}")
    print(f"\nPlan of the raw query at the middle:\n```\n{plan}\n```")
    record_figures(lines, rows, page_ms)


def record_figures(lines: int, rows: list[dict], page_ms: float) -> None:
    size = f"{lines:,}-line deployment log"
    for row in rows:
        for path, name in (("partial", "dashboard partial"), ("api", "API")):
            record(
                f"{size}, {name}, page at the {row['where']}",
                round(row[path], 2),
                "ms",
                f"< {TARGET_MS} ms",
                row[path] < TARGET_MS,
                baseline=round(row["sql"], 2),
                baseline_name="raw SQL",
            )
    record(f"{size}, deployment page (first 2,000 lines)", round(page_ms, 2), "ms", "report", True)


if __name__ == "__main__":
    main()
