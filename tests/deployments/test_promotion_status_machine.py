"""The promotion request's status machine, transition by transition, on rows made directly
(no Docker, no gates): decided once, from pending, and never twice."""

import itertools

import pytest

from deployments.models import (
    PROMOTION_TRANSITIONS,
    PromotionDecided,
    PromotionRequest,
    PromotionStatus,
)
from paas.transitions import InvalidTransition

pytestmark = pytest.mark.django_db

P = PromotionStatus
DECISIONS = (P.APPROVED, P.REJECTED, P.EXPIRED)
ALLOWED = [(src, dst) for src, targets in PROMOTION_TRANSITIONS.items() for dst in targets]
REFUSED = [
    (src, dst)
    for src, dst in itertools.product(P.values, DECISIONS)
    if dst not in PROMOTION_TRANSITIONS[src]
]


@pytest.fixture
def app(make_app):
    return make_app("gated")


@pytest.fixture
def request_in(app, owner):
    def make(status=P.PENDING):
        request = PromotionRequest.objects.create(
            app=app,
            requested_by=owner,
            source_environment=app.environment("staging"),
            target_environment=app.environment("production"),
        )
        PromotionRequest.objects.filter(pk=request.pk).update(status=status)
        request.refresh_from_db()
        return request

    return make


@pytest.fixture
def decide(app, staff):
    deployment = app.new_deployment(app.environment("production"), trigger="promote")

    def move(request, target):
        moves = {
            P.APPROVED: lambda: request.approve(staff, deployment),
            P.REJECTED: lambda: request.reject(staff),
            P.EXPIRED: request.expire,
        }
        moves[target]()

    move.deployment = deployment
    return move


def test_the_table_names_every_status_and_only_pending_moves():
    assert set(PROMOTION_TRANSITIONS) == set(P.values)
    assert PROMOTION_TRANSITIONS[P.PENDING] == frozenset(DECISIONS)
    assert all(not PROMOTION_TRANSITIONS[s] for s in DECISIONS)


@pytest.mark.parametrize("src, dst", ALLOWED)
def test_it_allows(request_in, decide, src, dst):
    request = request_in(src)
    decide(request, dst)
    in_memory = (request.status, request.decided_at)
    request.refresh_from_db()
    assert (request.status, request.decided_at) == in_memory
    assert request.status == dst
    assert request.decided_at is not None


@pytest.mark.parametrize("src, dst", REFUSED)
def test_it_refuses(request_in, decide, src, dst):
    request = request_in(src)
    with pytest.raises(InvalidTransition) as excinfo:
        decide(request, dst)
    assert f"cannot go from {src} to {dst}" in str(excinfo.value)
    request.refresh_from_db()
    assert (request.status, request.decided_at, request.approved_by) == (src, None, None)


def test_callers_catching_the_old_name_still_catch_a_refusal(request_in):
    with pytest.raises(PromotionDecided):
        request_in(P.REJECTED).expire()


def test_an_approval_records_who_and_the_promote_deployment(request_in, decide, staff):
    request = request_in()
    decide(request, P.APPROVED)
    request.refresh_from_db()
    assert (request.approved_by, request.deployment) == (staff, decide.deployment)


def test_a_rejection_records_who_and_no_deployment(request_in, decide, staff):
    request = request_in()
    decide(request, P.REJECTED)
    request.refresh_from_db()
    assert (request.approved_by, request.deployment) == (staff, None)


def test_a_stale_object_cannot_overwrite_a_decision_and_learns_it(request_in, decide):
    request = request_in()
    stale = PromotionRequest.objects.get(pk=request.pk)
    decide(request, P.APPROVED)
    with pytest.raises(PromotionDecided, match="cannot go from approved to rejected"):
        decide(stale, P.REJECTED)
    assert stale.status == P.APPROVED  # the service's "already approved" message reads it
    assert PromotionRequest.objects.get(pk=request.pk).status == P.APPROVED
