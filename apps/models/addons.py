"""Add-ons (PostgreSQL, MariaDB, Redis beside an app environment) and their backups.

An add-on is a container on the app's network with its data in a named volume; the app
finds it through one env var (DATABASE_URL or REDIS_URL) that points at the add-on's
network alias. Statuses move only through the methods below, each a guarded move of
paas.transitions along the tables here, so two workers (or a worker and a click) never
both win the same move.
"""

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import models
from django.utils import timezone

from paas import transitions
from paas.crypto import EncryptedTextField
from paas.transitions import InvalidTransition

# The PostgreSQL role the database view connects as (one per add-on's server): it reads
# every table and can do nothing else (deployments/adapters/addon_engines.py makes it).
VIEW_ROLE = "slipway_view"

# The old name: `except InvalidAddOnTransition` catches every refused move.
InvalidAddOnTransition = InvalidTransition


class AddOnKind(models.TextChoices):
    POSTGRES = "postgres", "PostgreSQL"
    MARIADB = "mariadb", "MariaDB"
    REDIS = "redis", "Redis"


# What differs between kinds and is plain data: the port the server listens on, the env var
# the app reads, where the data lives in the container (the same in the official images and
# Slipway's Debian-built ones), and the URL scheme the app's libraries expect.
KIND_FACTS = {
    AddOnKind.POSTGRES: {
        "port": 5432,
        "env_var": "DATABASE_URL",
        "data": "/var/lib/postgresql/data",
        "scheme": "postgres",
    },
    AddOnKind.MARIADB: {
        "port": 3306,
        "env_var": "DATABASE_URL",
        "data": "/var/lib/mysql",
        "scheme": "mysql",
    },
    AddOnKind.REDIS: {"port": 6379, "env_var": "REDIS_URL", "data": "/data", "scheme": "redis"},
}


class AddOnStatus(models.TextChoices):
    CREATING = "creating"
    RUNNING = "running"
    STOPPED = "stopped"  # on its way back up (a restart), or stopped by the engine
    FAILED = "failed"
    DETACHED = "detached"  # no container and no env var; the data volume is kept
    DELETING = "deleting"


S = AddOnStatus
# Every move an add-on may make. STOPPED is a restart on its way back up (of a failed one:
# a retry); DETACHED -> CREATING is attaching it again with its kept data.
ADDON_TRANSITIONS: dict[str, frozenset[str]] = {
    S.CREATING: frozenset({S.RUNNING, S.FAILED, S.DETACHED, S.DELETING}),
    S.RUNNING: frozenset({S.STOPPED, S.FAILED, S.DETACHED, S.DELETING}),
    S.STOPPED: frozenset({S.RUNNING, S.FAILED, S.DETACHED, S.DELETING}),
    S.FAILED: frozenset({S.CREATING, S.STOPPED, S.DETACHED, S.DELETING}),
    S.DETACHED: frozenset({S.CREATING, S.DELETING}),
    S.DELETING: frozenset(),
}
# The same table read the other way: where each move may start from.
ADDON_MOVES = {
    target: {source for source, targets in ADDON_TRANSITIONS.items() if target in targets}
    for target in AddOnStatus
}
# On the way somewhere: a worker is making, restarting or removing its container.
SETTLING_STATUSES = frozenset({S.CREATING, S.STOPPED, S.DELETING})


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


