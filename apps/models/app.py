"""The applications users deploy: App, its environments, env vars and API tokens."""

import functools
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from apps.models.teams import Membership, Team
from apps.validators import (
    validate_app_name,
    validate_env_key,
    validate_env_value,
    validate_environment_name,
)
from deployments.models import ACTIVE_STATUSES, WEB, Deployment, Status
from paas.crypto import EncryptedTextField

COMMAND_MAX = 2000


class AppCleanupRequested(Exception):
    """The app is being deleted: nothing new may start for it."""


class BuildMethod(models.TextChoices):
    AUTO = "auto", "Auto-detect"
    DOCKERFILE = "dockerfile", "Dockerfile"
    PYTHON = "python", "Python"
    NODE = "node", "Node.js"
    GO = "go", "Go"
    STATIC = "static", "Static site"


class AppStatus(models.TextChoices):
    CREATED = "created"
    DEPLOYING = "deploying"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"
    CRASHED = "crashed"
    DELETING = "deleting"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PROTECTED = "protected", "Protected (HTTP basic auth)"
    INTERNAL = "internal", "Internal (not routed)"


class EnvironmentName:
    """The two names the platform itself relies on (promotion goes staging → production);
    any other DNS label is a valid environment name too (validate_environment_name)."""

    PRODUCTION = "production"
    STAGING = "staging"


class PreviewDatabase(models.TextChoices):
    SEED = "seed", "Its own database, seeded from the template's latest backup"
    EMPTY = "empty", "Its own empty database"
    NONE = "none", "No database of its own"


class HostTaken(Exception):
    """An environment's host label (see Environment.label_for) is another environment's."""


# Every new app gets these; staging can be deleted like any environment but production.
# What a new app may start with: production always, staging when asked for at creation
# (deployments.services.create_app); any other environment is made later.
STARTING_ENVIRONMENTS = (EnvironmentName.PRODUCTION, EnvironmentName.STAGING)


def app_poll_state(user, name: str) -> tuple | None:
    """What the status strip's poll compares, for the app called `name` if
    AppQuerySet.visible_to(user) has it, else None: (pk, status, (newest deployment's
    number, status) or (0, ""), each environment's (name, live_deployment_id, stopped) by
    position), in one statement.

    One hand-written statement rather than the three ORM queries it replaces, because the
    poll runs every two seconds in every open app page: composing and compiling those
    queries was more than half of its CPU (bench/run --dashboard). The rule is
    visible_to's, spelled in SQL: tests/apps/test_poll_state.py holds the two equal for
    staff, every role, an outsider and a token."""
    sql, params = _poll_state_sql(user, name)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    pk, status, number, latest_status = rows[0][:4]
    envs = [(n, live, bool(stopped)) for *_, n, live, stopped in rows if n is not None]
    return pk, status, (number or 0, latest_status or ""), envs


def _poll_state_sql(user, name: str) -> tuple[str, list]:
    """app_poll_state's statement and parameters: one row per environment (one with
    NULLs when there is none), each with the app's and its newest deployment's columns.
    Plain SQL that PostgreSQL and SQLite both run; names from the models' _meta."""
    visible = VisibleSql.of(user)
    where = " AND ".join(["a.name = %s", *visible.conditions])
    sql = f"{_poll_state_select()}{visible.join} WHERE {where} ORDER BY e.position, e.id"
    return sql, [*visible.join_params, name, *visible.condition_params]


@dataclass(frozen=True)
class VisibleSql:
    """AppQuerySet.visible_to's rule in SQL, for the apps table aliased `a`: a join and
    conditions for the WHERE, each with its parameters. Staff see every app; anyone else
    the apps of their teams, through a join on their own membership; a token user only
    the token's team's. tests/apps/test_poll_state.py and test_app_list_rows.py hold each
    statement that uses it equal to visible_to."""

    join: str = ""
    join_params: tuple = ()
    conditions: tuple[str, ...] = ()
    condition_params: tuple = ()

    @classmethod
    def of(cls, user) -> "VisibleSql":
        if user.is_staff:
            return cls()
        membership = Membership._meta.db_table
        join = f" JOIN {membership} m ON m.team_id = a.team_id AND m.user_id = %s"
        token_team_id = getattr(user, "token_team_id", None)
        if token_team_id is None:
            return cls(join, (user.pk,))
        return cls(join, (user.pk,), ("a.team_id = %s",), (token_team_id,))


