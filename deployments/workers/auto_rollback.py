"""Automatic rollback after go-live: a release that passed its health check but then
crash-loops, or answers mostly 5xx, within PAAS_AUTO_ROLLBACK_WINDOW_SECONDS of going live
is replaced by the deployment that was live before it, by the warden, with the reason on
both deployments and a notification.

Never for a deployment that is itself a rollback, a restart or a scale (their image was
live before), never while another deployment runs in the environment, and never when the
previous image is gone. Off per app (`App.auto_rollback`).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from apps.models import Environment
from apps.models.notifications import NotificationEvent
from deployments.models import Deployment, EnvironmentMetric, Status, Trigger
from deployments.services import ServiceError, rollback
from deployments.services.notifications import notify

logger = logging.getLogger(__name__)

# Their image was live before: rolling "back" from them would go further back than asked.
NOT_ROLLED_BACK = (Trigger.ROLLBACK, Trigger.RESTART, Trigger.SCALE)


@dataclass(frozen=True)
class Verdict:
    reason: str


def check_recent_releases(runtime) -> int:
    """One warden round: roll back each environment whose new release went bad."""
    window = settings.PAAS_AUTO_ROLLBACK_WINDOW_SECONDS
    if window <= 0:
        return 0
    rolled = 0
    for env in _recently_live(timezone.now() - timedelta(seconds=window)):
        try:
            rolled += _check(env, runtime)
        except Exception:  # noqa: BLE001 - one environment must not stop the others' checks
            logger.exception("automatic rollback check failed for %s", env)
    return rolled


def _recently_live(since):
    busy = Deployment.objects.active().values("environment_id")
    return (
        Environment.objects.filter(
            live_deployment__finished_at__gte=since,
            live_deployment__status=Status.SUCCEEDED,
            stopped=False,
            app__auto_rollback=True,
            app__cleanup_requested_at__isnull=True,
        )
        .exclude(live_deployment__trigger__in=NOT_ROLLED_BACK)
        .exclude(pk__in=busy)
        .select_related("app", "live_deployment")
    )


def _check(env: Environment, runtime) -> bool:
    live = env.live_deployment
    if "auto_rolled_back" in live.step_data:
        return False
    verdict = crash_loop(live, runtime) or error_rate(live)
    if verdict is None:
        return False
    target = previous_live(live, runtime)
    if target is None:
        return False  # nothing to go back to: the warden's restarts and alerts carry on
    return _roll_back(env, live, target, verdict)


def crash_loop(live: Deployment, runtime) -> Verdict | None:
    """The engine restarted its web containers PAAS_AUTO_ROLLBACK_RESTARTS times or more
    since they started (Docker's restart policy brings a crashing process back, with a
    growing delay; the count is the engine's own)."""
    restarts = sum(runtime.restart_count(c) for c in live.web_containers)
    if restarts < settings.PAAS_AUTO_ROLLBACK_RESTARTS:
        return None
    seconds = (timezone.now() - live.finished_at).total_seconds()
    return Verdict(
        f"its web containers restarted {restarts} times within {seconds:.0f} s of going live"
    )


def error_rate(live: Deployment) -> Verdict | None:
    """More than PAAS_AUTO_ROLLBACK_ERROR_RATE of its requests answered 5xx since it went
    live, over at least PAAS_AUTO_ROLLBACK_MIN_REQUESTS (the router's own counts, sampled
    by the metrics task)."""
    totals = _request_totals(live)
    requests, errors = totals.get("requests") or 0, totals.get("errors") or 0
    if requests < settings.PAAS_AUTO_ROLLBACK_MIN_REQUESTS:
        return None
    if errors / requests <= settings.PAAS_AUTO_ROLLBACK_ERROR_RATE:
        return None
    return Verdict(f"{errors} of its {requests} requests answered 5xx since it went live")


def _request_totals(live: Deployment) -> dict:
    rows = EnvironmentMetric.objects.filter(
        environment_id=live.environment_id, deployment=live.number, at__gte=live.finished_at
    )
    return rows.aggregate(requests=Sum("requests"), errors=Sum("errors_5xx"))


def previous_live(live: Deployment, runtime) -> Deployment | None:
    """The deployment that was live here before, if its image is still kept."""
    earlier = (
        Deployment.objects.filter(
            environment_id=live.environment_id,
            status=Status.SUCCEEDED,
            number__lt=live.number,
        )
        .exclude(image_id="")
        .exclude(image_id=live.image_id)
        .order_by("-number")
        .first()
    )
    if earlier is None or not runtime.image_exists(earlier.image_id):
        return None
    return earlier


def _roll_back(env: Environment, live: Deployment, target: Deployment, verdict: Verdict) -> bool:
    now = timezone.now().isoformat()
    mark = {"reason": verdict.reason, "to": target.number, "at": now}
    # Once per deployment, even with two warden rounds at once: the mark is the claim.
    if (
        live.patch_step_data(lambda data: "auto_rolled_back" not in data, auto_rolled_back=mark)
        is None
    ):
        return False
    try:
        queued = rollback(target)
    except ServiceError as exc:
        live.patch_step_data(auto_rolled_back=None)
        logger.warning("automatic rollback of %s refused: %s", live, exc.message)
        return False
    queued.patch_step_data(
        auto_rollback_of={"from": live.number, "reason": verdict.reason, "at": now}
    )
    live.patch_step_data(auto_rolled_back={**mark, "by": queued.number})
    live.log(
        f"==> Rolled back automatically: {verdict.reason}. "
        f"Deployment #{queued.number} brings #{target.number}'s image back."
    )
    queued.log(f"==> Automatic rollback of #{live.number}: {verdict.reason}.")
    notify(
        env.app,
        NotificationEvent.AUTO_ROLLED_BACK,
        deployment=queued,
        environment=env,
        error=(
            "auto_rolled_back",
            f"Deployment #{live.number}: {verdict.reason}; rolled back to #{target.number}.",
        ),
    )
    return True
