"""Runtime logs from Slipway's own store: collected from every container by the real
collector process, kept after a deployment is retired, filtered by process, paged by a
nanosecond cursor at any depth, and stored once across a collector restart."""

import time

import docker
import pytest
from django.conf import settings

from apps.models import App
from deployments import services, wiring
from deployments.adapters.runtime import ContainerSpec
from deployments.models import RuntimeLogLine, RuntimeLogUsage, ScheduledJob
from deployments.services import log_store as store
from deployments.services.runs import start_run, start_scheduled
from deployments.workers import log_pruning
from deployments.workers.networks import ensure_app_network
from tests.support import containers, log_text, make_repo, sample_files, wait_final, wait_for

MILLION = 1_000_000


def _deploy(app: App):
    deployment = wait_final(services.queue_deployment(app, "production"))
    assert deployment.status == "succeeded", log_text(deployment)
    return deployment


def _procfile_app(owner, tmp_path, name: str) -> App:
    image = settings.PAAS_BASE_IMAGES["python"]
    files = {
        **sample_files("whoami", python_image=image),
        **sample_files("procfile", python_image=image),
    }
    return App.objects.create(name=name, owner=owner, repository=str(make_repo(tmp_path, files)))


def _texts(api, name: str, query: str) -> list[str]:
    answer = api.get(f"/apps/{name}/logs?{query}")
    assert answer.status_code == 200, answer.content
    return [line["text"] for line in answer.json()["lines"]]


def _stored(app: App, text: str, **filters) -> bool:
    return RuntimeLogLine.objects.filter(app=app, text__contains=text, **filters).exists()


def test_every_process_is_collected_and_a_retired_deployments_log_stays(
    platform, owner, api, tmp_path
):
    app = _procfile_app(owner, tmp_path, "chatty")
    _deploy(app)
    wait_for(lambda: _stored(app, "worker started", process="worker"), timeout=30)
    worker_lines = _texts(api, "chatty", "process=worker")
    assert "worker booting" in worker_lines and "worker started" in worker_lines
    assert not any("release ran" in text for text in worker_lines)
    release = _texts(api, "chatty", "process=release")
    assert any(text.startswith("release ran with") for text in release)

    _deploy(app)  # #1 is retired: its worker is stopped and its containers removed
    wait_for(lambda: _stored(app, "worker done", deployment=1), timeout=30)
    retired = _texts(api, "chatty", "deployment=1&process=worker")
    assert retired[-2:] == ["worker got SIGTERM; finishing the job", "worker done"]
    assert _texts(api, "chatty", "deployment=2&process=worker")[-1] == "worker started"
    retired = ["slipway.app=chatty", "slipway.deployment=1"]
    wait_for(lambda: not containers(label=retired), timeout=60)
    assert _texts(api, "chatty", "deployment=1&process=worker")[-1] == "worker done"

    run = start_run(app, "production", "echo one-off says hi")
    wait_for(lambda: _stored(app, "one-off says hi", process="run"), timeout=60)
    assert _texts(api, "chatty", "process=run") == ["one-off says hi"]
    job = ScheduledJob.objects.create(
        environment=app.environment("production"),
        name="nightly",
        schedule="0 3 * * *",
        command="echo cron says hi",
    )
    start_scheduled(job)
    wait_for(lambda: _stored(app, "cron says hi", process="cron"), timeout=60)
    assert _texts(api, "chatty", "process=cron") == ["cron says hi"]
    assert "cron says hi" not in _texts(api, "chatty", "process=run")
    run.refresh_from_db()
    assert RuntimeLogUsage.objects.get(app=app).bytes > 0


def test_bad_filters_are_refused(platform, owner, api, tmp_path):
    App.objects.create(name="filtered", owner=owner, repository="https://example.com/x.git")
    assert api.get("/apps/filtered/logs?stream=both").status_code == 400
    assert api.get("/apps/filtered/logs?search=" + "x" * 201).status_code == 400
    assert api.get("/apps/filtered/logs?replica=-1").status_code == 400
    assert api.get("/apps/filtered/logs?process=web").json() == {"lines": [], "next": 0}


def _printer(app: App, name: str, program: str) -> str:
    """A container as Slipway starts them (capped json-file log, labels) running program."""
    runtime = wiring.runtime()
    ensure_app_network(app, runtime)
    spec = ContainerSpec(
        name=f"{settings.PAAS_INSTANCE}-{name}",
        image=settings.PAAS_BASE_IMAGES["python"],
        env={},
        port=5000,
        labels={
            **app.resource_labels,
            "slipway.environment": "production",
            "slipway.deployment": "1",
            "slipway.process": "web",
            "slipway.replica": "1",
        },
        network=app.network,
        memory="256m",
        cpus=1.0,
        command=["python3", "-c", program],
        restart=False,
    )
    return runtime.start(spec)


