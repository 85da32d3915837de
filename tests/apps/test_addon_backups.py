"""Backups of add-ons on the real worker and dockerd: dumps made inside the add-on's
container, restored from a chosen one, pruned to the newest N, listed with size and age."""

import gzip

import pytest
from django.conf import settings
from django.test import Client

from apps.models.addons import Backup
from deployments.services import Conflict, addon_backups
from deployments.services import addons as addon_services
from deployments.workers import backups
from tests.apps.addon_helpers import addon_leftovers, connect, wait_addon  # noqa: F401
from tests.support import wait_for

pytestmark = pytest.mark.usefixtures("addon_leftovers")


def _finished(backup, field="status"):
    def done():
        current = Backup.objects.get(pk=backup.pk)
        return current if getattr(current, field) in ("succeeded", "failed") else None

    return wait_for(done, timeout=60, message=f"backup {backup.pk} {field}")


def _backup(addon):
    backup = _finished(addon_backups.request_backup(addon))
    assert backup.status == "succeeded", backup.message
    return backup


def _restore(backup):
    addon_backups.request_restore(backup)
    restored = _finished(backup, "restore_status")
    assert restored.restore_status == "succeeded", restored.restore_message
    return restored


@pytest.fixture
def postgres(platform, make_app):
    addon = wait_addon(addon_services.attach(make_app("backedup"), "production", "postgres"))
    conn = connect(addon)
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
    conn.execute("INSERT INTO items VALUES (1, 'one'), (2, 'two')")
    conn.commit()
    conn.close()
    return addon


def _items(addon):
    conn = connect(addon)
    try:
        return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    finally:
        conn.close()


def test_a_restore_brings_the_original_rows_back(postgres):
    backup = _backup(postgres)
    assert backup.file.is_file() and backup.size == backup.file.stat().st_size > 0
    assert b"CREATE TABLE public.items" in gzip.decompress(backup.file.read_bytes())
    assert backup.file.stat().st_mode & 0o077 == 0  # only Slipway's user reads dumps

    conn = connect(postgres)
    conn.execute("UPDATE items SET name = 'changed'")
    conn.execute("INSERT INTO items VALUES (3, 'three')")
    conn.commit()
    conn.close()
    assert _items(postgres) == [(1, "changed"), (2, "changed"), (3, "three")]

    _restore(backup)
    assert _items(postgres) == [(1, "one"), (2, "two")]


def test_retention_keeps_the_newest_n(postgres):
    taken = [_backup(postgres) for _ in range(3)]
    assert backups.prune(postgres, keep=2) == 1
    kept = list(Backup.objects.filter(addon=postgres).order_by("created_at"))
    assert [b.pk for b in kept] == [taken[1].pk, taken[2].pk]
    assert not taken[0].file.exists()
    assert all(b.file.is_file() for b in kept)


def test_backups_are_listed_with_size_and_age(postgres, owner, api):
    _backup(postgres)
    listed = api.get(f"/apps/{postgres.app.name}/addons/{postgres.pk}/backups").json()["backups"]
    assert len(listed) == 1
    assert listed[0]["status"] == "succeeded" and listed[0]["size"] > 0
    assert 0 <= listed[0]["age_seconds"] < 120

    browser = Client()
    browser.force_login(owner)
    page = browser.get(f"/apps/{postgres.app.name}/addons/{postgres.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="backups"' in text and "bytes" in text and " ago" in text


def test_the_api_backs_up_and_restores(postgres, api):
    base = f"/apps/{postgres.app.name}/addons/{postgres.pk}/backups"
    created = api.post(base)
    assert created.status_code == 202
    backup = _finished(Backup.objects.get(pk=created.json()["id"]))
    conn = connect(postgres)
    conn.execute("DELETE FROM items")
    conn.commit()
    conn.close()
    assert api.post(f"{base}/{backup.pk}/restore").status_code == 202
    assert _finished(backup, "restore_status").restore_status == "succeeded"
    assert _items(postgres) == [(1, "one"), (2, "two")]


def test_scheduled_backups_cover_every_running_addon(postgres):
    assert "addon-backups" in settings.CELERY_BEAT_SCHEDULE
    assert addon_backups.scheduled_backups() == 1
    backup = _finished(Backup.objects.get(addon=postgres))
    assert backup.scheduled and backup.status == "succeeded"
    second = addon_backups.request_backup(postgres)
    with pytest.raises(Conflict):  # one at a time per add-on
        addon_backups.request_backup(postgres)
    assert _finished(second).status == "succeeded"


def test_redis_snapshots_restore_too(platform, make_app):
    addon = wait_addon(addon_services.attach(make_app("cachey"), "production", "redis"))
    client = connect(addon)
    client.set("answer", "42")
    client.close()
    backup = _backup(addon)
    assert backup.file.read_bytes().startswith(b"REDIS")

    client = connect(addon)
    client.set("answer", "wrong")
    client.set("extra", "x")
    client.close()
    _restore(backup)
    client = connect(addon)
    assert client.get("answer") == b"42" and client.get("extra") is None
    client.close()


def test_a_broken_dump_fails_the_restore_with_the_clients_message(postgres):
    good = _backup(postgres)
    broken = Backup.objects.create(addon=postgres, status="succeeded", path=good.path + ".bad")
    # Large enough that psql stops reading long before the end: the message must survive.
    broken.file.write_bytes(gzip.compress(b"THIS IS NOT SQL;\n" + b"-- filler\n" * 2_000_000))
    addon_backups.request_restore(broken)
    failed = _finished(broken, "restore_status")
    assert failed.restore_status == "failed"
    assert "syntax error" in failed.restore_message
    assert _items(postgres) == [(1, "one"), (2, "two")]  # one transaction: nothing changed
