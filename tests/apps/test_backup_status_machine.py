"""The two status machines of a backup (taking it, restoring it), transition by transition,
on rows made directly (no Docker), and the add-on page asking them what it may offer."""

import itertools

import pytest
from django.test import Client
from django.urls import reverse

from apps.models import (
    BACKUP_TRANSITIONS,
    RESTORE_TRANSITIONS,
    AddOn,
    AddOnKind,
    AddOnStatus,
    Backup,
    BackupStatus,
    RestoreStatus,
)
from paas.transitions import InvalidTransition

pytestmark = pytest.mark.django_db

B, R = BackupStatus, RestoreStatus
PATH = "demo/production-postgres/dump.sql.gz"
RAISES = "raises"

# Each target's public move, and how it says no: False, an error, or silently (None).
BACKUP_MOVES = {
    B.RUNNING: (lambda b: b.claim(PATH), False),
    B.SUCCEEDED: (lambda b: b.mark_succeeded(42), RAISES),
    B.FAILED: (lambda b: b.mark_failed("boom"), None),
}
RESTORE_MOVES = {
    R.PENDING: (lambda b: b.request_restore(), False),
    R.RUNNING: (lambda b: b.claim_restore(), False),
    R.SUCCEEDED: (lambda b: b.finish_restore(True), None),
    R.FAILED: (lambda b: b.finish_restore(False, "boom"), None),
}


def _pairs(table, values, moves):
    allowed = [(src, dst) for src, targets in table.items() for dst in targets]
    refused = [(src, dst) for src, dst in itertools.product(values, moves) if dst not in table[src]]
    return allowed, refused


BACKUP_ALLOWED, BACKUP_REFUSED = _pairs(BACKUP_TRANSITIONS, B.values, BACKUP_MOVES)
RESTORE_ALLOWED, RESTORE_REFUSED = _pairs(RESTORE_TRANSITIONS, R.values, RESTORE_MOVES)


@pytest.fixture
def addon(make_app):
    addon = AddOn.new(make_app().environment("production"), AddOnKind.POSTGRES)
    addon.status = AddOnStatus.RUNNING
    addon.save()
    return addon


@pytest.fixture
def backup_in(addon):
    def make(status=B.PENDING, restore_status=R.NONE):
        backup = Backup.objects.create(addon=addon)
        Backup.objects.filter(pk=backup.pk).update(status=status, restore_status=restore_status)
        backup.refresh_from_db()
        return backup

    return make


def _refuse(move, refusal, backup, src, dst):
    if refusal == RAISES:
        with pytest.raises(InvalidTransition, match=f"cannot go from {src} to {dst}"):
            move(backup)
    else:
        assert move(backup) is refusal


def test_the_tables_name_every_status_and_every_target_has_a_move():
    assert set(BACKUP_TRANSITIONS) == set(B.values)
    assert set(RESTORE_TRANSITIONS) == set(R.values)
    assert set().union(*BACKUP_TRANSITIONS.values()) == set(BACKUP_MOVES)
    assert set().union(*RESTORE_TRANSITIONS.values()) == set(RESTORE_MOVES)


# --- taking it -------------------------------------------------------------------------------


@pytest.mark.parametrize("src, dst", BACKUP_ALLOWED)
def test_a_backup_moves(backup_in, src, dst):
    backup = backup_in(src)
    move, refusal = BACKUP_MOVES[dst]
    result = move(backup)
    assert result is (True if refusal is False else None)
    backup.refresh_from_db()
    assert backup.status == dst
    assert (backup.finished_at is not None) == (dst in (B.SUCCEEDED, B.FAILED))


@pytest.mark.parametrize("src, dst", BACKUP_REFUSED)
def test_a_backup_refuses(backup_in, src, dst):
    backup = backup_in(src)
    move, refusal = BACKUP_MOVES[dst]
    _refuse(move, refusal, backup, src, dst)
    backup.refresh_from_db()
    assert (backup.status, backup.finished_at) == (src, None)


def test_a_claim_succeeds_once_and_records_the_path(backup_in):
    backup = backup_in(B.PENDING)
    twin = Backup.objects.get(pk=backup.pk)
    assert backup.claim(PATH) is True
    assert twin.claim("elsewhere") is False
    backup.refresh_from_db()
    assert (backup.status, backup.path) == (B.RUNNING, PATH)


def test_success_records_the_size_and_failure_the_message(backup_in):
    done, broken = backup_in(B.RUNNING), backup_in(B.RUNNING)
    done.mark_succeeded(1234)
    broken.mark_failed("x" * 5000)
    done.refresh_from_db()
    broken.refresh_from_db()
    assert (done.size, done.finished_at is not None) == (1234, True)
    assert (len(broken.message), broken.finished_at is not None) == (4000, True)


