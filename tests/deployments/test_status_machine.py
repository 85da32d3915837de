import itertools

import pytest

from deployments import services
from deployments.models import TRANSITIONS, Deployment, InvalidTransition, Status

pytestmark = pytest.mark.django_db

ALLOWED = [(src, dst) for src, targets in TRANSITIONS.items() for dst in targets]
REFUSED = [
    (src, dst)
    for src, dst in itertools.product(Status.values, Status.values)
    if dst not in TRANSITIONS[src]
]


def _deployment_in(make_app, status):
    app = make_app()
    deployment = app.new_deployment(app.environment("production"))
    Deployment.objects.filter(pk=deployment.pk).update(status=status)
    deployment.refresh_from_db()
    return deployment


def _move(deployment, target):
    moves = {
        Status.BUILDING: deployment.mark_building,
        Status.STARTING: deployment.mark_starting,
        Status.SUCCEEDED: deployment.mark_succeeded,
        Status.FAILED: lambda: deployment.mark_failed("build_failed", "boom"),
        Status.CANCELLED: deployment.mark_cancelled,
        Status.SUPERSEDED: lambda: deployment.mark_superseded(deployment),
        Status.PENDING: deployment.mark_pending_again,
    }
    moves[target]()


@pytest.mark.parametrize("src, dst", ALLOWED)
def test_it_allows(make_app, src, dst):
    deployment = _deployment_in(make_app, src)
    _move(deployment, dst)
    deployment.refresh_from_db()
    assert deployment.status == dst
    assert (deployment.finished_at is not None) == deployment.is_final


@pytest.mark.parametrize("src, dst", REFUSED)
def test_it_refuses(make_app, src, dst):
    deployment = _deployment_in(make_app, src)
    with pytest.raises(InvalidTransition) as excinfo:
        _move(deployment, dst)
    assert f"cannot go from {src} to {dst}" in str(excinfo.value)
    deployment.refresh_from_db()
    assert deployment.status == src


def test_a_stale_object_cannot_overwrite_a_newer_status(make_app):
    deployment = _deployment_in(make_app, Status.BUILDING)
    stale = Deployment.objects.get(pk=deployment.pk)
    deployment.mark_cancelled()
    with pytest.raises(InvalidTransition):
        stale.mark_starting()
    assert Deployment.objects.get(pk=deployment.pk).status == Status.CANCELLED


def test_claim_succeeds_once(make_app):
    deployment = _deployment_in(make_app, Status.PENDING)
    twin = Deployment.objects.get(pk=deployment.pk)
    assert deployment.claim() is True
    assert twin.claim() is False
    assert Deployment.objects.get(pk=deployment.pk).status == Status.BUILDING


def test_failure_records_code_and_message(make_app):
    deployment = _deployment_in(make_app, Status.BUILDING)
    deployment.mark_failed("build_failed", "RUN exited 3")
    deployment.refresh_from_db()
    assert (deployment.error_code, deployment.error_message) == ("build_failed", "RUN exited 3")


def test_cancelling_a_pending_deployment_settles_the_app_status(make_app):
    app = make_app()
    deployment = app.new_deployment(app.environment("production"))
    type(app).objects.filter(pk=app.pk).update(status="deploying")
    services.cancel_deployment(deployment)
    app.refresh_from_db()
    assert app.status == "created"
