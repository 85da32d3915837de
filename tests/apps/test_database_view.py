"""The read-only database view, served by Slipway from real add-on containers: tables and
row counts, first rows, a SQL box that cannot write and times out, escaped data, and a 404
for everyone but the app's owner."""

import psycopg
import pytest
from django.test import Client

from apps.models.addons import Backup
from deployments.services import addons as addon_services
from tests.apps.addon_helpers import addon_leftovers, connect, wait_addon  # noqa: F401

pytestmark = pytest.mark.usefixtures("addon_leftovers")

SCRIPT = "<script>alert('owned')</script>"


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def outsider_client(outsider):
    client = Client()
    client.force_login(outsider)
    return client


@pytest.fixture
def postgres(platform, make_app):
    addon = wait_addon(addon_services.attach(make_app("viewed"), "production", "postgres"))
    conn = connect(addon)
    conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
    conn.execute("INSERT INTO notes (body) VALUES ('plain'), (%s), ('third')", [SCRIPT])
    conn.execute("CREATE TABLE empty_one (x int)")
    conn.commit()
    conn.close()
    return addon


def _base(addon):
    return f"/apps/{addon.app.name}/addons/{addon.pk}/"


def _sql(client, addon, statement):
    return client.post(_base(addon) + "data/query/", {"sql": statement})


def test_the_owner_sees_tables_and_row_counts(postgres, owner_client):
    page = owner_client.get(_base(postgres) + "data/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-table="notes">3<' in text
    assert 'data-table="empty_one">0<' in text


def test_a_table_shows_its_first_rows_escaped(postgres, owner_client):
    page = owner_client.get(_base(postgres) + "data/tables/notes/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "plain" in text and "third" in text
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in text
    assert owner_client.get(_base(postgres) + "data/tables/nope/").status_code == 200
    assert (
        "There is no table"
        in owner_client.get(_base(postgres) + "data/tables/nope/").content.decode()
    )


def test_the_sql_box_reads(postgres, owner_client):
    answer = _sql(owner_client, postgres, "SELECT body FROM notes WHERE id = 1")
    assert answer.status_code == 200
    assert "plain" in answer.content.decode()


def test_a_write_statement_is_refused_by_the_read_only_transaction(postgres, owner_client):
    for statement in (
        "DELETE FROM notes",
        "CREATE TABLE sneaky (x int)",
        "INSERT INTO notes (body) VALUES ('x')",
    ):
        answer = _sql(owner_client, postgres, statement)
        assert answer.status_code == 400
        assert 'data-code="read_only"' in answer.content.decode()
        assert "read-only transaction" in answer.content.decode()
    chained = _sql(owner_client, postgres, "COMMIT; DELETE FROM notes")
    assert 'data-code="multiple_statements"' in chained.content.decode()
    conn = connect(postgres)
    assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 3
    conn.close()


def test_a_slow_statement_hits_the_timeout_with_a_clear_message(postgres, owner_client, settings):
    settings.PAAS_DB_VIEW_TIMEOUT_MS = 500
    answer = _sql(owner_client, postgres, "SELECT pg_sleep(5)")
    assert answer.status_code == 400
    text = answer.content.decode()
    assert 'data-code="statement_timeout"' in text
    assert "ran longer than 0.5 s and was cancelled" in text


def test_statements_and_errors_are_escaped(postgres, owner_client):
    answer = _sql(owner_client, postgres, f"SELECT '{SCRIPT}' AS \"<b>col</b>\"")
    text = answer.content.decode()
    assert SCRIPT not in text and "<b>col</b>" not in text
    assert "&lt;b&gt;col&lt;/b&gt;" in text
    broken = _sql(owner_client, postgres, f"SELEC {SCRIPT}")
    assert broken.status_code == 400 and SCRIPT not in broken.content.decode()


def test_an_outsider_gets_404_on_every_database_view_url(postgres, outsider_client, owner):
    backup = Backup.objects.create(addon=postgres, status="succeeded")
    base = _base(postgres)
    gets = ["", "status/", "url/", "data/", "data/tables/notes/", "data/query/"]
    posts = ["restart/", "detach/", "backups/", f"backups/{backup.pk}/restore/", "data/query/"]
    for path in gets:
        assert outsider_client.get(base + path).status_code == 404, path
    for path in posts:
        assert (
            outsider_client.post(base + path, {"sql": "SELECT 1", "confirm": "on"}).status_code
            == 404
        ), path
    assert outsider_client.get(f"/apps/{postgres.app.name}/addons/").status_code == 404
    assert (
        outsider_client.post(
            f"/apps/{postgres.app.name}/addons/attach/", {"kind": "redis"}
        ).status_code
        == 404
    )


def test_mariadb_is_read_only_and_times_out(platform, make_app, owner_client, settings):
    addon = wait_addon(addon_services.attach(make_app("mariaview"), "production", "mariadb"))
    conn = connect(addon)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE people (name varchar(100))")
        cursor.execute("INSERT INTO people VALUES (%s), ('bob')", [SCRIPT])
    conn.commit()
    conn.close()
    tables = owner_client.get(_base(addon) + "data/").content.decode()
    assert 'data-table="people">2<' in tables
    rows = owner_client.get(_base(addon) + "data/tables/people/").content.decode()
    assert "bob" in rows and SCRIPT not in rows and "&lt;script&gt;" in rows

    refused = _sql(owner_client, addon, "DELETE FROM people")
    assert 'data-code="read_only"' in refused.content.decode()
    settings.PAAS_DB_VIEW_TIMEOUT_MS = 500
    slow = _sql(owner_client, addon, "SELECT SLEEP(5)")
    assert 'data-code="statement_timeout"' in slow.content.decode()


def test_redis_keys_are_listed_by_pattern_with_type_and_preview(platform, make_app, owner_client):
    addon = wait_addon(addon_services.attach(make_app("keyview"), "production", "redis"))
    client = connect(addon)
    client.set("user:1", SCRIPT)
    client.rpush("queue:jobs", "a", "b")
    client.hset("user:2:profile", mapping={"name": "carol"})
    client.set("other", "x")
    client.close()
    page = owner_client.get(_base(addon) + "data/", {"pattern": "user:*"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "user:1" in text and "user:2:profile" in text and "name: carol" in text
    assert "queue:jobs" not in text and ">other<" not in text
    assert SCRIPT not in text and "&lt;script&gt;" in text


def test_the_view_reads_as_a_role_that_cannot_write_nor_run_programs(postgres, owner_client):
    def who():
        return _sql(owner_client, postgres, "SELECT current_user AS who").content.decode()

    assert "slipway_view" in who()
    program = _sql(owner_client, postgres, "COPY (SELECT 1) TO PROGRAM 'touch /tmp/owned'")
    assert program.status_code == 400
    assert 'data-code="permission_denied"' in program.content.decode()
    # Outside the view's read-only transaction the role still cannot write (its sessions
    # default to read-only, and it has SELECT only), nor turn read-only off and then write.
    conn = psycopg.connect(
        connect(postgres).info.dsn, user="slipway_view", password=postgres.view_password
    )
    conn.autocommit = True
    for statement in (
        "INSERT INTO notes (body) VALUES ('x')",
        "SET default_transaction_read_only = off; INSERT INTO notes (body) VALUES ('x')",
    ):
        with pytest.raises(psycopg.Error):
            conn.execute(statement)
    conn.close()
    # An add-on started before the role existed gets it on its first view.
    admin = connect(postgres)
    admin.autocommit = True
    admin.execute("DROP ROLE slipway_view")
    admin.close()
    assert "slipway_view" in who()
