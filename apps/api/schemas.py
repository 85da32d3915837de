"""Every /api/v1 payload, in and out: what ninja validates requests against, what it
documents in openapi.json, and the one place an object's JSON form is defined.

Output schemas read straight from the models (ninja resolves `resolve_<field>` and plain
attributes); request schemas check types only and leave the rules to apps.forms and the
services, so the API, the dashboard and the admin refuse the same things the same way.
"""

import re
from datetime import datetime
from typing import Annotated, Literal

from django.conf import settings as django_settings
from django.http import Http404
from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    StrictInt,
    WithJsonSchema,
)
from pydantic_core import PydanticUseDefault

from apps.models import AddOnKind, BuildMethod, NotificationEvent
from apps.models.app import Visibility
from deployments.services.webhooks import webhook_url

# --- field types ----------------------------------------------------------------------------

# Python's isoformat (microseconds, "+00:00"), as the API has always answered, rather than
# the JSON encoder's millisecond "Z" form.
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

APP_NAME = re.compile(r"[A-Za-z0-9-]{1,63}")
HOST_NAME = re.compile(r"[A-Za-z0-9.-]{1,253}")


def _app_name_or_404(name: str) -> str:
    # No app can have such a name: not found, as before, without asking the database
    # (which cannot even compare a string holding a NUL byte).
    if not APP_NAME.fullmatch(name):
        raise Http404("no such app")
    return name


def _host_name(name: str) -> str:
    if not HOST_NAME.fullmatch(name):
        raise ValueError("Not a host name.")
    return name


AppName = Annotated[
    str,
    AfterValidator(_app_name_or_404),
    WithJsonSchema({"type": "string", "pattern": f"^{APP_NAME.pattern}$"}),
]
HostName = Annotated[
    str,
    AfterValidator(_host_name),
    WithJsonSchema({"type": "string", "pattern": f"^{HOST_NAME.pattern}$"}),
]
# Database ids and deployment numbers: the URL only routes digits, so nothing negative.
Id = Annotated[int, Field(ge=0)]


def _choice(values) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(values)})


# The services refuse an unknown environment, add-on kind or build method themselves (with
# their own code and message); the schema only tells clients the choices. Environments are
# the app's own rows (GET /apps/<name>/environments lists them): any DNS label.
EnvironmentChoice = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,29}$"})
]
Build = Annotated[str, _choice(BuildMethod.values)]
AddOnKindName = Annotated[str, _choice(AddOnKind.values)]

TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes"}, {"", "0", "false", "no"}


def _flag(raw) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError("Use true or false.")
    return word in TRUE_WORDS


def _whole_number(raw) -> int:
    if raw == "":
        raise PydanticUseDefault()  # ?after= means not given, as it always has
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    raise ValueError("Expected a non-negative whole number.")


# Query flags: true/false, 1/0, yes/no; anything else is refused.
Flag = Annotated[bool, BeforeValidator(_flag)]
# The volume endpoint has only ever deleted data on the exact word "true" (anything else
# keeps it): deleting data is not a place to start guessing what a caller meant.
OnlyTrue = Annotated[
    bool,
    BeforeValidator(lambda raw: raw is True or raw == "true"),
    WithJsonSchema({"type": "boolean"}),
]
# Cursors and limits in the query.
WholeNumber = Annotated[
    int,
    PlainValidator(_whole_number),
    WithJsonSchema({"type": "integer", "minimum": 0}),
]
# {"production": {"KEY": "value"}, "staging": {...}}
EnvPayload = dict[str, dict[str, str]]


# What a secret value reads as where the caller may not see it (a read-only token).
MASKED = "••••••"


# --- errors ---------------------------------------------------------------------------------


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] | None = Field(
        None, description="Per field, what is wrong with it (only when fields are at fault)."
    )


class ErrorOut(Schema):
    error: ErrorBody


