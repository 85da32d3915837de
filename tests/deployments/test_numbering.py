"""Deployment numbers are per app, unique and gap-free, even when created at the same moment."""

import threading

import pytest
from django.db import connection, connections

from apps.models import App, AppCleanupRequested
from deployments.models import Deployment

THREADS = 12


def _create_concurrently(app_id: int, count: int) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def worker():
        try:
            app = App.objects.get(pk=app_id)
            barrier.wait()
            app.new_deployment(app.environment("production"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_numbers_are_gap_free_under_concurrency(make_app):
    assert connection.vendor == "postgresql"
    app = make_app()
    assert _create_concurrently(app.pk, THREADS) == []
    numbers = sorted(Deployment.objects.filter(app=app).values_list("number", flat=True))
    assert numbers == list(range(1, THREADS + 1))


@pytest.mark.django_db(transaction=True)
def test_numbers_are_per_app(make_app):
    first, second = make_app("first"), make_app("second")
    first.new_deployment(first.environment("production"))
    first.new_deployment(first.environment("staging"))
    second.new_deployment(second.environment("production"))
    assert list(first.deployments.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert list(second.deployments.values_list("number", flat=True)) == [1]


@pytest.mark.django_db(transaction=True)
def test_an_app_being_deleted_refuses_new_deployments(make_app):
    app = make_app()
    app.request_cleanup()
    with pytest.raises(AppCleanupRequested):
        app.new_deployment(app.environment("production"))
    assert not Deployment.objects.exists()
