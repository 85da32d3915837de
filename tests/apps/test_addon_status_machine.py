"""The add-on status machine, transition by transition, on rows made directly (no Docker)."""

import itertools

import pytest

from apps.models import (
    ADDON_MOVES,
    ADDON_TRANSITIONS,
    AddOn,
    AddOnKind,
    AddOnStatus,
    InvalidAddOnTransition,
)
from paas.transitions import InvalidTransition

pytestmark = pytest.mark.django_db

S = AddOnStatus
ALLOWED = [(src, dst) for src, targets in ADDON_TRANSITIONS.items() for dst in targets]
REFUSED = [
    (src, dst)
    for src, dst in itertools.product(S.values, S.values)
    if dst not in ADDON_TRANSITIONS[src]
]
OLD_ID = "old-container"
NEW_ID = "new-container"


def _addon_in(make_app, status):
    addon = AddOn.new(make_app().environment("production"), AddOnKind.POSTGRES)
    addon.save()
    AddOn.objects.filter(pk=addon.pk).update(
        status=status, container_id=OLD_ID, error_code="old", error_message="old trouble"
    )
    addon.refresh_from_db()
    return addon


def _move(addon, target):
    moves = {
        S.CREATING: addon.mark_creating,
        S.RUNNING: lambda: addon.mark_running(NEW_ID),
        S.STOPPED: addon.mark_stopped,
        S.FAILED: lambda: addon.mark_failed("start_failed", "boom"),
        S.DETACHED: addon.mark_detached,
        S.DELETING: addon.mark_deleting,
    }
    moves[target]()


# What each move writes besides the status: (container_id, error_code, error_message).
WRITES = {
    S.CREATING: (OLD_ID, "", ""),
    S.RUNNING: (NEW_ID, "", ""),
    S.STOPPED: (OLD_ID, "old", "old trouble"),
    S.FAILED: (OLD_ID, "start_failed", "boom"),
    S.DETACHED: ("", "old", "old trouble"),
    S.DELETING: (OLD_ID, "old", "old trouble"),
}


def test_the_table_names_every_status():
    assert set(ADDON_TRANSITIONS) == set(S.values)


def test_the_old_table_of_sources_is_the_same_table_read_the_other_way():
    for target, sources in ADDON_MOVES.items():
        assert sources == {src for src in S.values if target in ADDON_TRANSITIONS[src]}


@pytest.mark.parametrize("src, dst", ALLOWED)
def test_it_allows(make_app, src, dst):
    addon = _addon_in(make_app, src)
    before = addon.updated_at
    _move(addon, dst)
    in_memory = (addon.status, addon.container_id, addon.error_code, addon.error_message)
    addon.refresh_from_db()
    in_db = (addon.status, addon.container_id, addon.error_code, addon.error_message)
    assert in_db == in_memory == (dst, *WRITES[dst])
    assert addon.updated_at > before


@pytest.mark.parametrize("src, dst", REFUSED)
def test_it_refuses(make_app, src, dst):
    addon = _addon_in(make_app, src)
    with pytest.raises(InvalidTransition) as excinfo:
        _move(addon, dst)
    assert f"cannot go from {src} to {dst}" in str(excinfo.value)
    addon.refresh_from_db()
    assert (addon.status, addon.container_id) == (src, OLD_ID)


def test_callers_catching_the_old_name_still_catch_a_refusal(make_app):
    addon = _addon_in(make_app, S.DELETING)
    with pytest.raises(InvalidAddOnTransition):
        addon.mark_stopped()


def test_a_stale_object_cannot_overwrite_a_newer_status(make_app):
    addon = _addon_in(make_app, S.CREATING)
    stale = AddOn.objects.get(pk=addon.pk)
    addon.mark_detached()
    with pytest.raises(InvalidTransition, match="cannot go from detached to running"):
        stale.mark_running(NEW_ID)
    assert stale.status == S.DETACHED  # it learns who won
    assert AddOn.objects.get(pk=addon.pk).status == S.DETACHED


def test_running_again_without_a_container_id_keeps_the_one_it_had(make_app):
    addon = _addon_in(make_app, S.STOPPED)
    addon.mark_running()
    addon.refresh_from_db()
    assert (addon.status, addon.container_id) == (S.RUNNING, OLD_ID)


def test_a_failure_keeps_its_code_and_message_within_the_columns(make_app):
    addon = _addon_in(make_app, S.RUNNING)
    addon.mark_failed("c" * 100, "m" * 5000)
    addon.refresh_from_db()
    assert (len(addon.error_code), len(addon.error_message)) == (64, 2000)


@pytest.mark.parametrize("status", S.values)
def test_the_page_asks_the_table_what_it_may_do(make_app, status):
    addon = _addon_in(make_app, status)
    assert addon.can_restart == (S.STOPPED in ADDON_TRANSITIONS[status])
    assert addon.can_delete_data == (S.DELETING in ADDON_TRANSITIONS[status])
    assert addon.is_usable == (status == S.RUNNING)
    assert addon.is_detached == (status == S.DETACHED)