def test_a_backup_failed_by_the_sweeper_stays_failed_when_its_worker_fails_it_too(backup_in):
    backup = backup_in(B.RUNNING)
    Backup.objects.get(pk=backup.pk).mark_failed("timed out")
    backup.mark_failed("the dump broke")  # no error: the worker just learns it lost
    backup.refresh_from_db()
    assert (backup.status, backup.message) == (B.FAILED, "timed out")


def test_a_stale_object_cannot_mark_a_failed_backup_succeeded(backup_in):
    backup = backup_in(B.RUNNING)
    Backup.objects.get(pk=backup.pk).mark_failed("timed out")
    with pytest.raises(InvalidTransition, match="cannot go from failed to succeeded"):
        backup.mark_succeeded(42)
    assert Backup.objects.get(pk=backup.pk).status == B.FAILED


# --- restoring it ----------------------------------------------------------------------------


@pytest.mark.parametrize("src, dst", RESTORE_ALLOWED)
def test_a_restore_moves(backup_in, src, dst):
    backup = backup_in(B.SUCCEEDED, src)
    move, refusal = RESTORE_MOVES[dst]
    result = move(backup)
    assert result is (True if refusal is False else None)
    backup.refresh_from_db()
    assert (backup.status, backup.restore_status) == (B.SUCCEEDED, dst)
    assert (backup.restored_at is not None) == (dst in (R.SUCCEEDED, R.FAILED))


@pytest.mark.parametrize("src, dst", RESTORE_REFUSED)
def test_a_restore_refuses(backup_in, src, dst):
    backup = backup_in(B.SUCCEEDED, src)
    move, refusal = RESTORE_MOVES[dst]
    _refuse(move, refusal, backup, src, dst)
    backup.refresh_from_db()
    assert (backup.restore_status, backup.restored_at) == (src, None)


def test_a_restore_is_requested_once(backup_in):
    backup = backup_in(B.SUCCEEDED, R.FAILED)
    Backup.objects.filter(pk=backup.pk).update(restore_message="old trouble")
    twin = Backup.objects.get(pk=backup.pk)
    assert backup.request_restore() is True
    assert twin.request_restore() is False
    backup.refresh_from_db()
    assert (backup.restore_status, backup.restore_message) == (R.PENDING, "")


def test_a_finished_restore_records_its_message(backup_in):
    backup = backup_in(B.SUCCEEDED, R.RUNNING)
    backup.finish_restore(False, "y" * 5000)
    backup.refresh_from_db()
    assert (backup.restore_status, len(backup.restore_message)) == (R.FAILED, 4000)


# --- what the page offers --------------------------------------------------------------------


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.PAAS_BACKUP_DIR = tmp_path
    return tmp_path


def _with_file(backup, backup_dir):
    (backup_dir / PATH).parent.mkdir(parents=True, exist_ok=True)
    (backup_dir / PATH).write_bytes(b"dump")
    Backup.objects.filter(pk=backup.pk).update(path=PATH)
    backup.refresh_from_db()
    return backup


def _restore_buttons(owner, addon):
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("addon-detail", args=[addon.app.name, addon.pk]))
    assert page.status_code == 200
    return page.content.decode().count("/restore/")


def test_a_succeeded_backup_without_its_file_is_not_offered_for_restore(
    owner, addon, backup_in, backup_dir
):
    missing = backup_in(B.SUCCEEDED)
    assert not missing.can_restore
    assert _restore_buttons(owner, addon) == 0


def test_a_restorable_backup_of_a_running_add_on_is_offered(owner, addon, backup_in, backup_dir):
    backup = _with_file(backup_in(B.SUCCEEDED), backup_dir)
    assert backup.can_restore
    assert _restore_buttons(owner, addon) == 1


@pytest.mark.parametrize("restore_status", [R.PENDING, R.RUNNING])
def test_a_backup_being_restored_is_not_offered_again(
    owner, addon, backup_in, backup_dir, restore_status
):
    backup = _with_file(backup_in(B.SUCCEEDED, restore_status), backup_dir)
    assert not backup.can_restore
    assert _restore_buttons(owner, addon) == 0


def test_no_restore_is_offered_into_a_stopped_add_on(owner, addon, backup_in, backup_dir):
    backup = _with_file(backup_in(B.SUCCEEDED), backup_dir)
    AddOn.objects.filter(pk=addon.pk).update(status=AddOnStatus.STOPPED)
    assert not Backup.objects.get(pk=backup.pk).can_restore
    assert _restore_buttons(owner, addon) == 0
