"""The read-only database view: tables, row counts, first rows, a SQL box, Redis keys.

Slipway connects from this host to the add-on container's address on the app's bridge
network, so nothing is opened to the outside: to PostgreSQL as a role that can only read
(addon_engines.ensure_view_role, made at start and, for older add-ons, on first view), to
MariaDB and Redis as the app's own account (not a superuser). Every statement
runs in a read-only transaction with a statement timeout, one statement at a time:

- PostgreSQL: BEGIN READ ONLY + SET LOCAL statement_timeout; the statement goes through
  the extended protocol (prepare=True), which refuses "COMMIT; DELETE …" chains.
- MariaDB: SET SESSION TRANSACTION READ ONLY + max_statement_time, then START
  TRANSACTION READ ONLY; PyMySQL sends one statement (no multi-statements flag).
- Redis: SCAN (never KEYS), TYPE and a short preview per key; read commands only.

What comes back is shown as text only: cells are cut to CELL_CHARS and the page escapes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from psycopg import errors, sql

from apps.models.addons import AddOn, AddOnKind
from deployments.adapters import addon_engines
from deployments.adapters.runtime import RuntimeBackend, RuntimeBackendError

CELL_CHARS = 300
MAX_TABLES = 300
MAX_KEYS = 200
PREVIEW_ITEMS = 5


class BrowseError(Exception):
    """Shown to the user as a message with a stable code; never a 500."""

    def __init__(self, message: str, code: str = "query_failed"):
        super().__init__(message)
        self.message, self.code = message, code


@dataclass
class Table:
    name: str
    rows: int | None  # None: counting took too long
    estimated: bool = False


@dataclass
class Result:
    columns: list[str] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    truncated: bool = False  # more rows than shown
    status: str = ""  # what the server said (SELECT 3, SHOW …)


@dataclass
class KeyInfo:
    key: str
    type: str
    ttl: int  # seconds; -1 none
    preview: str


# --- connections ---------------------------------------------------------------------------------


def _endpoint(addon: AddOn, runtime: RuntimeBackend):
    if not addon.is_usable or not addon.container_id:
        raise BrowseError(
            f"The add-on is {addon.status}; the view needs it running.", "not_running"
        )
    try:
        return runtime.endpoint(addon.container_id, addon.app.network)
    except RuntimeBackendError as exc:
        raise BrowseError(f"The add-on cannot be reached: {exc.message}", exc.code) from None


def _connect(addon: AddOn, runtime: RuntimeBackend):
    try:
        return _connect_view(addon, _endpoint(addon, runtime))
    except BrowseError:
        raise
    except Exception as exc:  # noqa: BLE001 - each driver has its own connection errors
        raise BrowseError(
            f"Could not connect to {addon.get_kind_display()}: {_first_line(exc)}", "connect_failed"
        ) from None


def _connect_view(addon: AddOn, endpoint):
    try:
        return addon_engines.connect_view(addon, endpoint)
    except psycopg.OperationalError:
        if addon.kind != AddOnKind.POSTGRES:
            raise
        # An add-on started before the view had its role gets it now, once.
        addon_engines.ensure_view_role(addon, endpoint)
        return addon_engines.connect_view(addon, endpoint)


def _timeout_ms() -> int:
    return int(settings.PAAS_DB_VIEW_TIMEOUT_MS)


# --- SQL: public entry points -------------------------------------------------------------------


def tables(addon: AddOn, runtime: RuntimeBackend) -> list[Table]:
    _require_sql(addon)
    return _sql(addon, runtime, "tables")


def table_rows(addon: AddOn, name: str, runtime: RuntimeBackend) -> Result:
    """The first rows of a table the database lists (a name from anywhere else is refused)."""
    _require_sql(addon)
    return _sql(addon, runtime, "rows", name)


def run_query(addon: AddOn, statement: str, runtime: RuntimeBackend) -> Result:
    _require_sql(addon)
    statement = statement.strip().rstrip(";").strip()
    if not statement:
        raise BrowseError("Type a statement to run.", "empty_statement")
    return _sql(addon, runtime, "query", statement)


def _require_sql(addon: AddOn) -> None:
    if not addon.is_database:
        raise BrowseError("This add-on has no tables.", "not_sql")


def _sql(addon: AddOn, runtime, action: str, *args):
    engine = _Postgres if addon.kind == AddOnKind.POSTGRES else _MariaDB
    conn = _connect(addon, runtime)
    try:
        return getattr(engine(conn), action)(*args)
    except BrowseError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver errors become messages, never a 500
        raise engine.explain(exc) from None
    finally:
        conn.close()


# --- PostgreSQL ----------------------------------------------------------------------------------


class _Postgres:
    def __init__(self, conn):
        self.conn = conn
        conn.read_only = True  # every transaction opens with BEGIN READ ONLY

    def _begin(self):
        cur = self.conn.cursor()
        cur.execute(f"SET LOCAL statement_timeout = {_timeout_ms()}")
        return cur

    def _names(self, cur) -> list[tuple[str, str]]:
        cur.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY table_schema <> 'public', table_schema, table_name LIMIT %s",
            [MAX_TABLES],
        )
        return cur.fetchall()

    @staticmethod
    def _label(schema: str, table: str) -> str:
        return table if schema == "public" else f"{schema}.{table}"

    def tables(self) -> list[Table]:
        cur = self._begin()
        names = self._names(cur)
        if not names:
            return []
        counts = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}::int, count(*) FROM {}").format(sql.Literal(i), sql.Identifier(s, t))
            for i, (s, t) in enumerate(names)
        )
        try:
            cur.execute(counts)
            exact = dict(cur.fetchall())
        except errors.QueryCanceled:
            self.conn.rollback()
            return self._estimates(names)
        return [Table(self._label(s, t), exact.get(i)) for i, (s, t) in enumerate(names)]

    def _estimates(self, names) -> list[Table]:
        """Counting every row took too long: the planner's estimates, marked as such."""
        cur = self._begin()
        cur.execute(
            "SELECT n.nspname, c.relname, c.reltuples::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
        )
        guess = {(s, t): max(n, 0) for s, t, n in cur.fetchall()}
        return [Table(self._label(s, t), guess.get((s, t)), estimated=True) for s, t in names]

    def rows(self, name: str) -> Result:
        cur = self._begin()
        found = {self._label(s, t): (s, t) for s, t in self._names(cur)}
        if name not in found:
            raise BrowseError(f"There is no table “{name}”.", "no_such_table")
        limit = settings.PAAS_DB_VIEW_ROWS
        cur.execute(
            sql.SQL("SELECT * FROM {} LIMIT {}").format(
                sql.Identifier(*found[name]), sql.Literal(limit + 1)
            )
        )
        return _result(cur, limit)

    def query(self, statement: str) -> Result:
        cur = self._begin()
        # prepare=True: the extended protocol runs exactly one statement.
        cur.execute(statement, prepare=True)
        return _result(cur, settings.PAAS_DB_VIEW_ROWS)

    @staticmethod
    def explain(exc: Exception) -> BrowseError:
        if isinstance(exc, errors.QueryCanceled):
            return _timed_out()
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return _read_only(_first_line(exc))
        if isinstance(exc, errors.InsufficientPrivilege):
            return BrowseError(
                f"The view's read-only role may not do that: {_first_line(exc)}",
                "permission_denied",
            )
        if "multiple commands" in str(exc):
            return BrowseError("Run one statement at a time.", "multiple_statements")
        return BrowseError(_first_line(exc))