def _count(app: App) -> int:
    return RuntimeLogLine.objects.filter(app=app).count()


def test_a_million_lines_are_stored_once_and_paged_at_start_middle_and_end(platform, owner):
    app = App.objects.create(name="million", owner=owner, repository="https://example.com/m.git")
    env = app.environment("production")
    # About 25,000 lines a second, in bursts: a chatty app (the collector keeps up with
    # about 40,000 here; Docker's capped log file holds the difference for a while).
    program = (
        "import sys, time\n"
        f"for i in range({MILLION}):\n"
        "    sys.stdout.write(f'line {i}\\n')\n"
        "    if i % 5000 == 4999: sys.stdout.flush(); time.sleep(0.2)\n"
    )
    _printer(app, "million", program)
    wait_for(lambda: _count(app) >= MILLION, timeout=240, every=1, message="a million lines")
    assert _count(app) == MILLION  # each once

    first = store.page(env, since_ns=1, limit=100)
    assert [line.text for line in first[:2]] == ["line 0", "line 1"]
    middle_cursor = RuntimeLogLine.objects.get(app=app, text="line 499999").ns
    middle = store.page(env, since_ns=middle_cursor, limit=100)
    assert middle[0].text == "line 500000" and middle[99].text == "line 500099"
    newest = store.page(env, limit=100)
    assert newest[-1].text == f"line {MILLION - 1}" and newest[0].text == f"line {MILLION - 100}"
    older = store.page_before(env, newest[0].ns, 100)
    assert older[-1].text == f"line {MILLION - 101}"


def test_a_collector_killed_mid_stream_resumes_without_losing_or_repeating_a_line(platform, owner):
    app = App.objects.create(name="resumed", owner=owner, repository="https://example.com/r.git")
    lines = 3000
    program = (
        "import time\n"
        f"for i in range({lines}):\n"
        "    print(f'tick {i}', flush=True)\n"
        "    time.sleep(0.002)\n"
    )
    _printer(app, "resumed", program)
    wait_for(lambda: _count(app) > 200, timeout=30, message="the first lines")
    platform.collector.kill()
    platform.collector.start()
    wait_for(lambda: _stored(app, f"tick {lines - 1}"), timeout=60, message="the last line")
    texts = list(RuntimeLogLine.objects.filter(app=app).values_list("text", flat=True))
    assert sorted(texts, key=lambda t: int(t.split()[1])) == [f"tick {i}" for i in range(lines)]


@pytest.fixture(autouse=True)
def _no_printers_left(platform):
    yield
    client = docker.from_env()
    for name in ("million", "resumed"):
        for container in client.containers.list(all=True, filters={"name": name}):
            container.remove(force=True)


def _lines(app: App, count: int, ns_from: int, size: int = 10) -> None:
    env = app.environment("production")
    RuntimeLogLine.objects.bulk_create(
        RuntimeLogLine(
            app=app, environment=env, process="web", container="c", ns=ns_from + n, text="x" * size
        )
        for n in range(count)
    )
    RuntimeLogUsage.add(app.pk, count * size)


def test_lines_older_than_the_retention_go_and_the_counter_follows(platform, owner, settings):
    settings.PAAS_RUNTIME_LOG_RETENTION_DAYS = 7
    app = App.objects.create(name="aging", owner=owner, repository="https://example.com/a.git")
    now = time.time_ns()
    _lines(app, 25_000, now - 8 * log_pruning.DAY_NS)  # more than two batches
    _lines(app, 10, now - log_pruning.DAY_NS)
    assert log_pruning.prune_old(now) == 25_000
    assert _count(app) == 10
    assert RuntimeLogUsage.objects.get(app=app).bytes == 100
    settings.PAAS_RUNTIME_LOG_RETENTION_DAYS = 0  # keep forever
    assert log_pruning.prune_old(now + 30 * log_pruning.DAY_NS) == 0


def test_an_app_over_its_size_cap_loses_its_oldest_lines_only(platform, owner, settings):
    settings.PAAS_RUNTIME_LOG_MAX_BYTES_PER_APP = 50_000
    big = App.objects.create(name="big", owner=owner, repository="https://example.com/b.git")
    small = App.objects.create(name="small", owner=owner, repository="https://example.com/s.git")
    _lines(big, 15_000, 1_000_000, size=10)  # 150,000 bytes
    _lines(small, 100, 1_000_000, size=10)
    assert log_pruning.prune_oversized() == 10_000
    assert RuntimeLogUsage.objects.get(app=big).bytes == 50_000
    oldest = RuntimeLogLine.objects.filter(app=big).order_by("id").first()
    assert oldest.ns == 1_000_000 + 10_000  # the newest 5,000 stay
    assert _count(small) == 100
