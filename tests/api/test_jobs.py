"""/api/v1/apps/<name>/jobs: scheduled jobs (list, create, toggle, delete, their runs).

Nothing queued here is sent: the test's transaction never commits (beat and the worker are
in tests/deployments/test_cron.py).
"""

import pytest

from deployments.models import Run, RunStatus, ScheduledJob

pytestmark = pytest.mark.django_db

JOB = {"environment": "production", "name": "nightly", "schedule": "0 3 * * *", "command": "id"}
SHAPE = {
    "id",
    "environment",
    "name",
    "schedule",
    "command",
    "enabled",
    "skipped",
    "last_scheduled_at",
    "last_run",
    "created_at",
}


@pytest.fixture
def shop(make_app):
    return make_app("shop")


def _create(api, **changes):
    return api.post("/apps/shop/jobs", {**JOB, **changes})


def test_a_job_is_created_and_listed(api, shop):
    response = _create(api)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == SHAPE
    assert body["enabled"] is True and body["last_run"] is None and body["skipped"] == 0
    assert (body["name"], body["schedule"], body["environment"]) == (
        "nightly",
        "0 3 * * *",
        "production",
    )
    listed = api.get("/apps/shop/jobs").json()["jobs"]
    assert [job["id"] for job in listed] == [body["id"]]


@pytest.mark.parametrize(
    "schedule, message",
    [
        ("61 * * * *", "not a valid cron expression"),
        ("* * * *", "5 cron fields"),
        ("* * * * * *", "5 cron fields"),
        ("@hourly", "5 cron fields"),
        ("", "5 cron fields"),
        ("a b c d e", "not a valid cron expression"),
    ],
)
def test_a_bad_schedule_is_400_naming_the_field(api, shop, schedule, message):
    response = _create(api, schedule=schedule)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["schedule"] and message in fields["schedule"][0]
    assert not ScheduledJob.objects.exists()


def test_every_bad_field_is_named_at_once(api, shop):
    response = _create(api, name="Bad Name!", schedule="nope", command="")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "schedule", "command"}
    assert not ScheduledJob.objects.exists()


def test_unknown_and_missing_fields_are_refused(api, shop):
    response = _create(api, timezone="Europe/Paris")
    assert response.json()["error"]["fields"] == {"timezone": ["Unknown field."]}
    response = api.post("/apps/shop/jobs", {"name": "x", "command": "id"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"schedule": ["This field is required."]}


def test_a_name_is_unique_per_environment(api, shop):
    assert _create(api).status_code == 201
    again = _create(api)
    assert again.status_code == 400 and "exists" in again.json()["error"]["fields"]["name"][0]
    assert _create(api, environment="staging").status_code == 201


def test_a_job_is_toggled(api, shop):
    job_id = _create(api).json()["id"]
    off = api.patch(f"/apps/shop/jobs/{job_id}", {"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert ScheduledJob.objects.get(pk=job_id).enabled is False
    on = api.patch(f"/apps/shop/jobs/{job_id}", {"enabled": True}).json()
    assert on["enabled"] is True and on["last_scheduled_at"] is not None  # from now on
    assert api.patch(f"/apps/shop/jobs/{job_id}", {"enabled": "maybe"}).status_code == 400
    assert api.patch(f"/apps/shop/jobs/{job_id}", {"schedule": "* * * * *"}).status_code == 400


def test_a_job_is_deleted_and_its_runs_stay(api, shop):
    job_id = _create(api).json()["id"]
    job = ScheduledJob.objects.get(pk=job_id)
    run = Run.objects.create(app=shop, environment=job.environment, command="id", scheduled_job=job)
    response = api.delete(f"/apps/shop/jobs/{job_id}")
    assert response.status_code == 200 and response.json() == {"id": job_id, "deleted": True}
    assert not ScheduledJob.objects.exists()
    run.refresh_from_db()
    assert run.scheduled_job is None
    assert api.get(f"/apps/shop/jobs/{job_id}").status_code == 404


def test_a_jobs_runs_are_listed_newest_first_with_skips(api, shop):
    job = ScheduledJob.objects.get(pk=_create(api).json()["id"])
    env = job.environment
    first = Run.objects.create(app=shop, environment=env, command="id", scheduled_job=job)
    skipped = Run.objects.create(
        app=shop,
        environment=env,
        command="id",
        scheduled_job=job,
        status=RunStatus.CANCELLED,
        error_code="skipped",
        message=f"Skipped: run {first.pk} of this job was still pending.",
    )
    Run.objects.create(app=shop, environment=env, command="other")  # not the job's
    runs = api.get(f"/apps/shop/jobs/{job.pk}/runs").json()["runs"]
    assert [r["id"] for r in runs] == [skipped.pk, first.pk]
    assert runs[0]["status"] == "cancelled" and runs[0]["error"]["code"] == "skipped"
    assert runs[0]["scheduled_job"] == job.pk
    assert api.get(f"/apps/shop/jobs/{job.pk}").json()["last_run"]["id"] == skipped.pk


def test_another_users_jobs_are_404(api, outsider_api, shop, make_app, outsider):
    job_id = _create(api).json()["id"]
    base = f"/apps/shop/jobs/{job_id}"
    assert outsider_api.get("/apps/shop/jobs").status_code == 404
    assert outsider_api.post("/apps/shop/jobs", JOB).status_code == 404
    assert outsider_api.get(base + "/runs").status_code == 404
    assert outsider_api.patch(base, {"enabled": False}).status_code == 404
    assert outsider_api.delete(base).status_code == 404
    assert ScheduledJob.objects.get(pk=job_id).enabled is True
    theirs = make_app("theirs", user=outsider)
    other = ScheduledJob.objects.create(
        environment=theirs.environment("production"), name="x", schedule="* * * * *", command="id"
    )
    # Another app's job id under one's own app's name: 404 as well.
    assert api.get(f"/apps/shop/jobs/{other.pk}").status_code == 404
    assert api.delete(f"/apps/shop/jobs/{other.pk}").status_code == 404
