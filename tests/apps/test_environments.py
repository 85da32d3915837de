"""Environments are rows: any DNS label, unique per app, each with its own host name, and no
two environments of any apps ever on the same host (a unique column proves it)."""

import importlib

import docker
import pytest
from django.apps import apps as django_apps
from django.conf import settings

from apps.models import App, AuditEntry, Environment, EnvVar, Volume
from deployments import services
from deployments.models import Status
from deployments.services import Conflict
from deployments.services import environments as env_service
from tests.support import (
    containers,
    log_text,
    make_repo,
    sample_files,
    through_proxy,
    wait_final,
    wait_for,
)

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("apps.migrations.0015_environments_as_rows")


def _labels() -> set[str]:
    return set(Environment.objects.values_list("host_label", flat=True))


# --- names ------------------------------------------------------------------------------------


def _made(name: str) -> list[tuple[str, str]]:
    return [(e.name, e.host_label) for e in App.objects.get(name=name).environments.all()]


def test_a_new_app_has_production_and_staging_only_on_request(api):
    repository = "https://e.com/a/b.git"
    assert api.post("/apps", {"name": "solo", "repository": repository}).status_code == 201
    assert _made("solo") == [("production", "solo")]
    asked = api.post("/apps", {"name": "shop", "repository": repository, "staging": True})
    assert asked.status_code == 201
    assert _made("shop") == [("production", "shop"), ("staging", "shop-staging")]
    assert asked.json()["urls"]["staging"].startswith("http://shop-staging.")


def test_env_vars_for_staging_at_creation_make_it(api):
    body = {"name": "shop", "repository": "https://e.com/a/b.git", "env": {"staging": {"A": "1"}}}
    assert api.post("/apps", body).status_code == 201
    assert App.objects.get(name="shop").environment("staging").env_dict() == {"A": "1"}


def test_the_create_form_makes_staging_when_ticked(client, owner):
    client.force_login(owner)
    form = {"name": "shop", "repository": "https://e.com/a/b.git", "build_method": "auto"}
    client.post("/new/", {**form, "staging": "on"})
    client.post("/new/", {**form, "name": "solo"})
    assert _made("shop") == [("production", "shop"), ("staging", "shop-staging")]
    assert _made("solo") == [("production", "solo")]


def test_an_environment_gets_its_own_host_after_the_others(api, make_app):
    make_app("shop")
    response = api.post("/apps/shop/environments", {"name": "dev"})
    assert response.status_code == 201, response.content
    assert response.json()["url"].startswith("http://shop-dev.localhost")
    listed = api.get("/apps/shop/environments").json()["environments"]
    assert [e["name"] for e in listed] == ["production", "staging", "dev"]
    assert listed[0]["url"].startswith("http://shop.localhost")
    assert listed[2]["live_deployment"] is None and listed[2]["created_at"]


@pytest.mark.parametrize(
    "name",
    ["", "Dev", "dev_x", "-dev", "dev-", "de--v", "1dev", "a" * 31, "pr-12", "www", "api",
     "admin", "x-production", "dév"],
)  # fmt: skip
def test_a_name_that_is_not_a_free_dns_label_is_refused(api, make_app, name):
    make_app("shop")
    response = api.post("/apps/shop/environments", {"name": name})
    assert response.status_code == 400, response.content
    assert "name" in response.json()["error"]["fields"]
    assert Environment.objects.count() == 2


def test_pr_names_are_kept_for_previews_and_say_so(api, make_app):
    make_app("shop")
    error = api.post("/apps/shop/environments", {"name": "pr-7"}).json()["error"]
    assert "pull-request previews" in error["fields"]["name"][0]


