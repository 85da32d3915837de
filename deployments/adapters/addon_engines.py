"""What Slipway knows about each add-on engine: how its container is started, how to tell
it is ready, and which commands dump and restore it inside its own container.

Commands get passwords through the exec's environment (PGPASSWORD, MYSQL_PWD,
REDISCLI_AUTH), never on a command line. Both the official images and Slipway's
Debian-built ones have these clients.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
import redis
from django.conf import settings
from psycopg import sql

from apps.models.addons import VIEW_ROLE, AddOn, AddOnKind
from deployments.adapters.runtime import ContainerSpec, Endpoint, RuntimeBackendError

CONNECT_TIMEOUT = 3
PROBE_INTERVAL = 0.3

# Redis 7 started with --appendonly yes and no AOF yet begins empty, ignoring a dump.rdb
# beside it. So: a dump.rdb without an AOF (the first start after a restore, or after a
# crash before the AOF existed) starts with AOF off, and readiness turns it on again, which
# writes the AOF from the loaded data. A restore leaves restore.rdb for the next start.
# The password goes into a config file in the volume (mode 600; both entrypoints chown /data
# to the redis user), never onto redis-server's command line, where `docker top`, `ps` and
# /proc/<pid>/cmdline would show it. printf is the shell's builtin: no argv either.
REDIS_CONFIG = "/data/slipway-redis.conf"
REDIS_START = (
    "cd /data; "
    "if [ -f restore.rdb ]; then rm -rf appendonlydir && mv restore.rdb dump.rdb; fi; "
    "aof=yes; if [ ! -d appendonlydir ] && [ -f dump.rdb ]; then aof=no; fi; "
    f"(umask 077; printf 'requirepass %s\\n' \"$REDIS_PASSWORD\" > {REDIS_CONFIG}); "
    f'exec docker-entrypoint.sh redis-server {REDIS_CONFIG} --appendonly "$aof"'
)


class AddOnNotReady(RuntimeBackendError):
    code = "addon_not_ready"


def container_spec(addon: AddOn) -> ContainerSpec:
    return ContainerSpec(
        name=addon.container_name,
        image=settings.PAAS_ADDON_IMAGES[addon.kind],
        env=container_env(addon),
        port=addon.port,
        labels=addon.labels,
        network=addon.app.network,
        memory=settings.PAAS_ADDON_MEMORY,
        cpus=settings.PAAS_ADDON_CPUS,
        command=["sh", "-c", REDIS_START] if addon.kind == AddOnKind.REDIS else None,
        volumes={addon.volume: addon.data_path},
        aliases=[addon.alias],
        constraints=addon.placement_constraints,
    )


def container_env(addon: AddOn) -> dict[str, str]:
    """The official images' variable names: read once, when the data directory is new."""
    if addon.kind == AddOnKind.POSTGRES:
        return {
            "POSTGRES_USER": addon.username,
            "POSTGRES_PASSWORD": addon.password,
            "POSTGRES_DB": addon.database,
        }
    if addon.kind == AddOnKind.MARIADB:
        return {
            "MARIADB_USER": addon.username,
            "MARIADB_PASSWORD": addon.password,
            "MARIADB_DATABASE": addon.database,
            "MARIADB_RANDOM_ROOT_PASSWORD": "1",  # Slipway uses the app's account only
        }
    return {"REDIS_PASSWORD": addon.password}


# --- connections (from this host to the container's address on the app network) --------------


def connect(addon: AddOn, endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT):
    """A client connection to the add-on as its app account (the caller closes it)."""
    if addon.kind == AddOnKind.POSTGRES:
        return psycopg.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=addon.username,
            password=addon.password,
            dbname=addon.database,
            connect_timeout=max(1, int(timeout)),
            application_name="slipway",
        )
    if addon.kind == AddOnKind.MARIADB:
        # Imported here: the dashboard's URLs import this module, and each web process would
        # otherwise hold PyMySQL (about 2 MiB) whether or not any MariaDB add-on exists.
        import pymysql

        return pymysql.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=addon.username,
            password=addon.password,
            database=addon.database,
            connect_timeout=timeout,
            read_timeout=settings.PAAS_DB_VIEW_TIMEOUT_MS / 1000 + 10,
            charset="utf8mb4",
        )
    return redis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        password=addon.password,
        socket_connect_timeout=timeout,
        socket_timeout=timeout + 5,
    )


def connect_view(addon: AddOn, endpoint: Endpoint, timeout: float = CONNECT_TIMEOUT):
    """A connection for the database view: PostgreSQL as the read-only VIEW_ROLE (the app
    account is the server's superuser); MariaDB and Redis as the app account."""
    if addon.kind != AddOnKind.POSTGRES:
        return connect(addon, endpoint, timeout)
    return psycopg.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=VIEW_ROLE,
        password=addon.view_password,
        dbname=addon.database,
        connect_timeout=max(1, int(timeout)),
        application_name="slipway-view",
    )