# --- MariaDB -------------------------------------------------------------------------------------

MARIADB_READ_ONLY = 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
MARIADB_TIMEOUT = 1969  # ER_STATEMENT_TIMEOUT (max_statement_time exceeded)


class _MariaDB:
    def __init__(self, conn):
        self.conn = conn

    def _begin(self):
        cur = self.conn.cursor()
        cur.execute("SET SESSION max_statement_time = %s", [_timeout_ms() / 1000])
        cur.execute("SET SESSION TRANSACTION READ ONLY")
        cur.execute("START TRANSACTION READ ONLY")
        return cur

    def _names(self, cur) -> list[str]:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_type = 'BASE TABLE' ORDER BY table_name LIMIT %s",
            [MAX_TABLES],
        )
        return [row[0] for row in cur.fetchall()]

    def tables(self) -> list[Table]:
        cur = self._begin()
        names = self._names(cur)
        if not names:
            return []
        counts = " UNION ALL ".join(
            f"SELECT {i}, COUNT(*) FROM {_backticks(name)}" for i, name in enumerate(names)
        )
        try:
            cur.execute(counts)
            exact = dict(cur.fetchall())
        except Exception as exc:  # noqa: BLE001
            if _mariadb_code(exc) != MARIADB_TIMEOUT:
                raise
            return self._estimates(names)
        return [Table(name, exact.get(i)) for i, name in enumerate(names)]

    def _estimates(self, names) -> list[Table]:
        cur = self._begin()
        cur.execute(
            "SELECT table_name, table_rows FROM information_schema.tables "
            "WHERE table_schema = DATABASE()"
        )
        guess = dict(cur.fetchall())
        return [Table(name, guess.get(name), estimated=True) for name in names]

    def rows(self, name: str) -> Result:
        cur = self._begin()
        if name not in self._names(cur):
            raise BrowseError(f"There is no table “{name}”.", "no_such_table")
        limit = settings.PAAS_DB_VIEW_ROWS
        cur.execute(f"SELECT * FROM {_backticks(name)} LIMIT {int(limit) + 1}")
        return _result(cur, limit)

    def query(self, statement: str) -> Result:
        cur = self._begin()
        cur.execute(statement)  # no MULTI_STATEMENTS flag: a ";" chain is a syntax error
        return _result(cur, settings.PAAS_DB_VIEW_ROWS)

    @staticmethod
    def explain(exc: Exception) -> BrowseError:
        code = _mariadb_code(exc)
        if code == MARIADB_TIMEOUT:
            return _timed_out()
        if code == MARIADB_READ_ONLY:
            return _read_only(_mariadb_message(exc))
        return BrowseError(_mariadb_message(exc) if code else _first_line(exc))


