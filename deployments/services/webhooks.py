"""Push-to-deploy: check that a webhook really comes from the app's Git provider, then queue
a deployment of the pushed commit to the app's webhook environment. Pull (merge) request
events open, redeploy and close preview environments (deployments/services/previews.py).

Each provider proves itself differently — GitHub and Gitea/Forgejo sign the raw body with
HMAC-SHA256, GitLab sends the secret itself — and names its events and delivery ids in its
own headers; one small class per provider holds those differences.

The secret is compared in constant time and is never logged or echoed. An unknown app
answers 404 and a bad signature 403: that tells whether an app exists, which its public
hostname tells anyway; what must not leak is how much of a signature was right.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from urllib.parse import parse_qs

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from apps.models import App, Preview
from deployments import services
from deployments.adapters.sources.git import SHA_RE
from deployments.models import Deployment, Trigger
from deployments.models.webhook import WebhookDelivery, WebhookProvider
from deployments.services import ServiceError, previews
from deployments.services.previews import CLOSE, OPEN, UPDATE, PullRequest

MAX_BODY_BYTES = 1024 * 1024
BRANCH_PREFIX = "refs/heads/"
ZERO_SHA_RE = re.compile(r"\A0+\Z")
MAX_BRANCH_LENGTH = 255


def webhook_url(app: App, provider: str) -> str:
    """The URL a provider posts pushes to (what the settings page shows to paste)."""
    base = settings.PAAS_PUBLIC_URL or "http://localhost:8000"
    return base + reverse("webhook", args=[provider, app.name])


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class TooLarge(ServiceError):
    status = 413


@dataclass(frozen=True)
class Push:
    ref: str
    head: str  # the pushed commit; all zeros when the branch was deleted
    default_branch: str  # the repository's, "" when the payload does not say


@dataclass
class Received:
    """What came of a delivery: a deployment, a reason to ignore it, or a ping answered."""

    deployment: Deployment | None = None
    ignored: str = ""
    pong: bool = False
    preview: Preview | None = None


# --- providers --------------------------------------------------------------------------


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and headers may hold anything.
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), expected.encode())


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        value = headers.get(name)
        if value:
            return value.strip()
    return ""


class Provider:
    name: str
    event_headers: tuple[str, ...]
    delivery_headers: tuple[str, ...]
    push_event: str
    pull_request_event: str
    ping_event: str | None = None
    # The provider's pull request actions, in the previews' words; any other is ignored.
    actions: dict[str, str]

    def verify(self, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
        raise NotImplementedError

    def push(self, payload: dict) -> Push:
        raise NotImplementedError

    def pull_request(self, payload: dict) -> PullRequest | str:
        """The event, or why it is ignored (an action that changes no code)."""
        raise NotImplementedError

    def event(self, headers: Mapping[str, str]) -> str:
        return _first(headers, self.event_headers)

    def delivery_id(self, headers: Mapping[str, str]) -> str:
        return _first(headers, self.delivery_headers)


class GitHub(Provider):
    name = WebhookProvider.GITHUB
    event_headers = ("X-GitHub-Event",)
    delivery_headers = ("X-GitHub-Delivery",)
    push_event, ping_event, pull_request_event = "push", "ping", "pull_request"
    actions = {"opened": OPEN, "reopened": OPEN, "synchronize": UPDATE, "closed": CLOSE}

    def verify(self, secret, body, headers):
        return _same(headers.get("X-Hub-Signature-256", ""), "sha256=" + _hmac_hex(secret, body))

    def push(self, payload):
        return Push(
            ref=_text(payload, "ref"),
            head=_text(payload, "after"),
            default_branch=_text(payload, "repository", "default_branch", required=False),
        )

    def pull_request(self, payload):
        return _github_shaped(self, payload)


class GitLab(Provider):
    name = WebhookProvider.GITLAB
    event_headers = ("X-Gitlab-Event",)
    delivery_headers = ("X-Gitlab-Event-UUID",)
    push_event, pull_request_event = "Push Hook", "Merge Request Hook"
    actions = {"open": OPEN, "reopen": OPEN, "update": UPDATE, "close": CLOSE, "merge": CLOSE}

    def verify(self, secret, body, headers):
        return _same(headers.get("X-Gitlab-Token", ""), secret)

    def push(self, payload):
        # checkout_sha is the head GitLab checked out; null when the branch was deleted.
        head = _text(payload, "checkout_sha", required=False) or _text(payload, "after")
        return Push(
            ref=_text(payload, "ref"),
            head=head,
            default_branch=_text(payload, "project", "default_branch", required=False),
        )

    def pull_request(self, payload):
        mr = _object(payload, "object_attributes")
        action = self.actions.get(_text(mr, "action", required=False))
        if action is None:
            return f"merge request action “{_text(mr, 'action', required=False)}” changes no code"
        if action == UPDATE and "oldrev" not in mr:
            return "merge request updated without new commits"
        number = _number(mr.get("iid"))
        target = _text(payload, "project", "path_with_namespace")
        return PullRequest(
            provider=self.name,
            repository=target,
            number=number,
            action=action,
            head_sha=_sha(_text(mr, "last_commit", "id")),
            head_branch=_branch(_text(mr, "source_branch")),
            title=_text(mr, "title", required=False),
            link=_text(mr, "url", required=False),
            from_fork=mr.get("source_project_id") != mr.get("target_project_id"),
            pull_ref=f"refs/merge-requests/{number}/head",
        )


class Gitea(Provider):
    """Gitea, and Forgejo (which sends its own header names beside Gitea's)."""

    name = WebhookProvider.GITEA
    event_headers = ("X-Gitea-Event", "X-Forgejo-Event")
    delivery_headers = ("X-Gitea-Delivery", "X-Forgejo-Delivery")
    push_event, pull_request_event = "push", "pull_request"
    actions = {"opened": OPEN, "reopened": OPEN, "synchronized": UPDATE, "closed": CLOSE}

    def verify(self, secret, body, headers):
        given = _first(headers, ("X-Gitea-Signature", "X-Forgejo-Signature"))
        return _same(given.lower(), _hmac_hex(secret, body))

    def push(self, payload):
        return Push(
            ref=_text(payload, "ref"),
            head=_text(payload, "after"),
            default_branch=_text(payload, "repository", "default_branch", required=False),
        )

    def pull_request(self, payload):
        return _github_shaped(self, payload)


def _github_shaped(provider: Provider, payload: dict) -> PullRequest | str:
    """GitHub's and Gitea's pull request payloads: the same fields."""
    raw_action = _text(payload, "action")
    action = provider.actions.get(raw_action)
    if action is None:
        return f"pull request action “{raw_action}” changes no code"
    pr = _object(payload, "pull_request")
    number = _number(pr.get("number"))
    base = _text(pr, "base", "repo", "full_name")
    return PullRequest(
        provider=provider.name,
        repository=base,
        number=number,
        action=action,
        head_sha=_sha(_text(pr, "head", "sha")),
        head_branch=_branch(_text(pr, "head", "ref")),
        title=_text(pr, "title", required=False),
        link=_text(pr, "html_url", required=False),
        # A fork whose repository was deleted has no head repo: a fork all the same.
        from_fork=_text(pr, "head", "repo", "full_name", required=False) != base,
        pull_ref=f"refs/pull/{number}/head",
    )


PROVIDERS: dict[str, Provider] = {p.name: p for p in (GitHub(), GitLab(), Gitea())}


# --- the use case -----------------------------------------------------------------------


def receive(
    provider_name: str,
    app_name: str,
    headers: Mapping[str, str],
    body: bytes,
    content_type: str = "application/json",
) -> Received:
    """Verify one delivery and act on it. Raises ServiceError (403/404/413/400) to refuse."""
    provider = PROVIDERS.get(provider_name)
    app = App.objects.filter(name=app_name.lower()).first() if provider else None
    if app is None:
        raise NotFound("No such webhook.", "not_found")
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge("The payload is larger than 1 MiB.", "payload_too_large")
    if not app.webhook_secret or not provider.verify(app.webhook_secret, body, headers):
        raise Forbidden("The webhook signature or token is missing or wrong.", "bad_signature")
    delivery_id = provider.delivery_id(headers)
    if not delivery_id:
        # Without an id a replayed delivery could not be told from a new one.
        raise ServiceError("The delivery id header is missing.", "missing_delivery_id")
    event = provider.event(headers)
    if provider.ping_event and event == provider.ping_event:
        return Received(pong=True)
    if event == provider.pull_request_event:
        event_or_reason = provider.pull_request(_payload(body, content_type))
        return _handle(app, provider, delivery_id, partial(_preview, app, event_or_reason))
    if event != provider.push_event:
        return Received(ignored=f"event “{event or 'none'}” is not a push")
    push = provider.push(_payload(body, content_type))
    return _handle(app, provider, delivery_id, partial(_deploy_or_ignore, app, push))


def _handle(app: App, provider: Provider, delivery_id: str, act) -> Received:
    """Do `act` once per delivery id, and record what came of it on the delivery's row."""
    if len(delivery_id) > WebhookDelivery.MAX_ID_LENGTH:
        raise ServiceError("The delivery id is too long.", "invalid_payload")
    with transaction.atomic():
        delivery = _claim_delivery(app, provider, delivery_id)
        if delivery is None:
            return Received(ignored="duplicate delivery")
        received = act()
        delivery.outcome = _outcome(received)
        delivery.save(update_fields=["outcome"])
    return received


def _preview(app: App, event: PullRequest | str) -> Received:
    if isinstance(event, str):
        return Received(ignored=event)
    outcome = previews.handle(app, event)
    return Received(deployment=outcome.deployment, ignored=outcome.ignored, preview=outcome.preview)


def _claim_delivery(app: App, provider: Provider, delivery_id: str) -> WebhookDelivery | None:
    """The delivery's row, or None if it was handled (or is being handled) already."""
    try:
        with transaction.atomic():
            return WebhookDelivery.objects.create(
                app=app, provider=provider.name, delivery_id=delivery_id, outcome="received"
            )
    except IntegrityError:
        return None


def _deploy_or_ignore(app: App, push: Push) -> Received:
    reason, branch = _why_ignored(app, push)
    if reason:
        return Received(ignored=reason)
    deployment = services.queue_deployment(
        app, app.webhook_environment, trigger=Trigger.WEBHOOK, commit_sha=push.head, branch=branch
    )
    return Received(deployment=deployment)


def _why_ignored(app: App, push: Push) -> tuple[str, str]:
    """(reason to ignore, "") or ("", the branch to deploy)."""
    if not push.ref.startswith(BRANCH_PREFIX):
        return f"{push.ref} is not a branch", ""
    branch = push.ref[len(BRANCH_PREFIX) :]
    wanted = app.branch or push.default_branch
    if not wanted:
        raise ServiceError("The payload does not name the default branch.", "invalid_payload")
    if branch != wanted:
        return f"push to {branch}; this app deploys {wanted}", ""
    if ZERO_SHA_RE.match(push.head):
        return f"branch {branch} was deleted", ""
    if not SHA_RE.match(push.head):
        raise ServiceError("The pushed commit id is not a commit id.", "invalid_payload")
    if push.head == _live_commit(app):
        # A redelivered or replayed old push must not redeploy what already runs.
        return f"commit {push.head[:12]} is already live", ""
    return "", branch


def _live_commit(app: App) -> str:
    environment = app.environments.filter(name=app.webhook_environment).first()
    live = environment.live_deployment if environment else None
    return live.commit_sha if live else ""


def _outcome(received: Received) -> str:
    if received.deployment is not None:
        return f"queued deployment #{received.deployment.number}"
    if received.ignored:
        return f"ignored: {received.ignored}"[:200]
    if received.preview is not None:
        return f"preview {received.preview.environment_name} {_preview_state(received.preview)}"
    return "nothing to do"


def _preview_state(preview: Preview) -> str:
    return "deleting" if preview.environment.cleanup_requested else "preparing"


# --- payloads ---------------------------------------------------------------------------


def _payload(body: bytes, content_type: str) -> dict:
    """The JSON payload; GitHub can also send it form-encoded in a `payload` field."""
    try:
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = parse_qs(body.decode(), strict_parsing=True).get("payload", [""])[0]
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ServiceError("The payload is not valid JSON.", "invalid_payload") from None
    if not isinstance(data, dict):
        raise ServiceError("The payload must be a JSON object.", "invalid_payload")
    return data


def _object(data: dict, key: str) -> dict:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ServiceError(f"The payload has no object “{key}”.", "invalid_payload")
    return value


def _number(value: object) -> int:
    """A pull request's number: a positive int (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**9:
        raise ServiceError(
            "The pull request number is not a positive whole number.", "invalid_payload"
        )
    return value


def _branch(value: str) -> str:
    if not value or len(value) > MAX_BRANCH_LENGTH:
        raise ServiceError(
            "The pull request's head branch is missing or too long.", "invalid_payload"
        )
    return value


def _sha(value: str) -> str:
    if not SHA_RE.match(value) or ZERO_SHA_RE.match(value):
        raise ServiceError("The pull request's head is not a commit id.", "invalid_payload")
    return value.lower()


def _text(data: dict, *keys: str, required: bool = True) -> str:
    value: object = data
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, str):
        return value
    if value is None and not required:
        return ""
    raise ServiceError(f"The payload has no text field “{'.'.join(keys)}”.", "invalid_payload")
