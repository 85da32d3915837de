"""The engine's records: deployments and their logs, promotions, webhook deliveries."""

from deployments.models.deployment import (  # noqa: F401
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    TRANSITIONS,
    WEB,
    Deployment,
    DeploymentQuerySet,
    InvalidTransition,
    LogLine,
    Status,
    Trigger,
)
from deployments.models.log_drains import DrainKind, LogDrain  # noqa: F401
from deployments.models.metrics import (  # noqa: F401
    DOWNSAMPLED_STEP,
    AlertEpisode,
    ContainerMetric,
    EnvironmentMetric,
    RouterCounters,
)
from deployments.models.promotion import (  # noqa: F401
    PROMOTION_TRANSITIONS,
    PipelineStage,
    PromotionDecided,
    PromotionPolicy,
    PromotionRequest,
    PromotionStatus,
    validate_check_path,
)
from deployments.models.runs import (  # noqa: F401
    ACTIVE_RUN_STATUSES,
    FINAL_RUN_STATUSES,
    RUN_TRANSITIONS,
    Run,
    RunLogLine,
    RunStatus,
    ScheduledJob,
    validate_command,
    validate_job_name,
    validate_schedule,
)
from deployments.models.runtime_logs import (  # noqa: F401
    CollectedContainer,
    RuntimeLogLine,
    RuntimeLogUsage,
)
from deployments.models.webhook import (  # noqa: F401
    WebhookDelivery,
    WebhookProvider,
)