@functools.cache
def _poll_state_select() -> str:
    app, env, deployment = (m._meta.db_table for m in (App, Environment, Deployment))
    newest = f"FROM {deployment} d WHERE d.app_id = a.id ORDER BY d.number DESC LIMIT 1"
    return (
        f"SELECT a.id, a.status, (SELECT d.number {newest}), (SELECT d.status {newest}),"
        f" e.name, e.live_deployment_id, e.stopped"
        f" FROM {app} a LEFT JOIN {env} e ON e.app_id = a.id"
    )


class AppQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Staff see every app (the platform's operators, as in the admin); everyone else
        those of the teams they reach (a token: its one team)."""
        # With its team: app_for (apps/access.py) asks the user's role on it next, on every
        # request for an app; a second query for the team each time otherwise.
        apps = self.select_related("team")
        if user.is_staff:
            return apps
        # A join, not `team IN (the teams they reach)`: one row per app all the same (a user
        # is a member of a team once), and with_role_of reads the role from the same join.
        apps = apps.filter(team__memberships__user=user)
        token_team_id = getattr(user, "token_team_id", None)
        return apps if token_team_id is None else apps.filter(team_id=token_team_id)

    def with_role_of(self, user):
        """visible_to(user), each app with viewer_role: the user's role on its team (None for
        staff outside it). app_for asks that role on every request for an app: read in the
        same query, it is not a second one (Team.remember_role)."""
        apps = self.visible_to(user)
        if not user.is_staff:
            return apps.annotate(viewer_role=F("team__memberships__role"))
        role = Membership.objects.filter(team=OuterRef("team"), user=user).order_by()
        return apps.annotate(viewer_role=Subquery(role.values("role")[:1]))


class App(models.Model):
    name = models.CharField(max_length=63, validators=[validate_app_name])
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="apps",
        help_text="Who made it: their provider token clones and builds it.",
    )
    # RESTRICT: a team with apps is not deleted, unless by its personal user's deletion,
    # which takes that user's apps along (owner, CASCADE).
    team = models.ForeignKey(Team, on_delete=models.RESTRICT, related_name="apps")
    repository = models.CharField(max_length=500)
    branch = models.CharField(max_length=255, blank=True, help_text="Empty: the default branch.")
    build_method = models.CharField(max_length=16, choices=BuildMethod, default=BuildMethod.AUTO)
    port = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: Slipway sets $PORT and the app listens on it."
    )
    health_check_path = models.CharField(max_length=255, default="/")
    # Heroku's three commands; empty: the Procfile's line, or what the build detects.
    build_command = models.CharField(
        max_length=COMMAND_MAX, blank=True, help_text="Runs in the image build, after installs."
    )
    start_command = models.CharField(
        max_length=COMMAND_MAX, blank=True, help_text="The web process (over the Procfile's)."
    )
    release_command = models.CharField(
        max_length=COMMAND_MAX,
        blank=True,
        help_text="Runs once per deployment, before it takes traffic (over the Procfile's).",
    )
    placement = models.CharField(
        max_length=600,
        blank=True,
        help_text="Swarm placement constraints for this app's tasks, comma-separated "
        "(node.labels.disk==ssd); with PAAS_RUNTIME=swarm, beside PAAS_SWARM_CONSTRAINTS.",
    )
    auto_rollback = models.BooleanField(
        default=True,
        help_text="Roll back by itself when a deployment crash-loops or fails requests "
        "soon after going live (PAAS_AUTO_ROLLBACK_WINDOW_SECONDS).",
    )
    # Preview environments per pull request (deployments/services/previews.py).
    previews_enabled = models.BooleanField(
        default=False, help_text="Deploy every pull request to its own pr-<number> environment."
    )
    preview_template = models.CharField(
        max_length=30,
        default=EnvironmentName.PRODUCTION,
        help_text="The environment whose env vars (and database kind) a preview starts from.",
    )
    preview_database = models.CharField(
        max_length=8,
        choices=PreviewDatabase,
        default=PreviewDatabase.SEED,
        help_text="seed: its own database restored from the template's latest backup; "
        "empty: its own empty one; none: no database of its own.",
    )
    previews_allow_forks = models.BooleanField(
        default=False,
        help_text="Also deploy pull requests from forks (their code runs with the template's "
        "env vars).",
    )
    status = models.CharField(max_length=16, choices=AppStatus, default=AppStatus.CREATED)
    webhook_secret = EncryptedTextField(blank=True, default="")
    webhook_environment = models.CharField(
        max_length=30,
        default=EnvironmentName.PRODUCTION,
        help_text="Where a push to the app's branch deploys.",
    )
    # The push webhook Slipway registered on the Git provider, removed again on delete.
    webhook_provider = models.CharField(max_length=16, blank=True, editable=False)
    webhook_repository = models.CharField(max_length=300, blank=True, editable=False)
    webhook_hook_id = models.CharField(max_length=64, blank=True, editable=False)
    webhook_note = models.CharField(max_length=300, blank=True, editable=False)
    deployment_counter = models.PositiveIntegerField(default=0, editable=False)
    # The app network's IPv4 subnet, taken from PAAS_NETWORK_POOL the first time it is made
    # (the engine's own address pools run out after about 30 networks).
    subnet = models.CharField(max_length=43, blank=True, default="", editable=False)
    cleanup_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AppQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="app_name_unique_ci"),
            models.UniqueConstraint(
                fields=["subnet"], condition=~models.Q(subnet=""), name="app_subnet_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.name = self.name.lower()
        if not self.webhook_secret:
            self.webhook_secret = secrets.token_urlsafe(32)
        if not self._state.adding:
            return super().save(*args, **kwargs)
        # The app and its production at once: a host label that is taken (app shop-dev
        # while app shop has env dev) leaves no app behind.
        if self.team_id is None:
            self.team = Team.personal_for(self.owner)
        with transaction.atomic():
            super().save(*args, **kwargs)
            Environment.create_for(self, EnvironmentName.PRODUCTION)

    @property
    def network(self) -> str:
        """The app's Docker network (one per app, shared by its environments and add-ons)."""
        return f"{settings.PAAS_INSTANCE}-{self.name}"

    @property
    def placement_constraints(self) -> list[str]:
        """Its Swarm placement constraints (checked when they were set)."""
        return [part.strip() for part in self.placement.split(",") if part.strip()]

    @property
    def resource_labels(self) -> dict[str, str]:
        """Labels on everything made for this app in Docker, for cleanup and reconciliation."""
        return {"slipway.instance": settings.PAAS_INSTANCE, "slipway.app": self.name}

    @property
    def cleanup_requested(self) -> bool:
        return self.cleanup_requested_at is not None

    @property
    def open_previews(self):
        """Its preview environments not being deleted, by pull request number."""
        return self.previews.select_related("environment__app").filter(
            environment__cleanup_requested_at__isnull=True
        )

    def environment(self, name: str) -> "Environment":
        return self.environments.get(name=name)

    def environment_choices(self) -> list[tuple[str, str]]:
        return [(env.name, env.name.capitalize()) for env in self.environments.all()]

    def new_deployment(self, environment: "Environment", **fields):
        """The only factory for deployments: numbers are per app, gap-free and unique.

        The app row is locked for the rest of the transaction, so two deployments created at
        the same moment queue on the lock and take consecutive numbers.
        """
        if environment.app_id != self.pk:
            raise ValueError("environment belongs to another app")
        with transaction.atomic():
            locked = App.objects.select_for_update().get(pk=self.pk)
            if locked.cleanup_requested_at is not None:
                raise AppCleanupRequested(f"app {self.name} is being deleted")
            if Environment.objects.filter(
                pk=environment.pk, cleanup_requested_at__isnull=False
            ).exists():
                raise EnvironmentCleanupRequested(f"{environment} is being deleted")
            locked.deployment_counter += 1
            App.objects.filter(pk=self.pk).update(deployment_counter=locked.deployment_counter)
            self.deployment_counter = locked.deployment_counter
            return Deployment.objects.create(
                app=self, environment=environment, number=locked.deployment_counter, **fields
            )

    def refresh_status(self) -> None:
        """Settle the app's status from its environments and deployments (never while its
        deletion is under way: that status is the cleanup's)."""
        self.refresh_from_db(fields=["status", "cleanup_requested_at"])
        if self.cleanup_requested_at:
            return
        status = self.derived_status()
        if status != self.status:
            App.objects.filter(pk=self.pk).update(status=status)
            self.status = status

    def derived_status(self) -> str:
        if self.deployments.filter(status__in=ACTIVE_STATUSES).exists():
            return AppStatus.DEPLOYING
        envs = list(self.environments.all())
        if any(env.live_deployment_id and not env.stopped for env in envs):
            return AppStatus.RUNNING
        if any(env.live_deployment_id and env.stopped for env in envs):
            return AppStatus.STOPPED
        latest = self.deployments.order_by("-number").first()
        if latest and latest.status == Status.FAILED:
            return AppStatus.FAILED
        return AppStatus.CREATED

    def request_cleanup(self) -> None:
        self.cleanup_requested_at = self.cleanup_requested_at or timezone.now()
        self.status = AppStatus.DELETING
        self.save(update_fields=["cleanup_requested_at", "status", "updated_at"])