def answers(status: int, schema, *refusals: int) -> dict:
    """An operation's documented answers: its success, 401 (every operation takes a token)
    and the refusals it can give, all in the one error format."""
    return {status: schema, 401: ErrorOut, **{code: ErrorOut for code in refusals}}


class Failure(Schema):
    """What went wrong with a deployment, an add-on or a delivery."""

    code: str
    message: str


def _failure(code: str, message: str) -> Failure | None:
    return Failure(code=code, message=message) if code else None


# --- apps -----------------------------------------------------------------------------------


class AppOut(Schema):
    name: str
    repository: str
    branch: str
    build: str
    port: int | None
    health_check_path: str
    build_command: str
    start_command: str
    release_command: str
    auto_rollback: bool
    placement: str = Field(description="Swarm placement constraints, comma-separated.")
    status: str
    urls: dict[str, str]
    live: dict[str, int | None] = Field(description="The live deployment's number per environment.")
    created_at: Timestamp
    updated_at: Timestamp

    @staticmethod
    def resolve_build(app) -> str:
        return app.build_method

    @staticmethod
    def resolve_urls(app) -> dict[str, str]:
        return {env.name: env.url for env in app.environments.all()}

    @staticmethod
    def resolve_live(app) -> dict[str, int | None]:
        return {
            env.name: env.live_deployment.number if env.live_deployment_id else None
            for env in app.environments.all()
        }


class AppUpdatedOut(AppOut):
    changed: list[str]
    redeploy_needed: bool

    @staticmethod
    def resolve_changed(app, context) -> list[str]:
        return context["changed"]

    @staticmethod
    def resolve_redeploy_needed(app, context) -> bool:
        # Settings take effect on the next deployment, so any change calls for one.
        return bool(context["changed"])

    @classmethod
    def of(cls, app, changed: list[str]) -> "AppUpdatedOut":
        return cls.from_orm(app, context={"changed": changed})


class AppListOut(Schema):
    apps: list[AppOut]


class AppDeletingOut(Schema):
    name: str
    status: str


COMMAND_DOCS = {
    "build_command": "Runs in the image build after dependencies are installed.",
    "start_command": "The web process's command (over the Procfile and detection).",
    "release_command": "Runs once per deployment before it takes traffic (over the Procfile).",
}


class AppCreateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str
    repository: str
    branch: str | None = Field(None, description="Empty: the repository's default branch.")
    build: Build | None = Field(None, description="Empty: auto.")
    port: int | None = None
    health_check_path: str | None = Field(None, description="Empty: /.")
    env: EnvPayload | None = Field(
        None, description="Env vars per environment: production, and staging (which it makes)."
    )
    staging: bool = Field(False, description="Make a staging environment too.")
    team: int | None = Field(
        None, description="The team's id (you a developer or above there); empty: yours."
    )
    deploy: bool = Field(False, description="Queue a production deployment at once.")
    build_command: str | None = Field(None, description=COMMAND_DOCS["build_command"])
    start_command: str | None = Field(None, description=COMMAND_DOCS["start_command"])
    release_command: str | None = Field(None, description=COMMAND_DOCS["release_command"])

    def form_data(self) -> dict:
        """What AppCreateForm checks: empty values mean the defaults."""
        return {
            "name": self.name,
            "repository": self.repository,
            "branch": self.branch or "",
            "build_method": self.build or BuildMethod.AUTO,
            "port": self.port,
            "health_check_path": self.health_check_path or "/",
            "build_command": self.build_command or "",
            "start_command": self.start_command or "",
            "release_command": self.release_command or "",
        }