def test_a_name_is_used_once_per_app_but_again_in_another(api, make_app):
    make_app("shop")
    make_app("blog")
    assert api.post("/apps/shop/environments", {"name": "dev"}).status_code == 201
    again = api.post("/apps/shop/environments", {"name": "dev"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "name_taken"
    assert api.post("/apps/blog/environments", {"name": "dev"}).status_code == 201


def test_the_per_app_cap_is_a_409_and_creates_nothing(api, make_app, settings):
    settings.PAAS_MAX_ENVIRONMENTS_PER_APP = 3
    make_app("shop")
    assert api.post("/apps/shop/environments", {"name": "dev"}).status_code == 201
    refused = api.post("/apps/shop/environments", {"name": "qa"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "environment_limit"
    assert not Environment.objects.filter(name="qa").exists()


def test_open_previews_do_not_count_toward_the_cap(api, make_app, settings):
    settings.PAAS_MAX_ENVIRONMENTS_PER_APP = 3
    app = make_app("shop")
    for number in (1, 2, 3):
        Environment.create_for(app, f"pr-{number}")  # as previews are made
    assert api.post("/apps/shop/environments", {"name": "dev"}).status_code == 201


def test_a_host_label_longer_than_dns_allows_is_refused(api, make_app):
    make_app("s" * 40)
    response = api.post(f"/apps/{'s' * 40}/environments", {"name": "d" * 30})
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]


def test_only_who_may_change_the_app_creates_and_deletes(outsider_api, make_app):
    make_app("shop")
    assert outsider_api.get("/apps/shop/environments").status_code == 404
    assert outsider_api.post("/apps/shop/environments", {"name": "dev"}).status_code == 404
    assert outsider_api.delete("/apps/shop/environments/staging").status_code == 404
    assert Environment.objects.count() == 2


def test_copy_env_from_copies_the_env_vars_but_not_the_add_ons_ones(make_app):
    app = make_app("shop")
    staging = app.environment("staging")
    services.set_env_vars(staging, {"API_KEY": "k1", "MODE": "test"})
    env = env_service.create_environment(app, "dev", copy_env_from="staging")
    assert env.env_dict() == {"API_KEY": "k1", "MODE": "test"}
    assert env_service.create_environment(app, "qa").env_dict() == {}
    assert AuditEntry.objects.filter(app=app, action="environment.create").count() == 2


# --- the host-name rule -------------------------------------------------------------------------


def test_an_app_named_like_another_apps_environment_host_is_refused(api, make_app):
    make_app("shop")
    assert api.post("/apps/shop/environments", {"name": "dev"}).status_code == 201
    response = api.post("/apps", {"name": "shop-dev", "repository": "https://e.com/a/b.git"})
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "host_taken"
    assert not App.objects.filter(name="shop-dev").exists()
    assert _labels() == {"shop", "shop-staging", "shop-dev"}


def test_an_environment_named_like_another_apps_host_is_refused(api, make_app):
    make_app("shop-dev")
    make_app("shop")
    response = api.post("/apps/shop/environments", {"name": "dev"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "host_taken"
    assert not Environment.objects.filter(app__name="shop", name="dev").exists()


@pytest.mark.parametrize("first", ["shop", "shop-dev"])
def test_two_apps_environments_never_spell_the_same_host_in_either_order(make_app, first):
    """shop + dev-x and shop-dev + x would both be shop-dev-x."""
    wanted = {"shop": "dev-x", "shop-dev": "x"}
    second = "shop-dev" if first == "shop" else "shop"
    for name in (first, second):
        make_app(name)
    env_service.create_environment(App.objects.get(name=first), wanted[first])
    with pytest.raises(Conflict) as refused:
        env_service.create_environment(App.objects.get(name=second), wanted[second])
    assert refused.value.code == "host_taken"
    assert Environment.objects.filter(host_label="shop-dev-x").count() == 1


def test_the_unique_column_holds_even_past_the_service(make_app):
    app = make_app("shop")
    other = make_app("shop-qa-x")
    with pytest.raises(Exception):  # noqa: B017 — the database's IntegrityError, or HostTaken
        Environment.create_for(app, "qa-x")
    assert Environment.objects.filter(host_label="shop-qa-x").get().app == other


def test_no_app_name_lands_on_another_apps_default_staging_host(api, make_app):
    make_app("shop")
    taken = api.post("/apps", {"name": "shop-staging", "repository": "https://e.com/a/b.git"})
    assert taken.status_code == 400  # refused by name: it is kept for staging hosts


def test_an_environment_named_for_a_route_suffix_is_refused(make_app):
    """Routes are <instance>-<app>-<env>: app sh's env op-production would be app sh-op's
    production route, and a label of digits would be a domain check's."""
    make_app("sh-op")
    app = make_app("sh")
    for name in ("op-production", "12"):
        with pytest.raises(Exception):  # noqa: B017 — a ValidationError on name
            env_service.create_environment(app, name)
    assert Environment.objects.filter(app=app).count() == 2


# --- delete -------------------------------------------------------------------------------------


def test_production_cannot_be_deleted(api, make_app):
    make_app("shop")
    response = api.delete("/apps/shop/environments/production")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "production_environment"


def test_an_environment_is_not_deleted_while_it_deploys(api, make_app):
    app = make_app("shop")
    app.new_deployment(app.environment("staging"))  # pending
    response = api.delete("/apps/shop/environments/staging")
    assert response.status_code == 409 and response.json()["error"]["code"] == "deploying"
    assert not app.environment("staging").cleanup_requested


def test_unknown_environments_are_404(api, make_app):
    make_app("shop")
    assert api.delete("/apps/shop/environments/nope").status_code == 404
    assert api.get("/apps/shop/environments/nope").status_code == 404


def test_nothing_new_deploys_to_an_environment_being_deleted(make_app):
    app = make_app("shop")
    env_service.delete_environment(app.environment("staging"))
    with pytest.raises(Conflict) as refused:
        services.queue_deployment(app, "staging")
    assert refused.value.code == "environment_deleting"


# --- migration ----------------------------------------------------------------------------------


def test_the_migration_gives_todays_rows_their_hosts_and_keeps_what_is_attached(make_app):
    app = make_app("shop")
    staging = app.environment("staging")
    EnvVar.objects.create(environment=staging, key="K", value="v")
    Volume.objects.create(environment=staging, name="data", mount_path="/data")
    # As before the migration: no labels, no positions (distinct values: the column is unique).
    Environment.objects.filter(pk=staging.pk).update(host_label="old-1", position=7)
    Environment.objects.filter(app=app, name="production").update(host_label="old-2", position=7)
    MIGRATION.fill_host_labels(django_apps, None)
    assert [(e.name, e.host_label, e.position) for e in app.environments.all()] == [
        ("production", "shop", 0),
        ("staging", "shop-staging", 1),
    ]
    assert app.environment("staging").env_dict() == {"K": "v"}
    assert app.environment("staging").volumes.count() == 1


# --- live: deploy a new environment through the real worker and router ---------------------------


def test_a_new_environment_deploys_answers_on_its_host_and_is_deleted_clean(
    platform, owner, api, tmp_path
):
    repo = make_repo(tmp_path / "envs", sample_files("static"))
    app = App.objects.create(name="envs", owner=owner, repository=str(repo))
    assert api.post("/apps/envs/environments", {"name": "dev"}).status_code == 201
    Volume.objects.create(environment=app.environment("dev"), name="data", mount_path="/data")
    deployment = wait_final(services.queue_deployment(app, "dev"))
    assert deployment.status == Status.SUCCEEDED, log_text(deployment)
    host = f"envs-dev.{settings.PAAS_DOMAIN}"
    wait_for(lambda: through_proxy(host).status_code == 200, timeout=15, message="dev answers")
    assert through_proxy(f"envs.{settings.PAAS_DOMAIN}").status_code != 200  # not deployed

    volume = app.environment("dev").volumes.get().docker_name
    assert api.delete("/apps/envs/environments/dev").status_code == 202
    wait_for(lambda: not app.environments.filter(name="dev").exists(), timeout=60, message="gone")
    labels = [f"slipway.app={app.name}", "slipway.environment=dev"]
    assert not containers(label=labels)
    assert volume not in {v.name for v in docker.from_env().volumes.list()}
    wait_for(lambda: through_proxy(host).status_code == 404, timeout=15, message="route gone")
    assert [e.name for e in app.environments.all()] == ["production"]