class EnvironmentCleanupRequested(AppCleanupRequested):
    """The environment is being deleted: nothing new may start in it."""


class Environment(models.Model):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=30, validators=[validate_environment_name])
    # The first label of its platform host name (label_for), unique across every app: the
    # database itself proves no environment answers on another's host.
    host_label = models.CharField(max_length=100, unique=True, editable=False)
    # Production first, then the others in the order they were made.
    position = models.PositiveSmallIntegerField(default=0, editable=False)
    cleanup_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    live_deployment = models.ForeignKey(
        "deployments.Deployment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stopped = models.BooleanField(default=False)
    # How many web containers of the live deployment serve it, balanced by the router.
    replicas = models.PositiveSmallIntegerField(default=1)
    # The other process types' counts ({"worker": 2}); a type not named runs one container.
    formation = models.JSONField(default=dict, blank=True)
    # Who may reach it: everyone, holders of a password (stored hashed), or only the app's
    # own processes on its network.
    visibility = models.CharField(max_length=16, choices=Visibility, default=Visibility.PUBLIC)
    basic_auth_user = models.CharField(max_length=64, blank=True)
    basic_auth_hash = models.CharField(max_length=128, blank=True, editable=False)
    # The app keeps running; the router answers 503 with the message.
    maintenance = models.BooleanField(default=False)
    maintenance_message = models.TextField(blank=True, max_length=2000)
    max_body_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: PAAS_MAX_BODY_BYTES."
    )

    class Meta:
        ordering = ["app__name", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["app", "name"], name="environment_unique")]

    def __str__(self) -> str:
        return f"{self.app.name}/{self.name}"

    @staticmethod
    def label_for(app_name: str, name: str) -> str:
        """production answers on <app>.<domain>, every other environment on <app>-<env>."""
        return app_name if name == EnvironmentName.PRODUCTION else f"{app_name}-{name}"

    @classmethod
    def create_for(cls, app: App, name: str, **fields) -> "Environment":
        """A new environment last in the app's order; HostTaken (and nothing made) when
        its host label is another environment's."""
        label = cls.label_for(app.name, name)
        last = app.environments.aggregate(models.Max("position"))["position__max"]
        position = 0 if name == EnvironmentName.PRODUCTION else (last or 0) + 1
        try:
            with transaction.atomic():
                return cls.objects.create(
                    app=app, name=name, host_label=label, position=position, **fields
                )
        except IntegrityError as error:
            if cls.objects.filter(host_label=label).exists():
                raise HostTaken(label) from error
            raise

    @property
    def is_production(self) -> bool:
        return self.name == EnvironmentName.PRODUCTION

    @property
    def cleanup_requested(self) -> bool:
        return self.cleanup_requested_at is not None

    @property
    def hostname(self) -> str:
        label = self.host_label or self.label_for(self.app.name, self.name)
        return f"{label}.{settings.PAAS_DOMAIN}"

    @property
    def url(self) -> str:
        if settings.PAAS_DOMAIN == "localhost" or settings.PAAS_DOMAIN.endswith(".localhost"):
            port = settings.PAAS_PROXY_HTTP_PORT
            return f"http://{self.hostname}" + ("" if port == 80 else f":{port}")
        return f"https://{self.hostname}"

    @property
    def network(self) -> str:
        return self.app.network

    @property
    def is_routed(self) -> bool:
        return self.visibility != Visibility.INTERNAL

    @property
    def body_limit(self) -> int:
        return self.max_body_bytes or settings.PAAS_MAX_BODY_BYTES

    @property
    def route_id(self) -> str:
        """The router's name for this environment's route (and its file)."""
        return f"{settings.PAAS_INSTANCE}-{self.app.name}-{self.name}"

    @property
    def hostnames(self) -> list[str]:
        """Every host this environment answers on: its platform address, then custom domains."""
        verified = self.domains.filter(verified_at__isnull=False).order_by("hostname")
        return [self.hostname, *verified.values_list("hostname", flat=True)]

    def process_count(self, process_type: str) -> int:
        """How many containers of this process type run (web: `replicas`)."""
        if process_type == WEB:
            return self.replicas
        return int(self.formation.get(process_type, 1))

    def env_dict(self) -> dict[str, str]:
        return {var.key: var.value for var in self.env_vars.all()}

    def volume_mounts(self) -> dict[str, str]:
        return {volume.docker_name: volume.mount_path for volume in self.volumes.all()}


