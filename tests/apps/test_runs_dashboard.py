"""The app page's "Run a command" card: the box, the live output of the latest run (polled
until it ends), the kill button, the history, and scheduled jobs (add, toggle, delete).

Nothing queued here is sent: the test's transaction never commits."""

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import Run, RunStatus, ScheduledJob
from tests.support import make_live_deployment

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def web(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def shop(make_app, local_image_id):
    app = make_app("shop")
    make_live_deployment(app, local_image_id)
    return app


def _url(name, **kwargs):
    return reverse(name, kwargs={"name": "shop", **kwargs})


def _run(app, status=RunStatus.RUNNING):
    run = Run.objects.create(app=app, environment=app.environment("production"), command="ls /")
    Run.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    return run


def test_the_app_page_has_the_card_and_it_loads(web, shop):
    page = web.get(reverse("app-detail", kwargs={"name": "shop"})).content.decode()
    assert "Run a command" in page and _url("app-runs") in page
    card = web.get(_url("app-runs"), headers=HX).content.decode()
    assert 'name="command"' in card and "No scheduled jobs." in card


def test_running_a_command_queues_it_and_shows_it(web, shop, owner):
    response = web.post(
        _url("run-start"), {"environment": "production", "command": "ls /"}, headers=HX
    )
    assert response.status_code == 200
    run = Run.objects.get()
    assert (run.command, run.requested_by, run.status) == ("ls /", owner, "pending")
    body = response.content.decode()
    assert f"Run {run.pk} is queued." in body
    assert _url("run-output", run_id=run.pk) in body  # the output poller
    assert f"Kill run {run.pk}" in body


def test_a_refused_command_says_why_and_makes_nothing(web, shop):
    empty = web.post(_url("run-start"), {"command": " "}, headers=HX)
    assert empty.status_code == 400 and "Enter a command" in empty.content.decode()
    staging = web.post(_url("run-start"), {"environment": "staging", "command": "id"}, headers=HX)
    assert staging.status_code == 409 and "deploy the app first" in staging.content.decode()
    assert not Run.objects.exists()


def test_a_plain_form_post_redirects_to_the_app_page(web, shop):
    response = web.post(_url("run-start"), {"command": "id"})
    assert response.status_code == 302 and response["Location"] == "/apps/shop/"


def test_the_output_is_polled_after_a_cursor_until_the_run_ends(web, shop):
    run = _run(shop)
    first = run.log("hello <b>")
    response = web.get(_url("run-output", run_id=run.pk) + "?after=0", headers=HX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "hello &lt;b&gt;" in body and f'data-cursor="{first.id}"' in body
    assert "every 1s" in body and 'hx-swap-oob="true"' in body
    run.log("bye")
    run.mark_succeeded(0)
    done = web.get(_url("run-output", run_id=run.pk) + f"?after={first.id}", headers=HX)
    text = done.content.decode()
    assert done.status_code == 286 and "bye" in text and "hello" not in text
    assert "every 1s" not in text and "exit code 0" in text and "Kill" not in text
    bad = web.get(_url("run-output", run_id=run.pk) + "?after=x", headers=HX)
    assert bad.status_code == 400


def test_the_kill_button_asks_the_worker(web, shop):
    run = _run(shop)
    response = web.post(_url("run-cancel", run_id=run.pk), headers=HX)
    assert response.status_code == 200 and "Killing" in response.content.decode()
    assert Run.objects.get(pk=run.pk).cancel_requested
    over = _run(shop, RunStatus.FAILED)
    refused = web.post(_url("run-cancel", run_id=over.pk), headers=HX)
    assert refused.status_code == 409 and "cannot be cancelled" in refused.content.decode()


def test_the_history_lists_runs_newest_first(web, shop):
    older, newer = _run(shop, RunStatus.SUCCEEDED), _run(shop, RunStatus.FAILED)
    card = web.get(_url("app-runs"), headers=HX).content.decode()
    assert card.index(f'id="run-row-{newer.pk}"') < card.index(f'id="run-row-{older.pk}"')


def test_a_job_is_added_toggled_and_deleted(web, shop):
    data = {
        "environment": "production",
        "name": "nightly",
        "schedule": "0 3 * * *",
        "command": "id",
    }
    added = web.post(_url("job-add"), data, headers=HX)
    assert added.status_code == 200 and "Scheduled “nightly”" in added.content.decode()
    job = ScheduledJob.objects.get()
    assert (job.name, job.schedule, job.enabled) == ("nightly", "0 3 * * *", True)
    web.post(_url("job-toggle", job_id=job.pk), headers=HX)
    assert ScheduledJob.objects.get().enabled is False
    turned_on = web.post(_url("job-toggle", job_id=job.pk), headers=HX).content.decode()
    assert "“nightly” is on." in turned_on and ScheduledJob.objects.get().enabled is True
    web.post(_url("job-delete", job_id=job.pk), headers=HX)
    assert not ScheduledJob.objects.exists()


def test_a_bad_schedule_is_refused_with_the_field_named(web, shop):
    data = {"name": "nightly", "schedule": "61 * * * *", "command": "id"}
    response = web.post(_url("job-add"), data, headers=HX)
    body = response.content.decode()
    assert response.status_code == 400 and 'data-field="schedule"' in body
    assert "not a valid cron expression" in body and not ScheduledJob.objects.exists()


def test_a_jobs_last_run_and_skips_show(web, shop):
    job = ScheduledJob.objects.create(
        environment=shop.environment("production"), name="tick", schedule="* * * * *", command="id"
    )
    Run.objects.create(
        app=shop,
        environment=job.environment,
        command="id",
        scheduled_job=job,
        status=RunStatus.CANCELLED,
        error_code="skipped",
        message="Skipped: run 1 of this job was still running.",
    )
    job.record_skip()
    card = web.get(_url("app-runs"), headers=HX).content.decode()
    assert "skipped" in card and "(1 skipped)" in card