class AppPatchIn(Schema):
    """Only the fields given change; the rest keep their value."""

    model_config = ConfigDict(extra="forbid")

    repository: str = None
    branch: str | None = None
    build: Build | None = None
    build_method: Build | None = Field(None, description="The older name of `build`.")
    port: int | None = None
    health_check_path: str | None = None
    build_command: str | None = Field(None, description=COMMAND_DOCS["build_command"])
    start_command: str | None = Field(None, description=COMMAND_DOCS["start_command"])
    release_command: str | None = Field(None, description=COMMAND_DOCS["release_command"])
    auto_rollback: bool | None = Field(
        None, description="Roll back by itself when a release goes bad soon after going live."
    )
    placement: str | None = Field(
        None,
        description="Swarm placement constraints for the app's tasks, comma-separated "
        "(node.labels.disk==ssd); PAAS_RUNTIME=swarm only. Empty: none.",
    )
    env: EnvPayload | None = Field(None, description="Env vars to set (others are kept).")


# --- deployments ----------------------------------------------------------------------------


class DeploymentOut(Schema):
    number: int
    status: str
    environment: str
    trigger: str
    step: str
    error: Failure | None
    image: str | None
    commit: str | None
    branch: str
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None

    @staticmethod
    def resolve_environment(deployment) -> str:
        return deployment.environment.name

    @staticmethod
    def resolve_error(deployment) -> Failure | None:
        return _failure(deployment.error_code, deployment.error_message)

    @staticmethod
    def resolve_image(deployment) -> str | None:
        return deployment.image_id or None

    @staticmethod
    def resolve_commit(deployment) -> str | None:
        return deployment.commit_sha or None


class DeploymentListOut(Schema):
    deployments: list[DeploymentOut]


class QueuedOut(Schema):
    """A deployment just queued: follow it at /apps/{name}/deployments/{number}."""

    number: int
    status: str
    environment: str

    @staticmethod
    def resolve_environment(deployment) -> str:
        return deployment.environment.name


class DeployIn(Schema):
    environment: EnvironmentChoice = "production"


class LogLineOut(Schema):
    cursor: int
    text: str

    @staticmethod
    def resolve_cursor(line) -> int:
        return line.id


class DeploymentLogOut(Schema):
    lines: list[LogLineOut]
    next: int = Field(description="Pass as ?after= to get the lines after these.")
    final: bool = Field(description="The deployment is over: no more lines will come.")

    @classmethod
    def page(cls, deployment, lines: list, after: int) -> "DeploymentLogOut":
        return cls(lines=lines, next=lines[-1].id if lines else after, final=deployment.is_final)


class RuntimeLineOut(Schema):
    ns: int = Field(description="When the line was written, in nanoseconds since the epoch.")
    text: str
    process: str = Field(description="web, worker, …, or addon-<kind>.")
    replica: int
    deployment: int | None = Field(description="The number of the deployment that ran it.")
    stream: str = Field(description="stdout or stderr.")


class RuntimeLogOut(Schema):
    lines: list[RuntimeLineOut]
    next: int = Field(description="Pass as ?since= to get the lines after these.")

    @classmethod
    def page(cls, lines: list, since: int) -> "RuntimeLogOut":
        return cls(
            lines=[RuntimeLineOut.from_orm(line) for line in lines],
            next=lines[-1].ns if lines else since,
        )


# --- actions --------------------------------------------------------------------------------


class ActionIn(Schema):
    environment: EnvironmentChoice = "production"


class PowerOut(Schema):
    environment: str
    stopped: bool


class ApprovalRef(Schema):
    id: int
    status: str


class ApprovalPendingOut(Schema):
    """The promotion waits for a second person's approval."""

    approval: ApprovalRef


WEBHOOK_PROVIDERS = ("github", "gitlab", "gitea")


class WebhookOut(Schema):
    urls: dict[str, str]
    secret: str | None = Field(
        description="Shown to the team's admins and owners only, never to a read-only token."
    )
    environment: str
    registered: bool
    provider: str | None
    note: str

    @classmethod
    def of(cls, app, reveal: bool) -> "WebhookOut":
        """`reveal`: the caller may see the secret (apps/access.py's OWN, not a read token)."""
        return cls(
            urls={provider: webhook_url(app, provider) for provider in WEBHOOK_PROVIDERS},
            secret=app.webhook_secret if reveal else None,
            environment=app.webhook_environment,
            registered=bool(app.webhook_hook_id),
            provider=app.webhook_provider or None,
            note=app.webhook_note,
        )


