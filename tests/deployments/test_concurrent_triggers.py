"""Many pushes for one app environment at the same moment, through the real webhook endpoint
and the real PostgreSQL: numbers stay gap-free and only the newest stays pending."""

import json
import threading
import uuid

import pytest
from django.db import connection, connections
from django.test import Client

from deployments.models import ACTIVE_STATUSES, Deployment
from paas.celery import app as celery_app
from tests.deployments.test_webhooks import push_payload, signed_headers
from tests.support import wait_for

PUSHES = 8


@pytest.fixture
def no_worker_consuming():
    """The session's Celery worker, if an earlier test started it, stops taking tasks for
    the test: it would run (and fail) the pending deployment this test expects to find
    still pending. What this test queued is dropped before it takes tasks again."""
    celery_app.control.cancel_consumer("celery", reply=True, timeout=2)
    yield
    celery_app.control.purge()
    celery_app.control.add_consumer("celery", reply=True, timeout=2)


def _push_concurrently(app, count: int) -> tuple[list[int], list[BaseException]]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def worker(index: int):
        try:
            body = json.dumps(push_payload("github", sha=f"{index:040x}")).encode()
            headers = signed_headers("github", app.webhook_secret, body, delivery=str(uuid.uuid4()))
            client = Client()
            barrier.wait()
            response = client.post(
                f"/hooks/github/{app.name}",
                data=body,
                content_type="application/json",
                headers=headers,
            )
            statuses.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i + 1,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, errors


@pytest.mark.django_db(transaction=True)
def test_parallel_pushes_get_gap_free_numbers_and_only_the_newest_stays_pending(
    make_app, no_worker_consuming
):
    assert connection.vendor == "postgresql"
    app = make_app("busy")
    statuses, errors = _push_concurrently(app, PUSHES)
    assert errors == []
    assert statuses == [202] * PUSHES

    rows = list(
        Deployment.objects.filter(app=app).order_by("number").values_list("number", "status")
    )
    assert [number for number, _ in rows] == list(range(1, PUSHES + 1))
    assert [number for number, status in rows if status == "pending"] == [PUSHES]
    assert all(status == "superseded" for _, status in rows[:-1])
    # Every push is there, each once: the numbers were handed out in arrival order.
    shas = set(Deployment.objects.filter(app=app).values_list("commit_sha", flat=True))
    assert shas == {f"{i:040x}" for i in range(1, PUSHES + 1)}


@pytest.mark.django_db(transaction=True)
def test_pushes_racing_a_worker_that_claims_them_all_succeed(worker, make_app):
    """The real worker claims deployments while the pushes supersede them: no push fails
    (a claim that locked the environment row used to deadlock a push's insert)."""
    app = make_app("racing")
    for _ in range(3):
        statuses, errors = _push_concurrently(app, PUSHES)
        assert errors == [] and statuses == [202] * PUSHES
    numbers = list(Deployment.objects.filter(app=app).values_list("number", flat=True))
    assert sorted(numbers) == list(range(1, 3 * PUSHES + 1))
    # The worker fails the ones it took (the repository is not reachable); until it has,
    # its transactions would stop the database being emptied for the next test.
    active = Deployment.objects.filter(app=app, status__in=ACTIVE_STATUSES)
    wait_for(lambda: not active.exists(), timeout=120, message="the worker to settle them")
