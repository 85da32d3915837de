"""A real Django app, built by detection from tests/samples/django_worker: its Procfile's
release runs `migrate` against a PostgreSQL add-on before the new version takes traffic,
its worker process writes to the same database, and its web page shows both."""

from apps.models import App
from deployments import services
from deployments.services import addons as addon_services
from tests.apps.addon_helpers import addon_leftovers, wait_addon  # noqa: F401 - a fixture
from tests.support import log_text, make_repo, sample_files, through_proxy, wait_final, wait_for


def test_release_migrates_and_the_worker_writes_to_the_addon(
    platform,
    owner,
    tmp_path,
    addon_leftovers,  # noqa: F811
):
    repo = make_repo(tmp_path / "repo", sample_files("django_worker"))
    app = App.objects.create(name="notes", owner=owner, repository=str(repo))
    wait_addon(addon_services.attach(app, "production", "postgres"))
    deployment = wait_final(services.queue_deployment(app, "production"), timeout=420)
    log = log_text(deployment)
    assert deployment.status == "succeeded", log
    assert "collectstatic" in log and "==> Release phase: python manage.py migrate" in log
    assert "Applying notes.0001_initial... OK" in log
    assert log.index("Applying notes.0001_initial") < log.index("==> Starting 1 web, 1 worker")
    host = app.environment("production").hostname

    def page():
        response = through_proxy(host)
        return response.json() if response.status_code == 200 else None

    first = wait_for(page, timeout=20, message="the page")
    assert first["release"] == ["made by the release"]
    wait_for(lambda: (page() or {}).get("worker", 0) >= 3, timeout=20, message="worker notes")
    # A second deployment's release finds nothing to migrate and keeps the data.
    again = wait_final(services.queue_deployment(app, "production"), timeout=300)
    assert again.status == "succeeded", log_text(again)
    assert "No migrations to apply." in log_text(again)
    assert page()["release"] == ["made by the release"] and page()["worker"] >= 3