# --- add-ons and backups --------------------------------------------------------------------


class AddOnOut(Schema):
    id: int
    kind: str
    environment: str
    status: str
    env_var: str
    host: str
    port: int
    database: str | None
    username: str | None
    volume: str
    node: str = Field(
        description="The Swarm node id that holds its container and data (empty on one host)."
    )
    error: Failure | None
    created_at: Timestamp
    url: str | None = Field(
        None,
        description="The connection URL; only with ?reveal=true, its password masked for a "
        "read-only token.",
    )

    @staticmethod
    def resolve_environment(addon) -> str:
        return addon.environment.name

    @staticmethod
    def resolve_host(addon) -> str:
        return addon.alias

    @staticmethod
    def resolve_database(addon) -> str | None:
        return addon.database or None

    @staticmethod
    def resolve_username(addon) -> str | None:
        return addon.username or None

    @staticmethod
    def resolve_error(addon) -> Failure | None:
        return _failure(addon.error_code, addon.error_message)

    @classmethod
    def revealing(cls, addon, masked: bool) -> "AddOnOut":
        # `url` is set only here; operations answering AddOnOut leave unset fields out.
        # (A built schema is answered as it is; ninja only validates models and dicts.)
        url = addon.connection_url(password=MASKED if masked else None)
        return cls.from_orm(addon).model_copy(update={"url": url})


class AddOnListOut(Schema):
    addons: list[AddOnOut]


class AddOnIn(Schema):
    kind: AddOnKindName
    environment: EnvironmentChoice = "production"


class RestoreOut(Schema):
    status: str | None
    message: str | None
    at: Timestamp | None


class BackupOut(Schema):
    id: int
    status: str
    scheduled: bool
    size: int | None = Field(description="In bytes, once taken.")
    age_seconds: int
    created_at: Timestamp
    finished_at: Timestamp | None
    message: str | None
    restore: RestoreOut = Field(description="The last restore from this backup.")

    @staticmethod
    def resolve_age_seconds(backup) -> int:
        return int(backup.age.total_seconds())

    @staticmethod
    def resolve_message(backup) -> str | None:
        return backup.message or None

    @staticmethod
    def resolve_restore(backup) -> RestoreOut:
        return RestoreOut(
            status=backup.restore_status or None,
            message=backup.restore_message or None,
            at=backup.restored_at,
        )


class BackupListOut(Schema):
    backups: list[BackupOut]


# --- domains and volumes --------------------------------------------------------------------


class DomainOut(Schema):
    hostname: str
    environment: str
    verified: bool = Field(description="Routed only once true.")
    verified_at: datetime | None
    token: str = Field(description="What check_url must answer (the router serves it).")
    check_url: str = Field(description="Slipway fetches it to verify the domain.")

    @staticmethod
    def resolve_verified(domain) -> bool:
        return domain.is_verified

    @staticmethod
    def resolve_environment(domain) -> str:
        return domain.environment.name


class DomainListOut(Schema):
    domains: list[DomainOut]


class DomainIn(Schema):
    hostname: str
    environment: EnvironmentChoice = "production"


class DomainRemovedOut(Schema):
    hostname: str
    deleted: Literal[True] = True


class VolumeOut(Schema):
    id: int
    name: str
    mount_path: str
    environment: str
    docker_volume: str
    size: int | None = Field(description="In bytes, when the engine could tell.")

    @staticmethod
    def resolve_environment(volume) -> str:
        return volume.environment.name

    @staticmethod
    def resolve_docker_volume(volume) -> str:
        return volume.docker_name

    @staticmethod
    def resolve_size(volume, context) -> int | None:
        # The engine is asked for every size at once (VolumeListOut.of); a volume just
        # added has none to tell.
        return (context or {}).get("sizes", {}).get(volume.pk)


