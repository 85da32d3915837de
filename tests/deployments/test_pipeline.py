"""A git repository becomes a live, routed, health-checked app — through the real worker,
dockerd and Caddy."""

import pytest
from django.conf import settings

from apps.models import App, Environment
from deployments import services
from deployments.models import Deployment
from tests.support import (
    commit,
    containers,
    log_text,
    make_repo,
    sample_files,
    through_proxy,
    wait_final,
)


def _create(owner, name, repo, **fields):
    return App.objects.create(name=name, owner=owner, repository=str(repo), **fields)


def _deploy(app, environment="production"):
    return wait_final(services.queue_deployment(app, environment))


def _live_containers(app):
    return containers(
        all=False, label=[f"slipway.app={app.name}", f"slipway.instance={settings.PAAS_INSTANCE}"]
    )


@pytest.mark.parametrize(
    "sample, expected",
    [
        ("node", "node says hello"),
        ("static", "static says hello"),
        ("dockerfile", "dockerfile says hello"),
    ],
)
def test_it_deploys_each_kind_of_app(platform, owner, tmp_path, sample, expected):
    files = sample_files(sample, python_image=settings.PAAS_BASE_IMAGES["python"])
    repo = make_repo(tmp_path / sample, files)
    app = _create(owner, f"kind-{sample}", repo, port=7000 if sample == "dockerfile" else None)
    deployment = _deploy(app)
    assert deployment.status == "succeeded", log_text(deployment)
    response = through_proxy(app.environment("production").hostname)
    assert response.status_code == 200 and expected in response.text


def test_a_python_app_deploys_then_a_code_change_reuses_the_dependency_layer(
    platform, owner, tmp_path
):
    repo = make_repo(tmp_path / "py", sample_files("python"))
    app = _create(owner, "pyapp", repo)
    first = _deploy(app)
    assert first.status == "succeeded", log_text(first)
    assert first.build_method == "python" and len(first.commit_sha) == 40
    assert through_proxy(app.environment("production").hostname).text == "python says hello v1"

    commit(repo, {"app.py": (repo / "app.py").read_text().replace("v1", "v2")}, "code only")
    second = _deploy(app)
    assert second.status == "succeeded", log_text(second)
    log = log_text(second)
    install_step = log.split("pip install", 1)[1].split("Step", 1)[0]
    assert "Using cache" in install_step, log
    assert through_proxy(app.environment("production").hostname).text == "python says hello v2"
    app.refresh_from_db()
    assert app.status == "running"
    assert app.environment("production").live_deployment_id == second.pk


def test_env_vars_reach_the_app_and_staging_has_its_own_host(platform, owner, tmp_path):
    repo = make_repo(tmp_path / "py", sample_files("python"))
    app = _create(owner, "envapp", repo)
    Environment.create_for(app, "staging")
    services.set_env_vars(app.environment("staging"), {"GREETING": "<staging> hi"})
    deployment = _deploy(app, "staging")
    assert deployment.status == "succeeded", log_text(deployment)
    staging = app.environment("staging")
    assert staging.hostname.startswith("envapp-staging.")
    assert through_proxy(staging.hostname).text == "python says <staging> hi v1"
    assert "<staging> hi" not in log_text(deployment)


def test_a_crashing_app_fails_and_the_previous_deployment_keeps_serving(platform, owner, tmp_path):
    repo = make_repo(tmp_path / "py", sample_files("python"))
    app = _create(owner, "crashy", repo)
    good = _deploy(app)
    assert good.status == "succeeded", log_text(good)

    commit(repo, {"app.py": "import sys\nprint('fatal: cannot start')\nsys.exit(3)\n"}, "break it")
    bad = _deploy(app)
    assert bad.status == "failed"
    assert bad.error_code == "app_crashed"
    assert "fatal: cannot start" in bad.error_message
    assert through_proxy(app.environment("production").hostname).text == "python says hello v1"
    assert [c.name for c in _live_containers(app)] == [
        f"{settings.PAAS_INSTANCE}-crashy-production-1"
    ]


def _listening_elsewhere(owner, tmp_path, name: str, command: str):
    files = sample_files("dockerfile", python_image=settings.PAAS_BASE_IMAGES["python"])
    repo = make_repo(tmp_path / "df", files)
    app = _create(owner, name, repo, port=7001)
    dockerfile = files["Dockerfile"].replace('CMD ["python3", "server.py"]', command)
    commit(repo, {"Dockerfile": dockerfile}, "listen elsewhere")
    return app


def test_an_app_on_one_other_port_is_routed_there_and_told(platform, owner, tmp_path):
    command = 'CMD ["sh", "-c", "PORT=7002 exec python3 server.py"]'
    app = _listening_elsewhere(owner, tmp_path, "otherport", command)
    deployment = _deploy(app)
    assert deployment.status == "succeeded", log_text(deployment)
    assert "listens on port 7002, not on $PORT (7001): routing to 7002" in log_text(deployment)
    assert deployment.web_port == 7002 and deployment.recorded_upstreams[0].endswith(":7002")
    response = through_proxy(app.environment("production").hostname)
    assert response.text == "dockerfile says hello"


def test_an_app_on_loopback_fails_its_health_check_with_the_hint(platform, owner, tmp_path):
    # scripts/test gives the worker a short PAAS_HEALTH_TIMEOUT so this takes seconds.
    serve = "exec python3 -m http.server --bind 127.0.0.1 7001"
    app = _listening_elsewhere(owner, tmp_path, "loopback", f'CMD ["sh", "-c", "{serve}"]')
    bad = _deploy(app)
    assert bad.status == "failed"
    assert bad.error_code == "health_check_timeout", bad.error_message
    assert "listens on 127.0.0.1:7001 only: bind 0.0.0.0" in bad.error_message
    assert not _live_containers(app)


def test_a_failing_build_is_a_user_error_with_the_output(platform, owner, tmp_path):
    base = settings.PAAS_BASE_IMAGES["python"]
    dockerfile = f"FROM {base}\nRUN echo broken-step && exit 3\n"
    repo = make_repo(tmp_path / "df", {"Dockerfile": dockerfile})
    app = _create(owner, "badbuild", repo)
    bad = _deploy(app)
    assert bad.status == "failed" and bad.error_code == "build_failed"
    assert bad.attempt == 0  # user errors are not retried
    assert "broken-step" in log_text(bad)
    app.refresh_from_db()
    assert app.status == "failed"


def test_the_api_deploys_and_pages_the_log_by_cursor(platform, owner, tmp_path, api):
    repo = make_repo(tmp_path / "st", sample_files("static"))
    created = api.post("/apps", {"name": "apiapp", "repository": str(repo)})
    assert created.status_code == 201, created.content
    queued = api.post("/apps/apiapp/deployments", {"environment": "production"})
    assert queued.status_code == 202 and queued.json()["number"] == 1
    deployment = wait_final(Deployment.objects.get(app__name="apiapp", number=1))
    body = api.get("/apps/apiapp/deployments/1").json()
    assert (
        body["status"] == "succeeded" and body["image"] and body["commit"] == deployment.commit_sha
    )

    first = api.get("/apps/apiapp/deployments/1/logs?limit=3").json()
    assert len(first["lines"]) == 3
    rest = api.get(f"/apps/apiapp/deployments/1/logs?after={first['next']}").json()
    cursors = [line["cursor"] for line in first["lines"] + rest["lines"]]
    assert cursors == sorted(set(cursors))
    assert api.get(f"/apps/apiapp/deployments/1/logs?after={rest['next']}").json()["lines"] == []
    assert api.get("/apps/apiapp").json()["status"] == "running"
