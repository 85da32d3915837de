"""A deployment's and a run's log keep their head and their tail (PAAS_LOG_MAX_LINES), with
one line saying how many in between were dropped; short logs are untouched."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import LogLine, Run, RunLogLine

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(make_app):
    app = make_app("loud")
    return app.new_deployment(app.environment("production"))


@pytest.fixture
def run(make_app):
    app = make_app("chatty")
    return Run.objects.create(app=app, environment=app.environment("production"), command="yes")


def _texts(lines) -> list[str]:
    return [line.text for line in lines]


def test_a_short_log_is_kept_whole_and_shows_no_marker(settings, deployment):
    settings.PAAS_LOG_MAX_LINES = 10
    for n in range(8):
        deployment.log(f"line {n}")
    deployment.refresh_from_db()
    assert _texts(LogLine.page(deployment, limit=100)) == [f"line {n}" for n in range(8)]
    assert deployment.log_lines_written == 8


def test_a_long_deployment_log_keeps_head_and_tail_and_says_what_was_dropped(settings, deployment):
    settings.PAAS_LOG_MAX_LINES = 10  # head 5, tail 5
    for n in range(1000):
        deployment.log(f"line {n}")
    deployment.refresh_from_db()
    texts = _texts(LogLine.page(deployment, limit=10_000))
    assert texts[:5] == [f"line {n}" for n in range(5)]
    assert texts[-5:] == [f"line {n}" for n in range(995, 1000)]
    assert "990 lines dropped" in texts[5]
    assert len(texts) == 11  # at a pruning boundary: head, the marker, tail
    assert LogLine.objects.filter(deployment=deployment).count() == 11


def test_between_prunes_the_log_holds_at_most_a_batch_more(settings, deployment):
    settings.PAAS_LOG_MAX_LINES = 200  # head 100, tail 100, pruned every 10 lines
    for n in range(1005):
        deployment.log(f"line {n}")
    stored = LogLine.objects.filter(deployment=deployment).count()
    assert 201 <= stored <= 201 + 10
    deployment.refresh_from_db()
    assert _texts(LogLine.page(deployment, limit=10_000))[-1] == "line 1004"


def test_a_long_run_log_is_capped_the_same_way(settings, run):
    settings.PAAS_LOG_MAX_LINES = 6
    for n in range(50):
        run.log(f"out {n}")
    run.refresh_from_db()
    texts = _texts(RunLogLine.page(run, limit=1000))
    assert texts[:3] == ["out 0", "out 1", "out 2"]
    assert texts[-3:] == ["out 47", "out 48", "out 49"]
    assert "44 lines dropped" in texts[3]


def test_a_line_costs_a_counter_update_and_an_insert_not_a_count(settings, deployment):
    settings.PAAS_LOG_MAX_LINES = 10_000
    deployment.log("warm up")
    with CaptureQueriesContext(connection) as queries:
        deployment.log("one more")
    sql = [q["sql"].upper() for q in queries.captured_queries]
    assert len(sql) == 2 and not any("COUNT(" in q for q in sql), sql


def test_cursors_still_page_forward_across_a_prune(settings, deployment):
    settings.PAAS_LOG_MAX_LINES = 10
    for n in range(3):
        deployment.log(f"line {n}")
    cursor = LogLine.page(deployment)[-1].id
    for n in range(3, 100):
        deployment.log(f"line {n}")
    deployment.refresh_from_db()
    after = _texts(LogLine.page(deployment, after=cursor, limit=100))
    assert after[:2] == ["line 3", "line 4"] and after[-1] == "line 99"