class VolumeAddedOut(VolumeOut):
    # A volume is mounted from the next deployment on.
    redeploy_needed: Literal[True] = True


class VolumeListOut(Schema):
    volumes: list[VolumeOut]

    @classmethod
    def of(cls, volumes: list, sizes: dict[int, int | None]) -> "VolumeListOut":
        return cls.from_orm({"volumes": volumes}, context={"sizes": sizes})


class VolumeIn(Schema):
    name: str
    mount_path: str
    environment: EnvironmentChoice = "production"


class VolumeRemovedOut(Schema):
    id: int
    data_deleted: bool
    redeploy_needed: Literal[True] = True


# --- notifications --------------------------------------------------------------------------


class TargetOut(Schema):
    id: int
    url: str
    events: list[str] | Literal["all"]
    created_at: Timestamp

    @staticmethod
    def resolve_events(target) -> list[str] | str:
        return target.events or "all"


class TargetWithSecretOut(TargetOut):
    secret: str = Field(
        description="Signs every delivery (X-Slipway-Signature); masked for a read-only token."
    )

    @classmethod
    def of(cls, target, reveal: bool) -> "TargetWithSecretOut":
        shown = cls.from_orm(target)
        return shown if reveal else shown.model_copy(update={"secret": MASKED})


class TargetListOut(Schema):
    targets: list[TargetOut]


class TargetIn(Schema):
    url: str
    events: list[Annotated[str, _choice(NotificationEvent.values)]] | None = Field(
        None, description="None or empty: every event."
    )


class DeliveryOut(Schema):
    id: str
    event: str
    status: str
    attempts: int
    last_response_code: int | None
    error: Failure | None
    created_at: Timestamp
    updated_at: Timestamp
    delivered_at: Timestamp | None

    @staticmethod
    def resolve_id(delivery) -> str:
        return str(delivery.delivery_id)

    @staticmethod
    def resolve_error(delivery) -> Failure | None:
        return _failure(delivery.error_code, delivery.last_error)


class DeliveryListOut(Schema):
    deliveries: list[DeliveryOut]


# --- log drains ---------------------------------------------------------------------------


class DrainOut(Schema):
    id: int
    kind: str
    url: str
    enabled: bool
    cursor: int = Field(description="The id of the last log line the receiver accepted.")
    failures: int = Field(description="Batches refused in a row (0: healthy).")
    backoff_until: Timestamp | None
    last_delivered_at: Timestamp | None
    error: Failure | None
    created_at: Timestamp

    @staticmethod
    def resolve_error(drain) -> Failure | None:
        return _failure(drain.error_code, drain.last_error)


class DrainWithSecretOut(DrainOut):
    secret: str = Field(description="Signs each HTTPS batch (X-Slipway-Signature); syslog: empty.")


class DrainListOut(Schema):
    drains: list[DrainOut]


class DrainIn(Schema):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="syslog+tls://host:port, syslog://host:port or https://…")


# --- promotion gates ------------------------------------------------------------------------


class PolicyOut(Schema):
    require_approval: bool
    check_path: str
    check_expected_status: int
    check_timeout: float
    require_ci_success: bool


class PolicyIn(Schema):
    """Only the gates given change; the rest keep their value."""

    model_config = ConfigDict(extra="forbid")

    require_approval: bool = None
    check_path: str = Field(
        None, description="Empty: no check. Else a path on the stage promoted from."
    )
    check_expected_status: int = None
    check_timeout: float = Field(None, description="Seconds.")
    require_ci_success: bool = Field(
        None, description="The commit being promoted must have passed CI on the Git provider."
    )


