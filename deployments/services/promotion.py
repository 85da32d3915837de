"""Promotion gates (as DeployDB plans them), one set per pipeline step: before a stage's
image goes to the next stage, a second person may have to approve, the source stage may
have to answer an HTTP check, and the commit it runs may have to have passed CI on the Git
provider. A step is named by the environment it promotes into.

The check runs through the proxy on this host, to the source stage's hostname, at a path
the owner chose — never at a URL a user types, so the gate cannot be turned into a way of
probing other hosts from the server.
"""

from __future__ import annotations

from datetime import timedelta

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.models import App, Environment, EnvironmentName, Role, rank
from apps.models.notifications import NotificationEvent
from deployments import services
from deployments.adapters import git_providers as providers
from deployments.models import Deployment
from deployments.models.promotion import (
    PromotionDecided,
    PromotionPolicy,
    PromotionRequest,
    PromotionStatus,
)
from deployments.services import Conflict, ServiceError, environment_named, pipelines
from deployments.services.audit import audited
from deployments.services.notifications import notify

DEFAULT_REQUEST_HOURS = 72


class Forbidden(ServiceError):
    status = 403


def policy_of(target: Environment) -> PromotionPolicy:
    """The gates of the step into target; none saved means no gates (the object is not)."""
    found = PromotionPolicy.objects.filter(environment=target).select_related("app").first()
    return found or PromotionPolicy(app=target.app, environment=target)


def _step_target(result, app, user, source_name=EnvironmentName.STAGING, target_name=None):
    return f"{source_name} → {target_name or EnvironmentName.PRODUCTION}"


@audited("promotion.request", target=_step_target)
def request_promotion(
    app: App,
    user,
    source_name: str = EnvironmentName.STAGING,
    target_name: str = EnvironmentName.PRODUCTION,
) -> PromotionRequest | Deployment:
    """Promote now if no gate of the step stands in the way; else run the check and/or ask
    for approval. Only a step of the pipeline can be promoted along."""
    source_env, target_env = pipelines.step(app, source_name, target_name)
    policy = policy_of(target_env)
    if not policy.has_gates:
        return services.promote_environment(source_env, target_env, requested_by=user)
    source = services._reusable_image(source_env.live_deployment, "promote")
    run_check(policy, source_env)
    run_ci_check(policy, source)
    if not policy.require_approval:
        return services.promote_environment(source_env, target_env, requested_by=user)
    return _pending_request(user, source_env, target_env, source)


@audited("promotion.approve", target=lambda r, request, user: request.pk)
def approve(request: PromotionRequest, user) -> Deployment:
    """A second person's yes: the gate's checks run again, then the promotion is queued."""
    _check_can_decide(request, user)
    _ensure_still_wanted(request)
    policy = policy_of(request.target_environment)
    run_check(policy, request.source_environment)
    run_ci_check(policy, request.source_deployment)
    with transaction.atomic():
        locked = _locked_pending(request)
        if _source_live(locked) != locked.source_deployment:
            raise Conflict(_stale_message(locked), "promotion_stale")
        deployment = services.promote_environment(
            locked.source_environment, locked.target_environment, locked.requested_by
        )
        locked.approve(user, deployment)
    request.refresh_from_db()
    _announce(NotificationEvent.PROMOTION_APPROVED, request.app, deployment, request)
    return deployment


@audited("promotion.reject", target=lambda r, request, user: request.pk)
def reject(request: PromotionRequest, user) -> PromotionRequest:
    _check_can_decide(request, user)
    try:
        request.reject(user)
    except PromotionDecided:
        raise Conflict(f"This promotion request is already {request.status}.", "decided") from None
    return request


def pipeline_overview(app: App) -> dict:
    """The stages and, between each two, the step's gates and the request waiting on it."""
    pending = {
        request.target_environment_id: request
        for request in app.promotion_requests.filter(status=PromotionStatus.PENDING)
    }
    steps = [
        {
            "source": source.name,
            "target": target.name,
            "gates": policy_of(target),
            "pending": pending.get(target.pk),
        }
        for source, target in pipelines.steps_of(app)
    ]
    default = not app.pipeline_stages.exists()
    return {"stages": pipelines.stages_of(app), "steps": steps, "default": default}