def domain_token() -> str:
    return secrets.token_urlsafe(24)


class Domain(models.Model):
    """A custom host name for an environment, beside <app>.<PAAS_DOMAIN>; unique platform-wide.

    Claimed, it is not routed (nor given a certificate) until its owner proves control of
    it: the router answers CHECK_PATH/<token> for that host alone, and Slipway fetches it
    back through the name's own DNS (deployments/services/domains.py)."""

    CHECK_PATH = "/.well-known/slipway-domain/"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="domains")
    hostname = models.CharField(max_length=253, unique=True)
    token = models.CharField(max_length=64, default=domain_token, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    @property
    def check_path(self) -> str:
        return f"{self.CHECK_PATH}{self.token}"

    @property
    def check_url(self) -> str:
        return f"http://{self.hostname}{self.check_path}"

    @property
    def check_route_id(self) -> str:
        """The router's route that answers the check for this host while it is unverified
        (it cannot be an environment's: those end in the environment's name)."""
        return f"{settings.PAAS_INSTANCE}-domaincheck-{self.pk}"

    @classmethod
    def pending_for_check_route(cls, route_id: str) -> "Domain | None":
        prefix = f"{settings.PAAS_INSTANCE}-domaincheck-"
        number = route_id.removeprefix(prefix)
        if not route_id.startswith(prefix) or not number.isdigit():
            return None
        return cls.objects.filter(pk=int(number), verified_at__isnull=True).first()


class Volume(models.Model):
    """A named Docker volume mounted into an environment's containers; kept across deploys."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="volumes")
    name = models.CharField(max_length=32)
    mount_path = models.CharField(max_length=255)
    # The engine's name for it, fixed when the row is made and never recomposed: from the
    # row's id, which no other app can spell (when names were <instance>-<app>-<env>-<name>,
    # app shop's volume production-data was app shop-production's volume data). Volumes made
    # before keep the name they were made with (migration 0012).
    docker_name = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="volume_name_unique"),
            models.UniqueConstraint(
                fields=["environment", "mount_path"], name="volume_path_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} → {self.mount_path}"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        if not self.docker_name:
            self.docker_name = f"{settings.PAAS_INSTANCE}-vol-{self.pk}"
            Volume.objects.filter(pk=self.pk).update(docker_name=self.docker_name)


class EnvVar(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="env_vars")
    key = models.CharField(max_length=255, validators=[validate_env_key])
    value = EncryptedTextField(validators=[validate_env_value], blank=True)
    # Left out of the copy a preview environment starts from (a secret forks must not see).
    not_for_previews = models.BooleanField(default=False)
    # Only the team's admins and owners may read or change it; developers see its key.
    protected = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["environment", "key"], name="envvar_unique")]
        verbose_name = "env var"

    def __str__(self) -> str:
        return f"{self.key}=••••••"

    @property
    def masked(self) -> str:
        return "••••••" if self.value else ""