class PromotionRequestOut(Schema):
    id: int
    status: str
    requested_by: str | None
    source: int | None = Field(description="The deployment to promote.")
    source_environment: str = Field(description="The stage promoted from.")
    target_environment: str = Field(description="The stage promoted into.")
    created_at: Timestamp

    @staticmethod
    def resolve_source_environment(item) -> str:
        return item.source_environment.name

    @staticmethod
    def resolve_target_environment(item) -> str:
        return item.target_environment.name

    @staticmethod
    def resolve_requested_by(item) -> str | None:
        return item.requested_by.username if item.requested_by else None

    @staticmethod
    def resolve_source(item) -> int | None:
        return item.source_deployment.number if item.source_deployment else None


class PromotionRequestListOut(Schema):
    requests: list[PromotionRequestOut]


# --- resource usage -------------------------------------------------------------------------


class UsageOut(Schema):
    environment: str
    deployment: int
    stopped: bool
    running: bool
    cpu_percent: float | None = Field(description="100 is one core busy.")
    memory_bytes: int | None
    memory_limit_bytes: int | None
    memory_percent: float | None


class StatsOut(Schema):
    app: str
    environments: list[UsageOut]


# --- environments: router settings and scaling ----------------------------------------------

VisibilityChoice = Annotated[str, _choice(Visibility.values)]


class EnvironmentOut(Schema):
    name: str
    url: str
    replicas: int
    visibility: str
    basic_auth_user: str
    protected: bool = Field(description="Visibility is protected and a password is set.")
    maintenance: bool
    maintenance_message: str
    max_body_bytes: int | None = Field(description="None: the platform's default.")
    body_limit: int = Field(description="The request body limit in force, in bytes.")
    stopped: bool

    @staticmethod
    def resolve_protected(env) -> bool:
        return env.visibility == Visibility.PROTECTED and bool(env.basic_auth_hash)


class EnvironmentUpdatedOut(EnvironmentOut):
    changed: list[str] = Field(
        description="The fields that changed; basic_auth_password: set or removed."
    )

    @staticmethod
    def resolve_changed(env, context) -> list[str]:
        return context["changed"]

    @classmethod
    def of(cls, env, changed: list[str]) -> "EnvironmentUpdatedOut":
        return cls.from_orm(env, context={"changed": changed})


class EnvironmentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A DNS label: 1–30 of a–z, 0–9 and single hyphens.")
    copy_env_from: str | None = Field(
        None, description="Copy this environment's env vars (not its add-ons' ones)."
    )


class EnvironmentItemOut(Schema):
    name: str
    url: str
    live_deployment: int | None = Field(description="Its live deployment's number.")
    deleting: bool
    created_at: Timestamp

    @staticmethod
    def resolve_live_deployment(env) -> int | None:
        return env.live_deployment.number if env.live_deployment_id else None

    @staticmethod
    def resolve_deleting(env) -> bool:
        return env.cleanup_requested


class EnvironmentListOut(Schema):
    environments: list[EnvironmentItemOut]


class EnvironmentDeletingOut(Schema):
    name: str
    status: str = Field(description="deleting: a job removes what it runs, then the row.")


class EnvironmentPatchIn(Schema):
    """Only the fields given change; the router applies them at once."""

    model_config = ConfigDict(extra="forbid")

    visibility: VisibilityChoice = None
    basic_auth_user: str = None
    basic_auth_password: str = Field(
        None, description="8 to 256 characters; stored as a bcrypt hash, never returned."
    )
    maintenance: bool = None
    maintenance_message: str = Field(None, description="At most 2000 characters.")
    max_body_bytes: int | None = Field(
        None, description="1024 to 10 GiB; null: the platform's default."
    )


class ScaleIn(Schema):
    environment: EnvironmentChoice = "production"
    replicas: StrictInt = Field(description="From 1 to PAAS_MAX_REPLICAS (10 by default).")


class ScaleSavedOut(Schema):
    """Nothing is live: the next deployment starts that many."""

    environment: str
    replicas: int
    deployment: None = None


class ProcessOut(Schema):
    replicas: int
    command: str = Field(description="Empty: the image's own command (web only).")