# --- the approval gate ------------------------------------------------------------------


def _stale_message(request: PromotionRequest) -> str:
    source = request.source_environment.name.capitalize()
    return f"{source} changed since this promotion was requested; request it again."


def can_decide(request: PromotionRequest, user) -> bool:
    """Anyone but the requester who is an admin or owner of the app's team, or a superuser.
    Approving deploys the team's code, which plain staff may not do (see apps.access)."""
    if user is None or not user.is_active or user.pk == request.requested_by_id:
        return False
    return user.is_superuser or rank(request.app.team.role_of(user)) >= rank(Role.ADMIN)


def _check_can_decide(request: PromotionRequest, user) -> None:
    if user is not None and user.pk == request.requested_by_id:
        raise Forbidden(
            "You requested this promotion; someone else must approve or reject it.",
            "self_approval",
        )
    if not can_decide(request, user):
        raise Forbidden(
            "Only an admin or owner of the app's team, or a superuser, can decide on a promotion.",
            "forbidden",
        )


def _pending_request(
    user, source_env: Environment, target_env: Environment, source: Deployment
) -> PromotionRequest:
    """A new pending request, or the one already waiting for this same source deployment."""
    pending = PromotionRequest.objects.filter(
        target_environment=target_env, status=PromotionStatus.PENDING
    )
    existing = pending.first()
    if existing is not None and _is_stale(existing):
        _expire(existing)
        existing = None
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            request = PromotionRequest.objects.create(
                app=target_env.app,
                requested_by=user,
                source_deployment=source,
                source_environment=source_env,
                target_environment=target_env,
            )
    except IntegrityError:
        # Someone asked at the same moment: theirs is the pending request.
        return pending.get()
    _announce(NotificationEvent.PROMOTION_REQUESTED, target_env.app, source, request)
    return request


def _locked_pending(request: PromotionRequest) -> PromotionRequest:
    locked = (
        PromotionRequest.objects.select_for_update()
        .select_related("app", "source_environment", "target_environment")
        .get(pk=request.pk)
    )
    if not locked.is_pending:
        raise Conflict(f"This promotion request is already {locked.status}.", "decided")
    return locked


def _ensure_still_wanted(request: PromotionRequest) -> None:
    """Refuse a decided request, and expire one that went stale while it waited."""
    request.refresh_from_db()
    if not request.is_pending:
        raise Conflict(f"This promotion request is already {request.status}.", "decided")
    if _is_stale(request):
        _expire(request)
        raise Conflict(_stale_message(request), "promotion_stale")


def _is_stale(request: PromotionRequest) -> bool:
    """Too old, or the source stage no longer runs what was asked for: approving it would
    promote something nobody asked for."""
    hours = getattr(settings, "PAAS_PROMOTION_REQUEST_HOURS", DEFAULT_REQUEST_HOURS)
    too_old = request.created_at < timezone.now() - timedelta(hours=hours)
    return too_old or _source_live(request) != request.source_deployment


def _expire(request: PromotionRequest) -> None:
    try:
        request.expire()
    except PromotionDecided:
        pass  # decided a moment ago by someone else: nothing left to expire


def _source_live(request: PromotionRequest) -> Deployment | None:
    return Environment.objects.get(pk=request.source_environment_id).live_deployment


# --- the HTTP check gate ----------------------------------------------------------------


def check_url(policy: PromotionPolicy) -> str:
    """Through the proxy on this host; the Host header picks the source stage's route."""
    return f"http://127.0.0.1:{settings.PAAS_PROXY_HTTP_PORT}{policy.check_path}"