def _backticks(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _mariadb_code(exc: Exception) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _mariadb_message(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    return str(args[1]) if len(args) > 1 else _first_line(exc)


# --- shared --------------------------------------------------------------------------------------


def _timed_out() -> BrowseError:
    seconds = _timeout_ms() / 1000
    return BrowseError(
        f"The statement ran longer than {seconds:g} s and was cancelled (statement timeout).",
        "statement_timeout",
    )


def _read_only(detail: str) -> BrowseError:
    return BrowseError(f"Refused: the database view is read-only ({detail}).", "read_only")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def _result(cur, limit: int) -> Result:
    status = getattr(cur, "statusmessage", None) or ""
    if not cur.description:
        count = getattr(cur, "rowcount", -1)
        return Result(status=status or (f"{count} rows" if count >= 0 else "OK"))
    columns = [str(col[0]) for col in cur.description]
    fetched = cur.fetchmany(limit + 1)
    rows = [[_cell(value) for value in row] for row in fetched[:limit]]
    shown = f"{len(rows)} row{'s' if len(rows) != 1 else ''} shown"
    return Result(columns, rows, truncated=len(fetched) > limit, status=status or shown)


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        text = "\\x" + raw[: CELL_CHARS // 2].hex()
    else:
        text = str(value)
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"


# --- Redis ---------------------------------------------------------------------------------------


def redis_keys(addon: AddOn, pattern: str, runtime: RuntimeBackend) -> tuple[list[KeyInfo], bool]:
    """Keys matching pattern (SCAN, at most MAX_KEYS) with type, TTL and a short preview;
    the flag says whether there were more."""
    if addon.kind != AddOnKind.REDIS:
        raise BrowseError("This add-on has no keys.", "not_redis")
    client = _connect(addon, runtime)
    try:
        names = _scan(client, pattern or "*")
        more = len(names) > MAX_KEYS
        return _describe(client, names[:MAX_KEYS]), more
    except BrowseError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise BrowseError(_first_line(exc)) from None
    finally:
        client.close()


def _scan(client, pattern: str) -> list[bytes]:
    names: list[bytes] = []
    for name in client.scan_iter(match=pattern, count=500):
        names.append(name)
        if len(names) > MAX_KEYS:
            break
    return sorted(names)


def _describe(client, names: list[bytes]) -> list[KeyInfo]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.type(name)
        pipe.ttl(name)
    answers = pipe.execute()
    types = [_text(t) for t in answers[0::2]]
    pipe = client.pipeline(transaction=False)
    for name, kind in zip(names, types, strict=True):
        _queue_preview(pipe, name, kind)
    previews = pipe.execute(raise_on_error=False)
    return [
        KeyInfo(_text(name), kind, int(ttl), _preview(kind, preview))
        for name, kind, ttl, preview in zip(names, types, answers[1::2], previews, strict=True)
    ]


def _queue_preview(pipe, name: bytes, kind: str) -> None:
    n = PREVIEW_ITEMS
    if kind == "string":
        pipe.getrange(name, 0, CELL_CHARS)
    elif kind == "list":
        pipe.lrange(name, 0, n - 1)
    elif kind == "hash":
        pipe.hscan(name, 0, count=n)
    elif kind == "set":
        pipe.sscan(name, 0, count=n)
    elif kind == "zset":
        pipe.zrange(name, 0, n - 1, withscores=True)
    elif kind == "stream":
        pipe.xrange(name, count=2)
    else:
        pipe.echo(b"")


def _preview(kind: str, value) -> str:
    if isinstance(value, Exception):
        return f"(could not read: {value})"
    if kind in ("hash", "set"):
        value = value[1]  # (cursor, items)
    if isinstance(value, dict):
        text = ", ".join(f"{_text(k)}: {_text(v)}" for k, v in list(value.items())[:PREVIEW_ITEMS])
    elif isinstance(value, (list, tuple)) and kind != "string":
        text = ", ".join(_text(item) for item in list(value)[:PREVIEW_ITEMS])
    else:
        text = _text(value)
    return text if len(text) <= CELL_CHARS else text[:CELL_CHARS] + "…"


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    return str(value)
