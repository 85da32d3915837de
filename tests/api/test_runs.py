"""/api/v1/apps/<name>/runs: start, list, show, logs and cancel a one-off run.

Nothing queued here is sent: the test's transaction never commits (the worker's side is in
tests/deployments/test_runs.py).
"""

import pytest

from deployments.models import Run, RunLogLine, RunStatus
from deployments.models.runs import RUN_TRANSITIONS
from paas.transitions import InvalidTransition
from tests.support import make_live_deployment

pytestmark = pytest.mark.django_db

SHAPE = {
    "id",
    "environment",
    "command",
    "status",
    "exit_code",
    "error",
    "scheduled_job",
    "created_at",
    "started_at",
    "finished_at",
}


@pytest.fixture
def shop(make_app, local_image_id):
    app = make_app("shop")
    make_live_deployment(app, local_image_id)
    return app


def _run(app, status=RunStatus.PENDING, command="echo hi"):
    run = Run.objects.create(app=app, environment=app.environment("production"), command=command)
    Run.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    return run


def test_starting_a_run_answers_202_with_its_id(api, shop, owner):
    response = api.post("/apps/shop/runs", {"environment": "production", "command": "ls -la"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body == {"id": body["id"], "status": "pending"}
    run = Run.objects.get(pk=body["id"])
    assert (run.command, run.environment.name, run.requested_by) == ("ls -la", "production", owner)


def test_the_environment_defaults_to_production(api, shop):
    response = api.post("/apps/shop/runs", {"command": "true"})
    assert response.status_code == 202
    assert Run.objects.get().environment.name == "production"


def test_without_a_live_deployment_it_is_409_and_nothing_is_made(api, shop):
    response = api.post("/apps/shop/runs", {"environment": "staging", "command": "true"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_deployed" and "deploy the app first" in error["message"]
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "command, message",
    [
        ("", "Enter a command"),
        ("   ", "Enter a command"),
        ("echo \x00", "NUL"),
        ("x" * 2001, "At most 2000"),
    ],
)
def test_a_bad_command_is_refused_by_field(api, shop, command, message):
    response = api.post("/apps/shop/runs", {"command": command})
    assert response.status_code == 400
    assert message in response.json()["error"]["fields"]["command"][0]
    assert not Run.objects.exists()


def test_unknown_fields_and_environments_are_refused(api, shop):
    response = api.post("/apps/shop/runs", {"command": "true", "image": "other"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"image": ["Unknown field."]}
    response = api.post("/apps/shop/runs", {"command": "true", "environment": "qa"})
    assert response.status_code == 400 and not Run.objects.exists()


def test_a_run_shows_as_the_issue_says(api, shop):
    run = _run(shop, RunStatus.FAILED)
    Run.objects.filter(pk=run.pk).update(exit_code=3, error_code="exit_code", message="code 3")
    body = api.get(f"/apps/shop/runs/{run.pk}").json()
    assert set(body) == SHAPE
    assert body["status"] == "failed" and body["exit_code"] == 3
    assert body["error"] == {"code": "exit_code", "message": "code 3"}
    assert body["command"] == "echo hi" and body["environment"] == "production"


def test_runs_are_listed_newest_first(api, shop):
    first, second = _run(shop), _run(shop)
    ids = [r["id"] for r in api.get("/apps/shop/runs").json()["runs"]]
    assert ids == [second.pk, first.pk]


def test_the_log_pages_by_cursor(api, shop):
    run = _run(shop, RunStatus.RUNNING)
    lines = [run.log(f"line {i}") for i in range(5)]
    page = api.get(f"/apps/shop/runs/{run.pk}/logs?limit=3").json()
    assert [line["text"] for line in page["lines"]] == ["line 0", "line 1", "line 2"]
    assert page["next"] == lines[2].id and page["final"] is False
    rest = api.get(f"/apps/shop/runs/{run.pk}/logs?after={page['next']}").json()
    assert [line["text"] for line in rest["lines"]] == ["line 3", "line 4"]
    empty = api.get(f"/apps/shop/runs/{run.pk}/logs?after={rest['next']}").json()
    assert empty == {"lines": [], "next": rest["next"], "final": False}
    assert api.get(f"/apps/shop/runs/{run.pk}/logs?after=x").status_code == 400
    assert RunLogLine.page(run, after=lines[3].id) == [lines[4]]


def test_cancelling_a_pending_run_cancels_it_at_once(api, shop):
    run = _run(shop)
    response = api.post(f"/apps/shop/runs/{run.pk}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None


def test_cancelling_a_running_run_asks_its_worker(api, shop):
    run = _run(shop, RunStatus.RUNNING)
    response = api.post(f"/apps/shop/runs/{run.pk}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "running"
    run.refresh_from_db()
    assert run.cancel_requested and run.status == "running"


def test_a_finished_run_cannot_be_cancelled(api, shop):
    run = _run(shop, RunStatus.SUCCEEDED)
    response = api.post(f"/apps/shop/runs/{run.pk}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_cancellable"


def test_another_users_app_and_runs_are_404(outsider_api, api, shop, make_app, outsider):
    run = _run(shop)
    for path in ["/apps/shop/runs", f"/apps/shop/runs/{run.pk}", f"/apps/shop/runs/{run.pk}/logs"]:
        assert outsider_api.get(path).status_code == 404
    assert outsider_api.post("/apps/shop/runs", {"command": "id"}).status_code == 404
    assert outsider_api.post(f"/apps/shop/runs/{run.pk}/cancel").status_code == 404
    theirs = make_app("theirs", user=outsider)
    # A run id of another app, under one's own app's name: 404 too.
    other = _run(theirs)
    assert api.get(f"/apps/shop/runs/{other.pk}").status_code == 404
    assert Run.objects.filter(status="pending").count() == 2


ALLOWED = [(src, dst) for src, targets in RUN_TRANSITIONS.items() for dst in targets]
# Nothing moves a run back to pending: there is no method for it to refuse.
REFUSED = [
    (src, dst)
    for src in RunStatus.values
    for dst in RunStatus.values
    if (src, dst) not in ALLOWED and dst != RunStatus.PENDING
]


def _claim(run):
    # claim() answers False rather than raising: a duplicate task returns quietly.
    if not run.claim(None, "c"):
        raise InvalidTransition("run", run.status, RunStatus.RUNNING)


def _move(run, target):
    moves = {
        RunStatus.RUNNING: lambda: _claim(run),
        RunStatus.SUCCEEDED: lambda: run.mark_succeeded(0),
        RunStatus.FAILED: lambda: run.mark_failed("exit_code", "boom", 1),
        RunStatus.CANCELLED: run.mark_cancelled,
    }
    moves[target]()


@pytest.mark.parametrize("src, dst", ALLOWED)
def test_the_run_status_machine_allows(shop, src, dst):
    run = _run(shop, src)
    _move(run, dst)
    run.refresh_from_db()
    assert run.status == dst and (run.finished_at is not None) == run.is_final


@pytest.mark.parametrize("src, dst", REFUSED)
def test_the_run_status_machine_refuses(shop, src, dst):
    run = _run(shop, src)
    with pytest.raises(InvalidTransition):
        _move(run, dst)
    run.refresh_from_db()
    assert run.status == src


def test_a_stale_run_object_cannot_overwrite_a_newer_status(shop):
    run = _run(shop, RunStatus.RUNNING)
    stale = Run.objects.get(pk=run.pk)
    run.mark_cancelled()
    with pytest.raises(InvalidTransition):
        stale.mark_succeeded(0)
    assert Run.objects.get(pk=run.pk).status == "cancelled"
