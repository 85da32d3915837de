"""Per-environment router settings and scaling, as use cases (deployments/services/routing).

A refusal is a ValidationError per field (a ServiceError for scale) that saves nothing and
sends nothing; a change is saved, then jobs.sync_routes is sent once the transaction
commits (captured here, never run). The basic-auth password is stored only as a `$2y$`
bcrypt hash, which Traefik reads; scaling reuses the live image like restart.
"""

from datetime import timedelta
from functools import partial

import bcrypt
import docker
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.models import Environment
from deployments.models import Deployment, Trigger
from deployments.services import Conflict, ServiceError, routing

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
GIB = 1024**3
SNAPSHOT_FIELDS = (
    "visibility",
    "basic_auth_user",
    "basic_auth_hash",
    "maintenance",
    "maintenance_message",
    "max_body_bytes",
    "replicas",
)


@pytest.fixture
def env(make_app):
    return make_app("shop").environment("production")


@pytest.fixture
def image_id():
    """A real image in the local engine: scaling checks that the live one still exists."""
    return docker.from_env().images.get(django_settings.PAAS_BASE_IMAGES["static"]).id


def _live(app, environment, image_id):
    """A succeeded deployment on record as live in its environment (nothing runs)."""
    now = timezone.now()
    deployment = app.new_deployment(
        app.environment(environment),
        status="succeeded",
        image_id=image_id,
        commit_sha="c" * 40,
        started_at=now - timedelta(seconds=40),
        finished_at=now - timedelta(seconds=10),
    )
    Environment.objects.filter(app=app, name=environment).update(live_deployment=deployment)
    return deployment


def _row(env) -> dict:
    return Environment.objects.filter(pk=env.pk).values(*SNAPSHOT_FIELDS).get()


def _sent(callbacks) -> list[str]:
    """The task names jobs sent on commit (each callback is apply_async of a signature)."""
    return [cb.func.__self__.task for cb in callbacks if isinstance(cb, partial)]


def _protect(env, user="ops", password=PASSWORD):
    return routing.update_routing(
        env, {"visibility": "protected", "basic_auth_user": user, "basic_auth_password": password}
    )


# --- basic auth -----------------------------------------------------------------------------