class AddOn(models.Model):
    environment = models.ForeignKey(
        "apps.Environment", on_delete=models.CASCADE, related_name="addons"
    )
    kind = models.CharField(max_length=16, choices=AddOnKind)
    alias = models.CharField(max_length=63, help_text="Its host name on the app's network.")
    container_name = models.CharField(max_length=200)
    container_id = models.CharField(max_length=80, blank=True)
    volume = models.CharField(max_length=200)
    username = models.CharField(max_length=63, blank=True)
    password = EncryptedTextField()
    database = models.CharField(max_length=63, blank=True)
    status = models.CharField(max_length=16, choices=AddOnStatus, default=AddOnStatus.CREATING)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    # Set once, when its first container is placed: its volume (the data) is on that node.
    node = models.CharField(
        max_length=64,
        blank=True,
        help_text="The Swarm node that holds its container and data (empty: this host).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment__app__name", "-environment__name", "kind"]
        constraints = [
            # One of each kind per environment: DATABASE_URL and REDIS_URL name one each.
            models.UniqueConstraint(fields=["environment", "kind"], name="addon_unique_kind"),
        ]
        verbose_name = "add-on"

    def __str__(self) -> str:
        return f"{self.environment} {self.kind}"

    @classmethod
    def new(cls, environment, kind: str) -> "AddOn":
        """An unsaved add-on with generated names and credentials."""
        app = environment.app
        base = f"{settings.PAAS_INSTANCE}-{app.name}-{environment.name}-{kind}"
        slug = _slug(app.name)
        return cls(
            environment=environment,
            kind=kind,
            alias=f"{kind}-{environment.name}",
            container_name=base,
            # A fresh suffix: data kept from an earlier add-on is never mistaken for this one's
            # (its credentials would not open it).
            volume=f"{base}-{secrets.token_hex(4)}",
            username="" if kind == AddOnKind.REDIS else f"u_{slug}"[:32],
            password=secrets.token_urlsafe(24),
            database="" if kind == AddOnKind.REDIS else slug[:63],
        )

    # --- facts -------------------------------------------------------------------------------

    @property
    def app(self):
        return self.environment.app

    @property
    def port(self) -> int:
        return KIND_FACTS[self.kind]["port"]

    @property
    def env_var(self) -> str:
        return KIND_FACTS[self.kind]["env_var"]

    @property
    def data_path(self) -> str:
        return KIND_FACTS[self.kind]["data"]

    @property
    def is_database(self) -> bool:
        """SQL databases: the ones the database view can query."""
        return self.kind in (AddOnKind.POSTGRES, AddOnKind.MARIADB)

    @property
    def labels(self) -> dict[str, str]:
        return {
            **self.app.resource_labels,
            "slipway.addon": self.kind,
            "slipway.environment": self.environment.name,
        }

    def connection_url(self, host: str | None = None, password: str | None = None) -> str:
        """The URL the app gets; host defaults to the alias its containers resolve, and
        password (given: a mask to show in its place) to the add-on's own."""
        scheme = KIND_FACTS[self.kind]["scheme"]
        where = f"{host or self.alias}:{self.port}"
        password = password or quote(self.password, safe="")
        if self.kind == AddOnKind.REDIS:
            return f"{scheme}://:{password}@{where}/0"
        return f"{scheme}://{quote(self.username, safe='')}:{password}@{where}/{self.database}"

    @property
    def view_password(self) -> str:
        """The view role's password, derived from the add-on's own: nothing more to store,
        and whoever could read it holds the add-on's superuser password already."""
        return hmac.new(
            self.password.encode(), b"slipway database view", hashlib.sha256
        ).hexdigest()

    @property
    def placement_constraints(self) -> list[str]:
        """Where its container may run: on its node once it has one (the data is there),
        until then where the app's tasks may."""
        if self.node:
            return [f"node.id=={self.node}"]
        return self.app.placement_constraints

    def pin_to(self, node_id: str) -> None:
        """Record the node its first container was put on; a later one never moves it."""
        if node_id and not self.node:
            self.node = node_id
            AddOn.objects.filter(pk=self.pk, node="").update(node=node_id)

    @property
    def is_usable(self) -> bool:
        """Running: it can be browsed, backed up and restored into."""
        return self.status == AddOnStatus.RUNNING

    @property
    def is_settling(self) -> bool:
        """On its way to another status (the page polls until it gets there)."""
        return self.status in SETTLING_STATUSES

    @property
    def can_restart(self) -> bool:
        return self.can_move_to(S.STOPPED)

    @property
    def is_detached(self) -> bool:
        """No container and no env var; attaching the same kind again brings its data back."""
        return self.status == S.DETACHED

    @property
    def can_delete_data(self) -> bool:
        return self.can_move_to(S.DELETING)

    # --- transitions -------------------------------------------------------------------------

    def can_move_to(self, target: str) -> bool:
        return transitions.allows(ADDON_TRANSITIONS, self.status, target)

    def _move(self, to: str, **fields) -> None:
        # update() skips auto_now: the time of the move is written here.
        fields = {"updated_at": timezone.now(), **fields}
        transitions.move(self, "status", ADDON_TRANSITIONS, to, **fields)

    def mark_creating(self) -> None:
        self._move(S.CREATING, error_code="", error_message="")

    def mark_running(self, container_id: str | None = None) -> None:
        extra = {"container_id": container_id} if container_id else {}
        self._move(S.RUNNING, error_code="", error_message="", **extra)

    def mark_stopped(self) -> None:
        self._move(S.STOPPED)

    def mark_failed(self, code: str, message: str) -> None:
        self._move(S.FAILED, error_code=code[:64], error_message=message[:2000])

    def mark_detached(self) -> None:
        self._move(S.DETACHED, container_id="")

    def mark_deleting(self) -> None:
        self._move(S.DELETING)


class BackupStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RestoreStatus(models.TextChoices):
    NONE = "", "never restored"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


B, R = BackupStatus, RestoreStatus
# A backup is taken once: pending -> running -> succeeded or failed. It fails from pending
# too: the sweeper fails one whose worker never started it.
BACKUP_TRANSITIONS: dict[str, frozenset[str]] = {
    B.PENDING: frozenset({B.RUNNING, B.FAILED}),
    B.RUNNING: frozenset({B.SUCCEEDED, B.FAILED}),
    B.SUCCEEDED: frozenset(),
    B.FAILED: frozenset(),
}
# A restore of it, as often as asked, one at a time: from any settled restore status a new
# one is requested; a pending one may finish without running (its worker refused it).
RESTORE_TRANSITIONS: dict[str, frozenset[str]] = {
    R.NONE: frozenset({R.PENDING}),
    R.PENDING: frozenset({R.RUNNING, R.SUCCEEDED, R.FAILED}),
    R.RUNNING: frozenset({R.SUCCEEDED, R.FAILED}),
    R.SUCCEEDED: frozenset({R.PENDING}),
    R.FAILED: frozenset({R.PENDING}),
}
# Not finished yet: a new backup of the add-on waits for it.
BACKUP_UNFINISHED = frozenset(s for s, targets in BACKUP_TRANSITIONS.items() if targets)
# Settled: no restore of it under way, so a new one may be asked for.
RESTORE_FINAL = {status for status, targets in RESTORE_TRANSITIONS.items() if R.PENDING in targets}
RESTORE_UNDER_WAY = frozenset(RESTORE_TRANSITIONS) - RESTORE_FINAL


class Backup(models.Model):
    """One dump of an add-on, in a file under PAAS_BACKUP_DIR (the row says where)."""

    addon = models.ForeignKey(AddOn, on_delete=models.CASCADE, related_name="backups")
    scheduled = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=BackupStatus, default=BackupStatus.PENDING)
    path = models.CharField(max_length=500, blank=True)  # relative to PAAS_BACKUP_DIR
    size = models.BigIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    restore_status = models.CharField(max_length=16, choices=RestoreStatus, blank=True, default="")
    restore_message = models.TextField(blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"backup {self.pk} of {self.addon}"

    @property
    def file(self) -> Path | None:
        return Path(settings.PAAS_BACKUP_DIR) / self.path if self.path else None

    @property
    def age(self):
        return timezone.now() - self.created_at

    @property
    def is_restorable(self) -> bool:
        """Taken, its file still there, and a restore of it may be asked for now."""
        return (
            self.status == B.SUCCEEDED
            and transitions.allows(RESTORE_TRANSITIONS, self.restore_status, R.PENDING)
            and self.file is not None
            and self.file.is_file()
        )

    @property
    def can_restore(self) -> bool:
        """What the restore button asks: this backup is restorable into its running add-on."""
        return self.addon.is_usable and self.is_restorable

    # --- transitions of the backup ---------------------------------------------------------

    def _move(self, to: str, **fields) -> None:
        transitions.move(self, "status", BACKUP_TRANSITIONS, to, **fields)

    def claim(self, path: str) -> bool:
        """pending -> running; False when another worker took it (a duplicate delivery)."""
        return _moved(self._move, B.RUNNING, path=path)

    def mark_succeeded(self, size: int) -> None:
        self._move(B.SUCCEEDED, size=size, finished_at=timezone.now())

    def mark_failed(self, message: str) -> None:
        """A backup that settled meanwhile (the sweeper failed it) stays as it is."""
        _moved(self._move, B.FAILED, message=message[:4000], finished_at=timezone.now())

    # --- transitions of its restore --------------------------------------------------------

    def _move_restore(self, to: str, **fields) -> None:
        subject = f"restore of backup {self.pk}"
        transitions.move(self, "restore_status", RESTORE_TRANSITIONS, to, subject, **fields)

    def request_restore(self) -> bool:
        return _moved(self._move_restore, R.PENDING, restore_message="")

    def claim_restore(self) -> bool:
        return _moved(self._move_restore, R.RUNNING)

    def finish_restore(self, ok: bool, message: str = "") -> None:
        _moved(
            self._move_restore,
            R.SUCCEEDED if ok else R.FAILED,
            restore_message=message[:4000],
            restored_at=timezone.now(),
        )


def _moved(move, to: str, **fields) -> bool:
    """Whether the move was made: for the backup moves whose callers expect a refusal
    (a duplicate task delivery, a restore already asked for) rather than an error."""
    try:
        move(to, **fields)
    except InvalidTransition:
        return False
    return True
