"""What users own. Django loads the models from this package; each module holds one feature."""

from apps.models.addons import (  # noqa: F401
    ADDON_MOVES,
    ADDON_TRANSITIONS,
    BACKUP_TRANSITIONS,
    KIND_FACTS,
    RESTORE_FINAL,
    RESTORE_TRANSITIONS,
    AddOn,
    AddOnKind,
    AddOnStatus,
    Backup,
    BackupStatus,
    InvalidAddOnTransition,
    RestoreStatus,
    S,
)
from apps.models.app import (  # noqa: F401
    STARTING_ENVIRONMENTS,
    App,
    AppCleanupRequested,
    AppQuerySet,
    AppStatus,
    BuildMethod,
    Domain,
    Environment,
    EnvironmentCleanupRequested,
    EnvironmentName,
    EnvVar,
    HostTaken,
    PreviewDatabase,
    Visibility,
    Volume,
    app_poll_state,
)
from apps.models.app_list import app_list_count, app_list_rows  # noqa: F401
from apps.models.audit import AuditEntry  # noqa: F401
from apps.models.notifications import (  # noqa: F401
    DeliveryStatus,
    NotificationDelivery,
    NotificationEvent,
    NotificationTarget,
)
from apps.models.previews import Preview  # noqa: F401
from apps.models.providers import (  # noqa: F401
    EXPIRY_MARGIN,
    ProviderCredential,
    ProviderKind,
)
from apps.models.teams import (  # noqa: F401
    INVITATION_TRANSITIONS,
    ROLE_RANK,
    Invitation,
    InvitationStatus,
    Membership,
    Role,
    Team,
    rank,
)
from apps.models.tokens import (  # noqa: F401
    ApiToken,
)