def test_protecting_stores_a_2y_bcrypt_hash_and_never_the_password(
    env, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        changed = _protect(env)
    assert changed == ["visibility", "basic_auth_user", "basic_auth_password"]
    assert _sent(callbacks) == ["deployments.tasks.sync_routes"]
    row = _row(env)
    stored = row["basic_auth_hash"]
    assert stored.startswith("$2y$") and len(stored) == 60
    assert bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    assert not bcrypt.checkpw(b"wrong password", stored.encode())
    # The $2b$ form bcrypt made is the same hash: only the prefix differs.
    assert bcrypt.checkpw(PASSWORD.encode(), ("$2b$" + stored[4:]).encode())
    assert PASSWORD not in str(row) and PASSWORD not in str(
        Environment.objects.filter(pk=env.pk).values().get()
    )
    assert env.basic_auth_hash == stored  # the caller's object is up to date


def test_a_stored_password_stays_while_the_user_name_does(env, django_capture_on_commit_callbacks):
    _protect(env)
    stored = _row(env)["basic_auth_hash"]
    assert routing.update_routing(env, {"maintenance": True}) == ["maintenance"]
    assert routing.update_routing(env, {"visibility": "protected"}) == []
    assert routing.update_routing(env, {"basic_auth_user": "ops"}) == []
    # The same password again is no change (and no new hash).
    with django_capture_on_commit_callbacks() as callbacks:
        assert _protect(env) == []
    assert _sent(callbacks) == []
    assert _row(env)["basic_auth_hash"] == stored
    # A new one is.
    assert _protect(env, password="another password") == ["basic_auth_password"]
    assert bcrypt.checkpw(b"another password", _row(env)["basic_auth_hash"].encode())


def test_a_new_user_name_needs_a_password_again(env):
    _protect(env)
    before = _row(env)
    with pytest.raises(ValidationError) as refused:
        routing.update_routing(env, {"basic_auth_user": "someone-else"})
    assert set(refused.value.message_dict) == {"basic_auth_password"}
    assert _row(env) == before
    assert _protect(env, user="someone-else") == ["basic_auth_user", "basic_auth_password"]


def test_public_drops_the_hash_and_internal_keeps_it(env):
    _protect(env)
    stored = _row(env)["basic_auth_hash"]
    assert routing.update_routing(env, {"visibility": "internal"}) == ["visibility"]
    assert _row(env)["basic_auth_hash"] == stored and not env.is_routed
    assert routing.update_routing(env, {"visibility": "protected"}) == ["visibility"]
    changed = routing.update_routing(env, {"visibility": "public"})
    assert changed == ["visibility", "basic_auth_password"]
    row = _row(env)
    assert row["basic_auth_hash"] == "" and row["visibility"] == "public"
    # Nothing to keep it by: protecting again needs the password.
    with pytest.raises(ValidationError) as refused:
        routing.update_routing(env, {"visibility": "protected"})
    assert set(refused.value.message_dict) == {"basic_auth_password"}


def test_a_long_password_counts_to_bcrypts_72_bytes_as_traefik_does(env):
    password = "é" * 128  # 256 characters, 256 bytes
    _protect(env, password=password)
    stored = _row(env)["basic_auth_hash"].encode()
    assert bcrypt.checkpw(password.encode()[:72], stored)
    assert routing.password_matches(env, password)


# --- refusals -------------------------------------------------------------------------------

REFUSALS = [
    ({"visibility": "secret"}, {"visibility"}),
    ({"visibility": 1}, {"visibility"}),
    ({"visibility": "protected"}, {"basic_auth_user", "basic_auth_password"}),
    (
        {"visibility": "protected", "basic_auth_user": "ops", "basic_auth_password": "seven77"},
        {"basic_auth_password"},
    ),
    (
        {"visibility": "protected", "basic_auth_user": "ops", "basic_auth_password": "x" * 257},
        {"basic_auth_password"},
    ),
    (
        {
            "visibility": "protected",
            "basic_auth_user": "ops",
            "basic_auth_password": "pass\x00word",
        },
        {"basic_auth_password"},
    ),
    (
        {"visibility": "protected", "basic_auth_user": "a:b", "basic_auth_password": PASSWORD},
        {"basic_auth_user"},
    ),
    (
        {"visibility": "protected", "basic_auth_user": "u" * 65, "basic_auth_password": PASSWORD},
        {"basic_auth_user"},
    ),
    (
        {"visibility": "protected", "basic_auth_user": "", "basic_auth_password": PASSWORD},
        {"basic_auth_user"},
    ),
    ({"basic_auth_password": PASSWORD}, {"basic_auth_password"}),  # public keeps none
    ({"basic_auth_user": "white space"}, {"basic_auth_user"}),
    ({"maintenance": "yes"}, {"maintenance"}),
    ({"maintenance_message": "m" * 2001}, {"maintenance_message"}),
    ({"maintenance_message": "nul\x00"}, {"maintenance_message"}),
    ({"maintenance_message": "\ud800"}, {"maintenance_message"}),
    ({"max_body_bytes": 1023}, {"max_body_bytes"}),
    ({"max_body_bytes": 10 * GIB + 1}, {"max_body_bytes"}),
    ({"max_body_bytes": -1}, {"max_body_bytes"}),
    ({"max_body_bytes": "2048"}, {"max_body_bytes"}),
    ({"max_body_bytes": True}, {"max_body_bytes"}),
    ({"max_body_bytes": 2048.0}, {"max_body_bytes"}),
    ({"replicas": 3, "basic_auth_hash": "$2y$"}, {"replicas", "basic_auth_hash"}),
]


@pytest.mark.parametrize("data, fields", REFUSALS)
def test_a_refusal_names_its_fields_and_changes_nothing(
    env, data, fields, django_capture_on_commit_callbacks
):
    before = _row(env)
    # Valid changes given beside the bad one are not saved either.
    if "maintenance" not in data and "maintenance_message" not in data:
        data = {**data, "maintenance": True, "maintenance_message": "Back soon."}
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ValidationError) as no:
        routing.update_routing(env, data)
    assert set(no.value.message_dict) == fields
    assert all(no.value.message_dict[field] for field in fields)
    assert _row(env) == before
    assert _sent(callbacks) == []


# --- maintenance and the body limit ---------------------------------------------------------