class FormationOut(Schema):
    environment: str
    processes: dict[str, ProcessOut] = Field(description="Per process type, web first.")
    deployment: int | None = Field(
        None, description="The number of the deployment applying a change (202 only)."
    )


class FormationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    environment: EnvironmentChoice = "production"
    processes: dict[str, object] = Field(
        description="Process type: count, from 0 to PAAS_MAX_REPLICAS; types not named keep theirs."
    )


# --- env vars -------------------------------------------------------------------------------

# The services and apps.access check the key (validate_env_key); the schema tells clients.
EnvKey = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,254}$"})
]


class EnvVarOut(Schema):
    """An env var without its value (GET .../env/<key> shows that to whoever may see it)."""

    key: str
    protected: bool = Field(description="Only the team's admins and owners see or change it.")
    not_for_previews: bool
    updated_at: Timestamp


class EnvVarListOut(Schema):
    vars: list[EnvVarOut]


class EnvVarValueOut(Schema):
    key: str
    value: str
    protected: bool


class EnvVarIn(Schema):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="At most 32 KiB, no NUL character.")
    protected: bool | None = Field(
        None,
        description="Mark it protected or not (admins and owners only); left out or null, "
        "its mark stays (a new var is not protected).",
    )


class EnvVarProtectIn(Schema):
    model_config = ConfigDict(extra="forbid")

    protected: bool


# --- metrics ----------------------------------------------------------------------------------


class ContainerSeriesOut(Schema):
    container: str = Field(description="The container's id.")
    process: str
    replica: int
    cpu_percent: list[float | None] = Field(description="Mean per bucket; 100 = one core.")
    memory_bytes: list[int | None] = Field(description="Peak per bucket.")
    memory_limit_bytes: list[int | None]
    restarts: list[int | None] = Field(description="The engine's restart count (a total).")


class MetricsOut(Schema):
    """Columns over one time axis; None where no sample fell in a bucket."""

    app: str
    environment: str
    since: Timestamp
    step: int = Field(description="Seconds per bucket.")
    times: list[int] = Field(description="Each bucket's end, in seconds since the epoch.")
    requests: list[int | None]
    errors_5xx: list[int | None]
    error_rate: list[float | None] = Field(description="5xx over requests.")
    latency_ms: list[float | None] = Field(description="Mean, weighted by requests.")
    containers: list[ContainerSeriesOut]


# --- pipelines --------------------------------------------------------------------------------


class PromoteIn(Schema):
    """Which step to promote along; no body means staging → production."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: EnvironmentChoice = Field("staging", alias="from")
    target: EnvironmentChoice = Field("production", alias="to")


class PipelineIn(Schema):
    model_config = ConfigDict(extra="forbid")

    stages: list[EnvironmentChoice] = Field(
        description="Environment names in promotion order, each once; the last is usually "
        "production."
    )


class StageOut(Schema):
    name: str
    url: str
    live_deployment: int | None = Field(description="The number of its live deployment.")
    commit: str = Field(description="The commit it runs (empty for an archive).")
    deployed_at: Timestamp | None = Field(description="When its live deployment went live.")

    @staticmethod
    def resolve_live_deployment(env) -> int | None:
        return env.live_deployment.number if env.live_deployment else None

    @staticmethod
    def resolve_commit(env) -> str:
        return env.live_deployment.commit_sha if env.live_deployment else ""

    @staticmethod
    def resolve_deployed_at(env):
        return env.live_deployment.finished_at if env.live_deployment else None


class StepOut(Schema):
    """A promotion the pipeline allows: from one stage to the next."""

    model_config = ConfigDict(populate_by_name=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    gates: PolicyOut
    pending_request: int | None = Field(description="A promotion waiting for approval.")

    @staticmethod
    def resolve_pending_request(step) -> int | None:
        return step["pending"].pk if step["pending"] else None


class PipelineOut(Schema):
    stages: list[StageOut]
    steps: list[StepOut]
    default: bool = Field(description="True until the pipeline is set: staging → production.")


# --- preview environments --------------------------------------------------------------------


class PreviewSettingsIn(Schema):
    """Any of the preview settings; the ones not given stay as they are."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(None, description="Deploy every pull request to pr-<number>.")
    template: str | None = Field(
        None, description="The environment a preview copies its env vars and database from."
    )
    database: Literal["seed", "empty", "none"] | None = Field(
        None,
        description="seed: its own database restored from the template's latest backup; "
        "empty: its own empty one; none: no database of its own.",
    )
    allow_forks: bool | None = Field(
        None, description="Deploy pull requests from forks too (they run with the env vars)."
    )
    not_for_previews: list[str] | None = Field(
        None, description="The template's env vars left out of previews (exactly these)."
    )