def run_check(policy: PromotionPolicy, source_env: Environment) -> None:
    """Raise ServiceError unless the source stage answers the check as expected."""
    if not policy.has_check:
        return
    shown = f"GET {policy.check_path} on {source_env.name}"
    try:
        response = requests.get(
            check_url(policy),
            headers={"Host": source_env.hostname},
            timeout=policy.check_timeout,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise _check_failed(f"{shown} did not answer within {policy.check_timeout:g} s.") from None
    except requests.RequestException:
        raise _check_failed(f"{shown} could not connect.") from None
    if response.status_code != policy.check_expected_status:
        raise _check_failed(
            f"{shown} answered {response.status_code}, expected {policy.check_expected_status}."
        )


def _check_failed(detail: str) -> ServiceError:
    return ServiceError(
        f"The promotion check failed: {detail} Nothing was promoted.", "promotion_check_failed"
    )


# --- the CI status gate -----------------------------------------------------------------


def run_ci_check(policy: PromotionPolicy, source: Deployment | None) -> None:
    """Raise Conflict unless the Git provider says the source's commit passed CI. Asked with
    the owner's token: it is the owner's repository, whoever presses "promote"."""
    if not policy.require_ci_success:
        return
    sha = source.commit_sha if source is not None else ""
    if not sha:
        raise Conflict(
            "No CI status to check: the source stage runs an uploaded archive, which has no "
            "commit. Deploy it from the repository, or turn the CI gate off; nothing was "
            "promoted.",
            "ci_unknown",
        )
    app = policy.app
    status = providers.commit_ci_status(app.owner, app.repository, sha)
    if status.state != providers.CiState.SUCCESS:
        raise _ci_refusal(status, sha[:7])


def _ci_refusal(status: providers.CiStatus, short: str) -> Conflict:
    where = f" ({status.url})" if status.url else ""
    if status.state == providers.CiState.PENDING:
        count = len(status.pending)
        checks = f"{count} check{'s' if count != 1 else ''} pending"
        message = f"CI is still running for {short} ({checks}): promote again when it finishes."
        return Conflict(message + where, "ci_pending")
    if status.state == providers.CiState.FAILURE:
        failed = ", ".join(status.failed)
        message = f"CI failed for {short}: {failed}{where}. Fix it and deploy again."
        return Conflict(message + " Nothing was promoted.", "ci_failed")
    if status.detail and status.provider:
        message = f"The CI status of {short} is unknown: {status.provider} could not be asked: "
        return Conflict(f"{message}{status.detail} Nothing was promoted.", "ci_unknown")
    if status.detail:
        message = f"The CI status of {short} is unknown: {status.detail}. Nothing was promoted."
        return Conflict(message, "ci_unknown")
    message = f"No CI status found for {short} on {status.provider}: nothing was promoted."
    return Conflict(message, "ci_unknown")


# --- notifications ----------------------------------------------------------------------


def announce_done(deployment: Deployment) -> None:
    """A promote deployment went live: tell the targets the promotion is done."""
    request = PromotionRequest.objects.filter(deployment=deployment).first()
    _announce(NotificationEvent.PROMOTION_DONE, deployment.app, deployment, request)


def _announce(event: str, app: App, deployment: Deployment, request) -> None:
    notify(app, event, deployment, promotion=_promotion_details(deployment, request))


def _promotion_details(deployment: Deployment, request: PromotionRequest | None) -> dict:
    source = request.source_deployment if request else deployment.source_deployment
    return {
        "from": source.environment.name if source else None,
        "to": request.target_environment.name if request else deployment.environment.name,
        "request": request.pk if request else None,
        "source_deployment": source.number if source else None,
        "commit": source.commit_sha if source else "",
        "requested_by": _username(request.requested_by if request else deployment.requested_by),
        "approved_by": _username(request.approved_by if request else None),
    }


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


# --- the policy -------------------------------------------------------------------------

POLICY_FIELDS = (
    "require_approval",
    "check_path",
    "check_expected_status",
    "check_timeout",
    "require_ci_success",
)


def _policy_details(result, app, data, target_name=EnvironmentName.PRODUCTION) -> dict:
    return {"fields": sorted(data), "into": target_name}


@audited("promotion.set_policy", details=_policy_details)
def set_policy(
    app: App, data: dict, target_name: str = EnvironmentName.PRODUCTION
) -> PromotionPolicy:
    """Change the gates given in data of the step into target_name (the others keep their
    value), checked by the model's own validators; an unknown field changes nothing."""
    unknown = sorted(set(data) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({field: ["Unknown field."] for field in unknown})
    policy = policy_of(environment_named(app, target_name))
    for field, value in data.items():
        setattr(policy, field, value)
    policy.full_clean()
    policy.save()
    return policy