def ensure_view_role(addon: AddOn, endpoint: Endpoint) -> None:
    """Create (or reset) VIEW_ROLE as the app account: it may log in and read every table
    (pg_read_all_data, PostgreSQL 14+) and nothing else — no writes, no COPY … TO PROGRAM,
    no server files — and its sessions start read-only."""
    conn = connect(addon, endpoint)
    conn.autocommit = True
    try:
        role = sql.Identifier(VIEW_ROLE)
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [VIEW_ROLE]).fetchone()
        conn.execute(
            sql.SQL(
                "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                "PASSWORD {}"
            ).format(
                sql.SQL("ALTER" if found else "CREATE"), role, sql.Literal(addon.view_password)
            )
        )
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
        conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(role))
    finally:
        conn.close()


def _probe(addon: AddOn, endpoint: Endpoint) -> None:
    client = connect(addon, endpoint, timeout=2)
    try:
        if addon.kind == AddOnKind.REDIS:
            client.ping()
    finally:
        client.close()


def wait_ready(addon: AddOn, runtime, timeout: float | None = None) -> float:
    """Poll until the add-on accepts its app account's connection; returns the seconds."""
    timeout = settings.PAAS_ADDON_START_TIMEOUT if timeout is None else timeout
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < timeout:
        if not runtime.is_running(addon.container_id):
            raise AddOnNotReady(f"the {addon.kind} container stopped: {_tail(runtime, addon)}")
        try:
            _probe(addon, runtime.endpoint(addon.container_id, addon.app.network))
        except Exception as exc:  # noqa: BLE001 - any client's refusal means "not yet"
            last = f"{type(exc).__name__}: {exc}"[:300]
            time.sleep(PROBE_INTERVAL)
            continue
        after_ready(addon, runtime)
        return time.monotonic() - started
    raise AddOnNotReady(f"{addon.kind} did not accept connections within {timeout:g}s ({last})")


def after_ready(addon: AddOn, runtime) -> None:
    if addon.kind == AddOnKind.POSTGRES:
        ensure_view_role(addon, runtime.endpoint(addon.container_id, addon.app.network))
    if addon.kind == AddOnKind.REDIS:  # see REDIS_START
        runtime.exec_to_stream(
            addon.container_id,
            ["redis-cli", "CONFIG", "SET", "appendonly", "yes"],
            lambda _chunk: None,
            env={"REDISCLI_AUTH": addon.password},
        )


def _tail(runtime, addon: AddOn) -> str:
    try:
        lines = runtime.logs(addon.container_id, limit=15)
    except RuntimeBackendError:
        return "(no logs)"
    return " | ".join(text for _, text in lines)[-1500:]


# --- dumps and restores ----------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]


def dump_command(addon: AddOn) -> Command:
    if addon.kind == AddOnKind.POSTGRES:
        return Command(
            [
                "pg_dump",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "-U",
                addon.username,
                "-d",
                addon.database,
            ],
            {"PGPASSWORD": addon.password},
        )
    if addon.kind == AddOnKind.MARIADB:
        return Command(
            [
                "mariadb-dump",
                "--single-transaction",
                "--routines",
                "--triggers",
                "--add-drop-table",
                "-u",
                addon.username,
                addon.database,
            ],
            {"MYSQL_PWD": addon.password},
        )
    # An RDB snapshot to stdout, from the server's own replication stream.
    return Command(["redis-cli", "--rdb", "-"], {"REDISCLI_AUTH": addon.password})


def restore_command(addon: AddOn) -> Command:
    """Reads the dump on stdin. Redis cannot load an RDB while it runs: its file is put
    beside the data and picked up by the next start (see REDIS_START)."""
    if addon.kind == AddOnKind.POSTGRES:
        return Command(
            [
                "psql",
                "-q",
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "-o",
                "/dev/null",
                "-U",
                addon.username,
                "-d",
                addon.database,
            ],
            {"PGPASSWORD": addon.password},
        )
    if addon.kind == AddOnKind.MARIADB:
        return Command(
            ["mariadb", "-u", addon.username, addon.database], {"MYSQL_PWD": addon.password}
        )
    return Command(
        ["sh", "-c", "cat > /data/restore.rdb.part && mv /data/restore.rdb.part /data/restore.rdb"],
        {},
    )


def dump_suffix(addon: AddOn) -> str:
    return ".rdb" if addon.kind == AddOnKind.REDIS else ".sql.gz"
