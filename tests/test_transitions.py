"""The shared guarded move every status machine uses, on a toy table over a real model."""

import pytest

from deployments.models import PromotionRequest, PromotionStatus
from paas import transitions
from paas.transitions import InvalidTransition

pytestmark = pytest.mark.django_db

P = PromotionStatus
TOY = {
    P.PENDING: frozenset({P.APPROVED}),
    P.APPROVED: frozenset({P.EXPIRED}),
    P.REJECTED: frozenset(),
    P.EXPIRED: frozenset(),
}


@pytest.fixture
def request_row(make_app, owner):
    app = make_app()
    return PromotionRequest.objects.create(
        app=app,
        requested_by=owner,
        source_environment=app.environment("staging"),
        target_environment=app.environment("production"),
    )


def _status_in_db(row):
    return PromotionRequest.objects.values_list("status", flat=True).get(pk=row.pk)


def test_allows_reads_the_table():
    assert transitions.allows(TOY, P.PENDING, P.APPROVED)
    assert not transitions.allows(TOY, P.PENDING, P.EXPIRED)
    assert not transitions.allows(TOY, P.EXPIRED, P.PENDING)


def test_a_move_writes_the_status_and_the_fields_and_the_instance_holds_them(request_row, staff):
    transitions.move(request_row, "status", TOY, P.APPROVED, approved_by=staff)
    assert (request_row.status, request_row.approved_by) == (P.APPROVED, staff)
    request_row.refresh_from_db()
    assert (request_row.status, request_row.approved_by_id) == (P.APPROVED, staff.pk)


def test_a_move_the_table_refuses_writes_nothing(request_row, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(InvalidTransition) as excinfo:
        transitions.move(request_row, "status", TOY, P.EXPIRED)
    assert str(excinfo.value) == (
        f"promotion request {request_row.pk} cannot go from pending to expired"
    )
    assert (excinfo.value.current, excinfo.value.target) == (P.PENDING, P.EXPIRED)
    assert _status_in_db(request_row) == P.PENDING


def test_a_subject_names_what_refused(request_row):
    with pytest.raises(InvalidTransition, match="^the toy cannot go from pending to rejected$"):
        transitions.move(request_row, "status", TOY, P.REJECTED, "the toy")


def test_a_stale_object_loses_and_learns_the_status_that_won(request_row):
    stale = PromotionRequest.objects.get(pk=request_row.pk)
    transitions.move(request_row, "status", TOY, P.APPROVED)
    transitions.move(request_row, "status", TOY, P.EXPIRED)
    with pytest.raises(InvalidTransition, match="cannot go from expired to approved"):
        transitions.move(stale, "status", TOY, P.APPROVED)
    assert stale.status == P.EXPIRED
    assert _status_in_db(request_row) == P.EXPIRED


def test_a_lost_move_leaves_the_rest_of_the_object_as_it_was(request_row, staff):
    stale = PromotionRequest.objects.get(pk=request_row.pk)
    transitions.move(request_row, "status", TOY, P.APPROVED, approved_by=staff)
    with pytest.raises(InvalidTransition):
        transitions.move(stale, "status", TOY, P.APPROVED)
    assert stale.approved_by_id is None  # only the status is reloaded


def test_a_row_deleted_meanwhile_is_refused_not_crashed_on(request_row):
    PromotionRequest.objects.filter(pk=request_row.pk).delete()
    with pytest.raises(InvalidTransition, match=r"cannot go from \(deleted\) to approved"):
        transitions.move(request_row, "status", TOY, P.APPROVED)
    assert request_row.status == P.PENDING
