"""Promotion gates: a second person's approval and an HTTP check of staging stand between
staging's image and production. A gate that says no queues nothing."""

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.models import Environment
from deployments.models import Deployment, PromotionPolicy, PromotionRequest
from deployments.services import ServiceError
from deployments.services.promotion import approve, reject, request_promotion
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

LOCAL_IMAGE = "slipway/debian:bookworm"


@pytest.fixture
def image_id():
    """A real local image, so promote's check that the image still exists passes."""
    return docker.from_env().images.get(LOCAL_IMAGE).id


def make_live(app, environment_name, image_id, sha="a" * 40):
    environment = app.environment(environment_name)
    deployment = app.new_deployment(
        environment,
        status="succeeded",
        image_id=image_id,
        commit_sha=sha,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    Environment.objects.filter(pk=environment.pk).update(live_deployment=deployment)
    return deployment


@pytest.fixture
def app(make_app, image_id):
    """An app whose staging runs a succeeded deployment with a real image."""
    app = make_app("gated")
    app.staging_live = make_live(app, "staging", image_id)
    return app


def promotions(app):
    return Deployment.objects.filter(app=app, trigger="promote")


def gate(app, **fields):
    return PromotionPolicy.objects.create(
        app=app, environment=app.environment("production"), **fields
    )


class Staging:
    """A real HTTP server on loopback standing in for the proxy: it answers per path and
    remembers the Host header of each request."""

    def __init__(self):
        self.answers: dict[str, int] = {}
        self.delay = 0.0
        self.hosts: list[str] = []
        staging = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                staging.hosts.append(self.headers.get("Host", ""))
                time.sleep(staging.delay)
                status = staging.answers.get(self.path, 404)
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def staging_server(settings):
    server = Staging()
    settings.PAAS_PROXY_HTTP_PORT = server.port
    yield server
    server.close()


# --- no gates ---------------------------------------------------------------------------


def test_without_gates_a_promotion_is_queued_at_once(app, owner):
    result = request_promotion(app, owner)
    assert isinstance(result, Deployment)
    assert (result.trigger, result.environment.name) == ("promote", "production")
    assert result.source_deployment_id == app.staging_live.pk
    assert not PromotionRequest.objects.exists()


def test_a_policy_with_every_gate_off_changes_nothing(app, owner):
    gate(app, require_approval=False, check_path="")
    assert isinstance(request_promotion(app, owner), Deployment)


# --- the approval gate ------------------------------------------------------------------


def test_the_approval_gate_waits_for_someone_else_to_approve(app, owner, staff):
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    assert isinstance(request, PromotionRequest) and request.status == "pending"
    assert request.source_deployment_id == app.staging_live.pk
    assert not promotions(app).exists()

    deployment = approve(request, staff)
    assert (deployment.trigger, deployment.status) == ("promote", "pending")
    assert deployment.source_deployment_id == app.staging_live.pk
    request.refresh_from_db()
    assert (request.status, request.approved_by, request.deployment) == (
        "approved",
        staff,
        deployment,
    )
    assert request.decided_at is not None


def test_the_requester_cannot_approve_their_own_promotion(app, owner):
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    with pytest.raises(ServiceError) as caught:
        approve(request, owner)
    assert (caught.value.code, caught.value.status) == ("self_approval", 403)
    assert "someone else" in caught.value.message
    assert not promotions(app).exists()
    request.refresh_from_db()
    assert request.status == "pending"


def test_staff_cannot_approve_their_own_request_either_but_the_owner_can(app, owner, staff):
    gate(app, require_approval=True)
    request = request_promotion(app, staff)
    with pytest.raises(ServiceError) as caught:
        approve(request, staff)
    assert caught.value.code == "self_approval"
    assert approve(request, owner).trigger == "promote"


def test_someone_who_is_neither_staff_nor_the_owner_cannot_decide(app, owner, outsider):
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    for decide in (approve, reject):
        with pytest.raises(ServiceError) as caught:
            decide(request, outsider)
        assert caught.value.code == "forbidden"
    assert not promotions(app).exists()


def test_plain_staff_cannot_decide_because_approving_deploys_the_owners_code(
    app, owner, django_user_model
):
    operator = django_user_model.objects.create_user(
        "ops2", "ops2@example.com", "pw-ops-2345", is_staff=True
    )
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    for decide in (approve, reject):
        with pytest.raises(ServiceError) as caught:
            decide(request, operator)
        assert caught.value.code == "forbidden"
    request.refresh_from_db()
    assert request.status == "pending"
    assert not promotions(app).exists()


def test_an_inactive_staff_user_cannot_approve(app, owner, staff):
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    staff.is_active = False
    staff.save()
    with pytest.raises(ServiceError):
        approve(request, staff)


def test_a_rejected_promotion_queues_nothing_and_cannot_be_approved_later(app, owner, staff):
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    reject(request, staff)
    request.refresh_from_db()
    assert (request.status, request.approved_by) == ("rejected", staff)
    with pytest.raises(ServiceError) as caught:
        approve(request, staff)
    assert caught.value.code == "decided"
    assert not promotions(app).exists()


def test_asking_again_returns_the_request_already_waiting(app, owner, staff):
    gate(app, require_approval=True)
    first = request_promotion(app, owner)
    assert request_promotion(app, staff).pk == first.pk
    assert PromotionRequest.objects.count() == 1


def test_a_request_expires_when_staging_changed_since(app, owner, staff, image_id):
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    make_live(app, "staging", image_id, sha="b" * 40)
    with pytest.raises(ServiceError) as caught:
        approve(request, staff)
    assert caught.value.code == "promotion_stale"
    request.refresh_from_db()
    assert request.status == "expired"
    assert not promotions(app).exists()
    fresh = request_promotion(app, owner)
    assert fresh.pk != request.pk and fresh.status == "pending"


def test_a_request_expires_when_it_waited_too_long(app, owner, staff, settings):
    settings.PAAS_PROMOTION_REQUEST_HOURS = 1
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    PromotionRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    with pytest.raises(ServiceError) as caught:
        approve(request, staff)
    assert caught.value.code == "promotion_stale"
    assert not promotions(app).exists()


def test_nothing_to_promote_creates_no_request(make_app, owner):
    app = make_app("empty")
    gate(app, require_approval=True)
    with pytest.raises(ServiceError) as caught:
        request_promotion(app, owner)
    assert caught.value.code == "nothing_to_promote"
    assert not PromotionRequest.objects.exists()


# --- the HTTP check gate ----------------------------------------------------------------


def test_a_failing_check_queues_nothing_and_says_why(app, owner, staging_server):
    staging_server.answers["/healthz"] = 500
    gate(app, check_path="/healthz")
    with pytest.raises(ServiceError) as caught:
        request_promotion(app, owner)
    assert caught.value.code == "promotion_check_failed"
    assert "GET /healthz on staging answered 500, expected 200" in caught.value.message
    assert not promotions(app).exists() and not PromotionRequest.objects.exists()


def test_a_passing_check_queues_the_promotion(app, owner, staging_server):
    staging_server.answers["/healthz"] = 200
    gate(app, check_path="/healthz")
    deployment = request_promotion(app, owner)
    assert deployment.trigger == "promote"
    # Through the proxy: the Host header is what picks staging's route.
    assert staging_server.hosts == [app.environment("staging").hostname]


def test_the_check_expects_the_status_the_owner_chose(app, owner, staging_server):
    staging_server.answers["/ready"] = 204
    gate(app, check_path="/ready", check_expected_status=204)
    assert request_promotion(app, owner).trigger == "promote"


def test_a_redirect_is_not_followed(app, owner, staging_server):
    staging_server.answers["/healthz"] = 302
    gate(app, check_path="/healthz")
    with pytest.raises(ServiceError) as caught:
        request_promotion(app, owner)
    assert "answered 302" in caught.value.message
    assert not promotions(app).exists()


def test_a_slow_check_fails_on_its_timeout(app, owner, staging_server):
    staging_server.answers["/healthz"] = 200
    staging_server.delay = 2.0
    gate(app, check_path="/healthz", check_timeout=0.5)
    with pytest.raises(ServiceError) as caught:
        request_promotion(app, owner)
    assert "did not answer within 0.5 s" in caught.value.message
    assert not promotions(app).exists()


def test_an_unreachable_proxy_fails_the_check(app, owner, settings):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        settings.PAAS_PROXY_HTTP_PORT = probe.getsockname()[1]  # bound, never listening
        gate(app, check_path="/healthz")
        with pytest.raises(ServiceError) as caught:
            request_promotion(app, owner)
    assert "could not connect" in caught.value.message
    assert not promotions(app).exists()


def test_with_both_gates_the_check_runs_before_asking_and_again_before_promoting(
    app, owner, staff, staging_server
):
    gate(app, require_approval=True, check_path="/healthz")
    staging_server.answers["/healthz"] = 503
    with pytest.raises(ServiceError):
        request_promotion(app, owner)
    assert not PromotionRequest.objects.exists()

    staging_server.answers["/healthz"] = 200
    request = request_promotion(app, owner)
    assert request.status == "pending"

    staging_server.answers["/healthz"] = 503  # staging broke while the request waited
    with pytest.raises(ServiceError) as caught:
        approve(request, staff)
    assert caught.value.code == "promotion_check_failed"
    request.refresh_from_db()
    assert request.status == "pending" and not promotions(app).exists()

    staging_server.answers["/healthz"] = 200
    assert approve(request, staff).trigger == "promote"


@pytest.mark.parametrize("path", ["healthz", "http://169.254.169.254/", "/a b", "/x#frag"])
def test_the_check_path_is_a_path_on_staging_only(app, path):
    with pytest.raises(ValidationError) as caught:
        PromotionPolicy(
            app=app, environment=app.environment("production"), check_path=path
        ).full_clean()
    assert "check_path" in caught.value.message_dict


def test_the_check_timeout_is_bounded_well_under_the_web_timeout(app, owner):
    """The check runs while the dashboard's request waits: 15 s at most, and a refused
    value changes nothing."""
    api = ApiClient(owner)
    assert api.put_json("/apps/gated/promotion-policy", {"check_timeout": 15}).status_code == 200
    refused = api.put_json("/apps/gated/promotion-policy", {"check_timeout": 60})
    assert refused.status_code == 400 and "check_timeout" in refused.content.decode()
    assert PromotionPolicy.objects.get(app=app).check_timeout == 15


# --- the API and the dashboard ------------------------------------------------------------


def test_the_api_sets_the_policy_and_a_second_person_approves(app, owner, staff):
    owner_api, staff_api = ApiClient(owner), ApiClient(staff)
    assert (
        owner_api.put_json("/apps/gated/promotion-policy", {"require_approval": True}).status_code
        == 200
    )
    assert owner_api.put_json("/apps/gated/promotion-policy", {"nonsense": 1}).status_code == 400
    waiting = owner_api.post("/apps/gated/promote")
    assert waiting.status_code == 202 and "approval" in waiting.json()
    request_id = waiting.json()["approval"]["id"]
    assert owner_api.post(f"/apps/gated/promotions/{request_id}/approve").status_code == 403
    assert not promotions(app).exists()
    approved = staff_api.post(f"/apps/gated/promotions/{request_id}/approve")
    assert approved.status_code == 202 and approved.json()["environment"] == "production"
    assert promotions(app).count() == 1


def test_an_outsider_cannot_see_or_decide_promotions(app, owner, outsider):
    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    outsider_api = ApiClient(outsider)
    assert outsider_api.get("/apps/gated/promotions").status_code == 404
    assert outsider_api.post(f"/apps/gated/promotions/{request.pk}/approve").status_code == 404
    assert outsider_api.post(f"/apps/gated/promotions/{request.pk}/reject").status_code == 404
    request.refresh_from_db()
    assert request.status == "pending"


def test_the_app_page_offers_approval_to_the_other_person_only(app, owner, staff):
    from django.test import Client

    gate(app, require_approval=True)
    request = request_promotion(app, owner)
    mine, theirs = Client(), Client()
    mine.force_login(owner)
    theirs.force_login(staff)
    assert "Approve" not in mine.get("/apps/gated/promotions/").content.decode()
    assert "Approve" in theirs.get("/apps/gated/promotions/").content.decode()
    response = theirs.post(
        f"/apps/gated/promotions/{request.pk}/approve/", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and promotions(app).count() == 1
