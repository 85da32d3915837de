"""Push-to-deploy webhooks from GitHub, GitLab and Gitea/Forgejo: verified, deduplicated,
and only a push to the app's branch deploys."""

import hashlib
import hmac
import json
import logging
import uuid

import pytest
from django.test import Client

from deployments.models import Deployment
from deployments.models.webhook import WebhookDelivery

pytestmark = pytest.mark.django_db

PROVIDERS = ["github", "gitlab", "gitea"]
PUSH_EVENT = {"github": "push", "gitlab": "Push Hook", "gitea": "push"}
SIGNATURE_HEADER = {
    "github": "X-Hub-Signature-256",
    "gitlab": "X-Gitlab-Token",
    "gitea": "X-Gitea-Signature",
}
SHA = "a" * 40
ZERO_SHA = "0" * 40


def push_payload(provider, ref="refs/heads/main", sha=SHA, default_branch="main"):
    payload = {"ref": ref, "before": "b" * 40, "after": sha}
    if provider == "gitlab":
        payload["checkout_sha"] = None if sha == ZERO_SHA else sha
        payload["project"] = {"default_branch": default_branch}
    else:
        payload["repository"] = {"default_branch": default_branch}
    return payload


def _hmac(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(provider, secret, body, event=None, delivery=None):
    """The headers the provider sends: event, delivery id, and the signature or token."""
    event = event or PUSH_EVENT[provider]
    delivery = delivery or str(uuid.uuid4())
    if provider == "github":
        return {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256=" + _hmac(secret, body),
        }
    if provider == "gitlab":
        return {"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery, "X-Gitlab-Token": secret}
    return {
        "X-Gitea-Event": event,
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Signature": _hmac(secret, body),
    }


def send(provider, app_name, body, headers, content_type="application/json"):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return Client().post(
        f"/hooks/{provider}/{app_name}", data=body, content_type=content_type, headers=headers
    )


def push(provider, app, payload=None, secret=None, **header_args):
    body = json.dumps(payload or push_payload(provider)).encode()
    headers = signed_headers(provider, secret or app.webhook_secret, body, **header_args)
    return send(provider, app.name, body, headers)


@pytest.fixture
def app(make_app):
    return make_app("hooked")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_queues_a_deployment_of_the_pushed_commit(provider, app):
    response = push(provider, app)
    assert response.status_code == 202, response.content
    deployment = Deployment.objects.get(app=app)
    assert (deployment.trigger, deployment.commit_sha, deployment.branch) == (
        "webhook",
        SHA,
        "main",
    )
    assert deployment.environment.name == "production" and deployment.status == "pending"
    assert response.json() == {
        "number": 1,
        "status": "pending",
        "environment": "production",
        "commit": SHA,
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_refuses_a_wrong_signature(provider, app):
    response = push(provider, app, secret="not-the-secret")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"
    assert not Deployment.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_refuses_a_missing_signature(provider, app):
    body = json.dumps(push_payload(provider)).encode()
    headers = signed_headers(provider, app.webhook_secret, body)
    del headers[SIGNATURE_HEADER[provider]]
    response = send(provider, app.name, body, headers)
    assert response.status_code == 403
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_refuses_a_signature_of_another_body(provider, app):
    body = json.dumps(push_payload(provider)).encode()
    headers = signed_headers(provider, app.webhook_secret, body)
    tampered = json.dumps(push_payload(provider, sha="c" * 40)).encode()
    response = send(provider, app.name, tampered, headers)
    if provider == "gitlab":  # GitLab sends the token itself and does not sign the body
        assert response.status_code == 202
    else:
        assert response.status_code == 403
        assert not Deployment.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_ignores_a_replayed_delivery(provider, app):
    delivery = str(uuid.uuid4())
    assert push(provider, app, delivery=delivery).status_code == 202
    again = push(provider, app, delivery=delivery)
    assert again.status_code == 200
    assert again.json() == {"ignored": "duplicate delivery"}
    assert Deployment.objects.filter(app=app).count() == 1
    assert WebhookDelivery.objects.get().outcome == "queued deployment #1"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_ignores_a_push_to_another_branch(provider, app):
    response = push(provider, app, push_payload(provider, ref="refs/heads/feature"))
    assert response.status_code == 200
    assert response.json() == {"ignored": "push to feature; this app deploys main"}
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_rejects_malformed_json(provider, app):
    body = b'{"ref": "refs/heads/main", '
    response = send(provider, app.name, body, signed_headers(provider, app.webhook_secret, body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_rejects_a_payload_without_the_fields_it_needs(provider, app):
    for payload in (
        {"after": SHA},
        {"ref": "refs/heads/main"},
        ["not", "an", "object"],
        {"ref": "refs/heads/main", "after": SHA},
        {"ref": 5, "after": SHA},
    ):
        response = push(provider, app, payload)
        assert response.status_code == 400, payload
        assert "error" in response.json()
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_answers_404_for_an_unknown_app(provider, app):
    body = json.dumps(push_payload(provider)).encode()
    response = send(provider, "nope", body, signed_headers(provider, app.webhook_secret, body))
    assert response.status_code == 404
    assert not Deployment.objects.exists()


def test_it_answers_404_for_an_unknown_provider(app):
    body = json.dumps(push_payload("github")).encode()
    response = send("bitbucket", app.name, body, signed_headers("github", app.webhook_secret, body))
    assert response.status_code == 404


def test_it_answers_a_github_ping_with_pong(app):
    response = push("github", app, {"zen": "Keep it simple.", "hook_id": 1}, event="ping")
    assert response.status_code == 200 and response.json() == {"pong": True}
    assert not Deployment.objects.exists()


def test_a_ping_needs_a_valid_signature_too(app):
    response = push("github", app, {"zen": "hi"}, secret="wrong", event="ping")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "provider, event",
    [("github", "issues"), ("gitlab", "Tag Push Hook"), ("gitea", "release")],
)
def test_it_ignores_other_events(provider, event, app):
    response = push(provider, app, event=event)
    assert response.status_code == 200
    assert "is not a push" in response.json()["ignored"]
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_ignores_tags_and_deleted_branches(provider, app):
    tag = push(provider, app, push_payload(provider, ref="refs/tags/v1.0"))
    assert tag.status_code == 200 and tag.json() == {"ignored": "refs/tags/v1.0 is not a branch"}
    deleted = push(provider, app, push_payload(provider, sha=ZERO_SHA))
    assert deleted.status_code == 200 and deleted.json() == {"ignored": "branch main was deleted"}
    assert not Deployment.objects.exists()


def test_it_follows_the_apps_branch_rather_than_the_default_one(make_app):
    app = make_app("release-app", branch="release")
    ignored = push("github", app, push_payload("github", ref="refs/heads/main"))
    assert ignored.json() == {"ignored": "push to main; this app deploys release"}
    deployed = push("github", app, push_payload("github", ref="refs/heads/release"))
    assert deployed.status_code == 202
    assert Deployment.objects.get(app=app).branch == "release"


def test_it_deploys_to_the_apps_webhook_environment(make_app):
    app = make_app("stagey", webhook_environment="staging")
    assert push("gitea", app).status_code == 202
    assert Deployment.objects.get(app=app).environment.name == "staging"


def test_it_accepts_forgejo_headers(app):
    body = json.dumps(push_payload("gitea")).encode()
    headers = {
        "X-Forgejo-Event": "push",
        "X-Forgejo-Delivery": "f-1",
        "X-Forgejo-Signature": _hmac(app.webhook_secret, body),
    }
    assert send("gitea", app.name, body, headers).status_code == 202
    assert Deployment.objects.get(app=app).commit_sha == SHA


def test_it_accepts_githubs_form_encoded_payload(app):
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(push_payload("github"))}).encode()
    headers = signed_headers("github", app.webhook_secret, body)
    response = send(
        "github", app.name, body, headers, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 202, response.content


def test_it_refuses_a_payload_over_one_mib(app):
    payload = push_payload("github")
    payload["padding"] = "x" * (1024 * 1024)
    response = push("github", app, payload)
    assert response.status_code == 413
    assert not Deployment.objects.exists()


def test_it_refuses_get(app):
    assert Client().get(f"/hooks/github/{app.name}").status_code == 405


def test_the_secret_is_never_echoed_nor_logged(app, caplog):
    caplog.set_level(logging.DEBUG)
    responses = [
        push("gitlab", app, secret=app.webhook_secret + "x"),
        push("gitlab", app, {"ref": 1}),
        push("gitlab", app),
    ]
    for response in responses:
        assert app.webhook_secret not in response.content.decode()
    assert app.webhook_secret not in caplog.text


def test_a_new_deployment_supersedes_an_older_pending_one(app):
    first = push("github", app, push_payload("github", sha="1" * 40))
    second = push("github", app, push_payload("github", sha="2" * 40))
    assert (first.status_code, second.status_code) == (202, 202)
    statuses = dict(Deployment.objects.values_list("number", "status"))
    assert statuses == {1: "superseded", 2: "pending"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_refuses_a_delivery_without_an_id(provider, app):
    body = json.dumps(push_payload(provider)).encode()
    headers = signed_headers(provider, app.webhook_secret, body)
    del headers[
        {"github": "X-GitHub-Delivery", "gitlab": "X-Gitlab-Event-UUID"}.get(
            provider, "X-Gitea-Delivery"
        )
    ]
    response = send(provider, app.name, body, headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_delivery_id"
    assert not Deployment.objects.exists() and not WebhookDelivery.objects.exists()


def test_a_push_of_the_live_commit_is_ignored(app):
    production = app.environment("production")
    live = app.new_deployment(production, commit_sha=SHA, status="succeeded")
    production.live_deployment = live
    production.save(update_fields=["live_deployment"])
    response = push("github", app)
    assert response.status_code == 200
    assert response.json() == {"ignored": f"commit {SHA[:12]} is already live"}
    assert list(Deployment.objects.values_list("number", flat=True)) == [1]
    newer = push("github", app, push_payload("github", sha="c" * 40))
    assert newer.status_code == 202