class PreviewSettingsOut(Schema):
    enabled: bool = Field(alias="previews_enabled")
    template: str = Field(alias="preview_template")
    database: str = Field(alias="preview_database")
    allow_forks: bool = Field(alias="previews_allow_forks")
    limit: int = Field(description="PAAS_MAX_PREVIEWS_PER_APP: open previews at most.")
    not_for_previews: list[str]

    @staticmethod
    def resolve_limit(app) -> int:
        return django_settings.PAAS_MAX_PREVIEWS_PER_APP

    @staticmethod
    def resolve_not_for_previews(app) -> list[str]:
        template = app.environments.filter(name=app.preview_template).first()
        marked = template.env_vars.filter(not_for_previews=True) if template else []
        return [var.key for var in marked]


class PreviewOut(Schema):
    number: int
    title: str
    link: str = Field(description="The pull request's page on the provider.")
    environment: str
    url: str
    head_sha: str
    head_branch: str
    from_fork: bool
    status: str = Field(description="preparing, failed, or its latest deployment's status.")
    error_message: str
    created_at: Timestamp

    @staticmethod
    def resolve_environment(preview) -> str:
        return preview.environment_name

    @staticmethod
    def resolve_url(preview) -> str:
        return preview.environment.url


class PreviewListOut(Schema):
    settings: PreviewSettingsOut
    previews: list[PreviewOut]


# --- teams ------------------------------------------------------------------------------------


class TeamIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1 to 63 characters.")


class MemberOut(Schema):
    username: str
    role: str

    @staticmethod
    def resolve_username(member) -> str:
        return member.user.get_username()


class InvitationOut(Schema):
    id: int
    email: str
    role: str
    status: str
    created_at: Timestamp
    expires_at: Timestamp


class TeamOut(Schema):
    id: int
    name: str
    personal: bool = Field(description="The user's personal team, made with them.")
    role: str | None = Field(description="Your role on it.")
    require_mfa: bool = Field(description="Every member must use two-factor sign-in.")

    @staticmethod
    def resolve_personal(team) -> bool:
        return team.is_personal

    @staticmethod
    def resolve_role(team, context) -> str | None:
        return team.role_of(context["request"].auth)


class TeamDetailOut(TeamOut):
    members: list[MemberOut]
    invitations: list[InvitationOut] = Field(
        description="Waiting ones; listed to admins and owners only."
    )

    @staticmethod
    def resolve_members(team) -> list:
        return list(team.memberships.select_related("user"))

    @staticmethod
    def resolve_invitations(team, context) -> list:
        if team.role_of(context["request"].auth) not in ("owner", "admin"):
            return []
        return list(team.invitations.filter(status="pending"))


class TeamListOut(Schema):
    teams: list[TeamOut]


class TeamPatchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    require_mfa: bool = Field(
        description="Require two-factor sign-in of every member (owners only; use it yourself "
        "first)."
    )


class RoleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="owner, admin, developer or viewer.")


class InvitationIn(Schema):
    model_config = ConfigDict(extra="forbid")

    email: str
    role: str = Field("developer", description="owner, admin, developer or viewer.")