def test_maintenance_and_the_body_limit_are_saved_and_announced(
    env, settings, django_capture_on_commit_callbacks
):
    settings.PAAS_MAX_BODY_BYTES = 200 * 1024 * 1024
    assert env.body_limit == 200 * 1024 * 1024
    message = "Back at 14:00 <b>UTC</b>."
    with django_capture_on_commit_callbacks() as callbacks:
        changed = routing.update_routing(
            env, {"maintenance": True, "maintenance_message": message, "max_body_bytes": 1024}
        )
    assert changed == ["maintenance", "maintenance_message", "max_body_bytes"]
    assert _sent(callbacks) == ["deployments.tasks.sync_routes"]
    row = _row(env)
    assert row["maintenance"] and row["maintenance_message"] == message
    assert row["max_body_bytes"] == 1024 == env.body_limit
    assert routing.router_page(env) == message

    assert routing.update_routing(env, {"max_body_bytes": 10 * GIB}) == ["max_body_bytes"]
    assert routing.update_routing(env, {"max_body_bytes": None}) == ["max_body_bytes"]
    assert _row(env)["max_body_bytes"] is None and env.body_limit == 200 * 1024 * 1024
    assert routing.update_routing(env, {"maintenance_message": "m" * 2000}) == [
        "maintenance_message"
    ]


def test_nothing_to_change_saves_and_sends_nothing(env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        assert routing.update_routing(env, {}) == []
        assert routing.update_routing(env, {"visibility": "public", "max_body_bytes": None}) == []
    assert _sent(callbacks) == []


def test_the_page_the_router_shows(env):
    assert routing.router_page(env) is None
    Environment.objects.filter(pk=env.pk).update(stopped=True)
    env.refresh_from_db()
    assert routing.router_page(env) == "This app is stopped."
    routing.update_routing(env, {"maintenance": True})
    assert routing.router_page(env) == "This app is under maintenance."
    routing.update_routing(env, {"maintenance_message": "Moving house."})
    assert routing.router_page(env) == "Moving house."


# --- scaling --------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [0, 11, -1, True, "3", 2.0, None])
def test_scale_refuses_a_count_out_of_range(env, replicas, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ServiceError) as no:
        routing.scale(env.app, "production", replicas)
    assert (no.value.status, no.value.code) == (400, "invalid_replicas")
    assert "from 1 to 10" in no.value.message
    assert _row(env)["replicas"] == 1 and _sent(callbacks) == []


def test_scale_follows_paas_max_replicas(env, settings):
    settings.PAAS_MAX_REPLICAS = 3
    with pytest.raises(ServiceError, match="from 1 to 3"):
        routing.scale(env.app, "production", 4)
    assert routing.scale(env.app, "production", 3) is None


def test_scale_refuses_an_unknown_environment(env):
    with pytest.raises(ServiceError) as no:
        routing.scale(env.app, "qa", 2)
    assert no.value.code == "invalid_environment"


def test_scale_with_nothing_live_only_saves_the_count(env, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        assert routing.scale(env.app, "production", 4) is None
    assert _row(env)["replicas"] == 4
    assert env.app.environment("staging").replicas == 1
    assert not Deployment.objects.exists() and _sent(callbacks) == []


def test_scale_with_a_live_deployment_queues_one_that_reuses_its_image(
    env, owner, image_id, django_capture_on_commit_callbacks
):
    live = _live(env.app, "production", image_id)
    with django_capture_on_commit_callbacks() as callbacks:
        deployment = routing.scale(env.app, "production", 3, requested_by=owner)
    assert deployment.trigger == Trigger.SCALE and deployment.status == "pending"
    assert deployment.source_deployment == live and deployment.number == live.number + 1
    assert deployment.environment.name == "production" and deployment.requested_by == owner
    assert deployment.commit_sha == live.commit_sha
    assert _row(env)["replicas"] == 3
    assert _sent(callbacks) == ["deployments.tasks.run_deployment"]


def test_a_stopped_environment_is_not_scaled(env, image_id):
    _live(env.app, "production", image_id)
    Environment.objects.filter(pk=env.pk).update(stopped=True)
    with pytest.raises(Conflict) as no:
        routing.scale(env.app, "production", 2)
    assert (no.value.status, no.value.code) == (409, "stopped")
    assert _row(env)["replicas"] == 1 and env.app.deployments.count() == 1


def test_scale_waits_for_a_deployment_in_progress(env, image_id):
    """Else it would start the image live now after the one being deployed went live."""
    _live(env.app, "production", image_id)
    env.app.new_deployment(env, status="building")
    with pytest.raises(Conflict) as no:
        routing.scale(env.app, "production", 2)
    assert (no.value.status, no.value.code) == (409, "deployment_in_progress")
    assert _row(env)["replicas"] == 1 and env.app.deployments.count() == 2
