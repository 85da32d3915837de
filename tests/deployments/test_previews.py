"""Preview environments per pull request: opened → a pr-<number> environment live on its own
host with its own database seeded from the template's latest backup; updated → redeployed
at the new head; closed → nothing of it left in Docker, the router or the database. Forks
(when off) and previews over the limit are refused and change nothing; the status goes
back to the pull request on the (fake) forge. Real worker, engine and router."""

import json
import uuid

import docker
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.models import AddOn, App, AuditEntry, Backup, Environment, EnvVar, Preview
from deployments import wiring
from deployments.adapters.git_providers import CommitStatus, post_commit_status
from deployments.adapters.sources import fetch
from deployments.adapters.sources.git import SourceError
from deployments.models import Deployment, Status
from deployments.models.webhook import WebhookDelivery
from deployments.services import addon_backups
from deployments.services import addons as addon_services
from deployments.workers import previews as preview_worker
from tests.apps.addon_helpers import addon_leftovers, connect, volume_exists, wait_addon  # noqa: F401
from tests.deployments.test_webhooks import send, signed_headers
from tests.support import (
    commit,
    containers,
    git,
    log_text,
    make_repo,
    sample_files,
    through_proxy,
    wait_final,
    wait_for,
)

PR_EVENT = {"github": "pull_request", "gitlab": "Merge Request Hook", "gitea": "pull_request"}
PROVIDERS = list(PR_EVENT)
SHA = "c0ffee" + "1" * 34
NEW_SHA = "c0ffee" + "2" * 34
ACTIONS = {  # the previews' word -> each provider's
    "open": {"github": "opened", "gitlab": "open", "gitea": "opened"},
    "update": {"github": "synchronize", "gitlab": "update", "gitea": "synchronized"},
    "close": {"github": "closed", "gitlab": "merge", "gitea": "closed"},
}


def pr_payload(provider, number=7, action="open", sha=SHA, branch="feature", fork=False):
    raw = ACTIONS[action][provider] if action in ACTIONS else action
    if provider == "gitlab":
        attributes = {
            "iid": number,
            "action": raw,
            "title": "Add a feature",
            "url": f"https://gitlab.example/acme/shop/-/merge_requests/{number}",
            "source_branch": branch,
            "source_project_id": 99 if fork else 1,
            "target_project_id": 1,
            "last_commit": {"id": sha},
        }
        if action == "update":
            attributes["oldrev"] = "9" * 40
        project = {"path_with_namespace": "acme/shop"}
        return {"object_kind": "merge_request", "project": project, "object_attributes": attributes}
    head_repo = "mallory/shop" if fork else "acme/shop"
    pull = {
        "number": number,
        "title": "Add a feature",
        "html_url": f"https://forge.example/acme/shop/pull/{number}",
        "head": {"sha": sha, "ref": branch, "repo": {"full_name": head_repo}},
        "base": {"ref": "main", "repo": {"full_name": "acme/shop"}},
    }
    return {"action": raw, "number": number, "pull_request": pull}


def send_pr(provider, app, payload, delivery=None):
    body = json.dumps(payload).encode()
    headers = signed_headers(
        provider, app.webhook_secret, body, event=PR_EVENT[provider], delivery=delivery
    )
    return send(provider, app.name, body, headers)


def nothing_made(app) -> bool:
    return (
        not Preview.objects.filter(app=app).exists()
        and not app.environments.filter(name__startswith="pr-").exists()
        and not Deployment.objects.filter(app=app).exists()
    )


def outcome_of(app) -> str:
    return WebhookDelivery.objects.filter(app=app).latest("pk").outcome


@pytest.fixture
def previewed(make_app):
    return make_app("shop", previews_enabled=True)


# --- refusals: nothing changed -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_fork_pull_request_is_refused_while_forks_are_off(provider, previewed):
    response = send_pr(provider, previewed, pr_payload(provider, fork=True))

    assert response.status_code == 200
    assert response.json()["ignored"].startswith("fork: pull request #7 comes from a fork")
    assert nothing_made(previewed)
    assert outcome_of(previewed).startswith("ignored: fork:")


@pytest.mark.django_db
def test_previews_are_off_unless_enabled(make_app):
    app = make_app("plain")
    response = send_pr("github", app, pr_payload("github"))
    assert response.json() == {"ignored": "previews are off for this app"}
    assert nothing_made(app)


@pytest.mark.django_db
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("number", [0, -3, "7", 1.5, True, None, 10**12])
def test_a_number_that_is_not_a_positive_int_is_refused(provider, number, previewed):
    response = send_pr(provider, previewed, pr_payload(provider, number=number))

    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, "invalid_payload")
    assert "not a positive whole number" in error["message"]
    assert nothing_made(previewed) and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "provider, action", [("github", "labeled"), ("gitlab", "approved"), ("gitea", "edited")]
)
def test_an_action_that_changes_no_code_is_ignored(provider, action, previewed):
    response = send_pr(provider, previewed, pr_payload(provider, action=action))
    assert response.status_code == 200
    assert f"action “{action}” changes no code" in response.json()["ignored"]
    assert nothing_made(previewed)


@pytest.mark.django_db
def test_a_gitlab_update_without_new_commits_is_ignored(previewed):
    payload = pr_payload("gitlab", action="update")
    del payload["object_attributes"]["oldrev"]
    response = send_pr("gitlab", previewed, payload)
    assert response.json() == {"ignored": "merge request updated without new commits"}
    assert nothing_made(previewed)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p.pop("pull_request"),
        lambda p: p["pull_request"]["head"].update(sha="not-a-sha"),
        lambda p: p["pull_request"]["head"].update(sha="0" * 40),
        lambda p: p["pull_request"]["head"].update(ref=""),
        lambda p: p["pull_request"]["base"].pop("repo"),
        lambda p: p.update(action=["opened"]),
    ],
)
def test_a_malformed_payload_is_a_400_and_changes_nothing(mangle, previewed):
    payload = pr_payload("github")
    mangle(payload)
    response = send_pr("github", previewed, payload)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert nothing_made(previewed)


@pytest.mark.django_db
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_bad_signature_is_refused(provider, previewed):
    body = json.dumps(pr_payload(provider)).encode()
    headers = signed_headers(provider, "not-the-secret", body, event=PR_EVENT[provider])
    response = send(provider, previewed.name, body, headers)
    assert response.status_code == 403
    assert nothing_made(previewed)


@pytest.mark.django_db
def test_a_replayed_delivery_opens_nothing_twice(previewed):
    delivery = str(uuid.uuid4())
    first = send_pr("github", previewed, pr_payload("github"), delivery=delivery)
    again = send_pr("github", previewed, pr_payload("github"), delivery=delivery)

    assert first.status_code == 202 and first.json()["preview"] == "pr-7"
    assert again.json() == {"ignored": "duplicate delivery"}
    assert Preview.objects.filter(app=previewed).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("provider", PROVIDERS)
def test_opening_makes_the_environment_with_the_template_vars_but_the_marked_ones(
    provider, previewed
):
    template = previewed.environment("production")
    EnvVar.objects.create(environment=template, key="PUBLIC_FLAG", value="yes")
    EnvVar.objects.create(
        environment=template, key="SIGNING_SECRET", value="s3cr3t-value", not_for_previews=True
    )

    response = send_pr(provider, previewed, pr_payload(provider, number=12))

    assert response.status_code == 202
    assert response.json() == {"preview": "pr-12", "status": "preparing", "commit": SHA}
    preview = Preview.objects.get(app=previewed, number=12)
    assert (preview.head_sha, preview.head_branch, preview.from_fork) == (SHA, "feature", False)
    assert preview.fetch_ref == "refs/heads/feature"
    assert preview.environment.env_dict() == {"PUBLIC_FLAG": "yes"}
    assert outcome_of(previewed) == "preview pr-12 preparing"


@pytest.mark.django_db
@pytest.mark.parametrize("provider", PROVIDERS)
def test_closing_or_merging_marks_the_environment_for_the_cleanup_job(provider, previewed):
    send_pr(provider, previewed, pr_payload(provider))
    closed = send_pr(provider, previewed, pr_payload(provider, action="close"))
    again = send_pr(provider, previewed, pr_payload(provider, action="close"))

    assert closed.status_code == 202
    assert closed.json() == {"preview": "pr-7", "status": "deleting", "commit": SHA}
    assert previewed.environment("pr-7").cleanup_requested
    assert again.json() == {"ignored": "the preview of #7 is being deleted"}
    actions = AuditEntry.objects.filter(app=previewed).values_list("action", flat=True)
    assert {"preview.open", "preview.close", "environment.delete"} <= set(actions)


@pytest.mark.django_db
def test_closing_a_pull_request_without_a_preview_is_ignored(previewed):
    response = send_pr("gitea", previewed, pr_payload("gitea", action="close"))
    assert response.json() == {"ignored": "no preview of #7 to delete"}


@pytest.mark.django_db
def test_a_fork_is_fetched_from_the_pull_ref_when_forks_are_allowed(make_app):
    app = make_app("forky", previews_enabled=True, previews_allow_forks=True)
    assert send_pr("github", app, pr_payload("github", fork=True)).status_code == 202
    assert send_pr("gitlab", app, pr_payload("gitlab", number=8, fork=True)).status_code == 202
    refs = dict(Preview.objects.filter(app=app).values_list("number", "fetch_ref"))
    assert refs == {7: "refs/pull/7/head", 8: "refs/merge-requests/8/head"}


@pytest.mark.django_db
def test_a_head_that_moves_while_the_preview_is_prepared_is_the_one_deployed(previewed):
    send_pr("github", previewed, pr_payload("github"))
    moved = send_pr("github", previewed, pr_payload("github", action="update", sha=NEW_SHA))
    assert moved.json() == {"preview": "pr-7", "status": "preparing", "commit": NEW_SHA}
    assert not Deployment.objects.exists()  # the preparation deploys it

    assert preview_worker.prepare(Preview.objects.get().pk, runtime=None) == "deployed"

    [first] = Deployment.objects.all()
    assert (first.commit_sha, first.environment.name, first.branch) == (NEW_SHA, "pr-7", "feature")
    assert preview_worker.prepare(Preview.objects.get().pk, runtime=None) == "skipped"
    later = send_pr("github", previewed, pr_payload("github", action="update", sha=SHA))
    assert later.status_code == 202 and later.json()["commit"] == SHA
    assert Deployment.objects.filter(commit_sha=SHA, environment=first.environment).exists()


def _template_database(app):
    addon = AddOn.new(app.environment("production"), "postgres")
    addon.status = "running"
    addon.save()
    EnvVar.objects.create(
        environment=addon.environment, key="DATABASE_URL", value=addon.connection_url()
    )
    return addon


@pytest.mark.django_db
@pytest.mark.parametrize("database", ["seed", "empty"])
def test_a_preview_gets_its_own_database_of_the_templates_kind(database, make_app):
    app = make_app("shop", previews_enabled=True, preview_database=database)
    template_db = _template_database(app)

    send_pr("gitlab", app, pr_payload("gitlab"))

    preview = Preview.objects.get(app=app)
    own = AddOn.objects.get(environment=preview.environment)
    assert (own.kind, own.status) == ("postgres", "creating")
    assert own.volume != template_db.volume and own.password != template_db.password
    assert preview.environment.env_dict() == {"DATABASE_URL": own.connection_url()}
    assert preview_worker.seed_backup(preview) is None  # no backup taken: it starts empty


@pytest.mark.django_db
def test_database_none_makes_none_and_copies_no_database_url(make_app):
    app = make_app("shop", previews_enabled=True, preview_database="none")
    _template_database(app)
    send_pr("gitea", app, pr_payload("gitea"))
    preview = Preview.objects.get(app=app)
    assert not AddOn.objects.filter(environment=preview.environment).exists()
    assert preview.environment.env_dict() == {}


# --- fetching the pull request's head ------------------------------------------------------------


def test_fetch_takes_a_pull_ref_and_builds_exactly_its_head(tmp_path):
    repo = make_repo(tmp_path / "base", {"a.txt": "base"})
    git(repo, "checkout", "-q", "-b", "from-fork")
    head = commit(repo, {"a.txt": "fork's change"}, "fork commit")
    git(repo, "update-ref", "refs/pull/7/head", head)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "from-fork")  # not in the base repository, like a fork's

    fetched = fetch(
        str(repo), "from-fork", tmp_path / "out", commit_sha=head, ref="refs/pull/7/head", log=str
    )

    assert fetched.commit_sha == head
    assert (tmp_path / "out" / "a.txt").read_text() == "fork's change"
    with pytest.raises(SourceError) as refused:
        fetch(str(repo), "x", tmp_path / "out2", ref="refs/heads/main", log=str)
    assert refused.value.code == "invalid_ref"


# --- commit statuses through each provider's API ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind, state_sent", [("github", "failure"), ("gitlab", "failed"), ("gitea", "failure")]
)
def test_a_status_is_posted_with_the_owners_token(kind, state_sent, forge, connect, owner):
    fake = forge(kind)
    fake.add_repo("acme/shop", timezone.now(), private=True)
    connect(fake)
    status = CommitStatus("failure", "Preview deployment #3 failed", "http://shop-pr-7.localhost")

    post_commit_status(owner, kind, "acme/shop", SHA, status)

    [posted] = fake.posted_statuses
    assert (posted["repo"], posted["sha"], posted["state"]) == ("acme/shop", SHA, state_sent)
    assert posted["description"] == "Preview deployment #3 failed"
    assert posted["target_url"] == "http://shop-pr-7.localhost"
    assert posted["name" if kind == "gitlab" else "context"] == "slipway/preview"
    [hit] = [h for h in fake.requests if h["method"] == "POST"]
    assert fake.token in hit["authorization"] and fake.token not in hit["path"]


# --- the API and the dashboard -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_reads_and_changes_the_settings(api, make_app):
    app = make_app("shop")
    EnvVar.objects.create(environment=app.environment("staging"), key="STRIPE_KEY", value="sk")
    assert api.get("/apps/shop/previews").json() == {
        "settings": {
            "enabled": False,
            "template": "production",
            "database": "seed",
            "allow_forks": False,
            "limit": settings.PAAS_MAX_PREVIEWS_PER_APP,
            "not_for_previews": [],
        },
        "previews": [],
    }

    body = {"enabled": True, "template": "staging", "database": "empty"}
    changed = api.put_json("/apps/shop/previews", {**body, "not_for_previews": ["STRIPE_KEY"]})

    assert changed.status_code == 200, changed.content
    got = changed.json()["settings"]
    assert (got["enabled"], got["template"], got["database"]) == (True, "staging", "empty")
    assert got["not_for_previews"] == ["STRIPE_KEY"]
    app.refresh_from_db()
    assert (app.previews_enabled, app.preview_template, app.preview_database) == (
        True,
        "staging",
        "empty",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"template": "nowhere"}, {"database": "copy"}, {"not_for_previews": ["NOPE"]}, {"x": 1}],
)
def test_the_api_refuses_bad_settings_and_changes_nothing(api, make_app, body):
    app = make_app("shop")
    response = api.put_json("/apps/shop/previews", body)
    assert response.status_code in (400, 422)
    app.refresh_from_db()
    assert (app.preview_template, app.preview_database) == ("production", "seed")


@pytest.mark.django_db
def test_outsiders_neither_read_nor_change_previews(outsider_api, make_app):
    make_app("shop")
    assert outsider_api.get("/apps/shop/previews").status_code == 404
    assert outsider_api.put_json("/apps/shop/previews", {"enabled": True}).status_code == 404


@pytest.mark.django_db
def test_the_dashboard_lists_previews_and_saves_the_settings(owner, previewed):
    send_pr("github", previewed, pr_payload("github", number=21))
    browser = Client()
    browser.force_login(owner)

    page = browser.get("/apps/shop/").content.decode()
    assert 'data-testid="preview-21"' in page
    assert 'href="https://forge.example/acme/shop/pull/21"' in page
    assert SHA[:7] in page and "preparing" in page and "http://shop-pr-21." in page

    form = {"previews_enabled": "on", "preview_template": "staging", "preview_database": "none"}
    saved = browser.post("/apps/shop/previews/", form, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and "Preview settings saved." in saved.content.decode()
    previewed.refresh_from_db()
    assert (previewed.preview_template, previewed.preview_database) == ("staging", "none")
    assert not previewed.previews_allow_forks
    assert 'data-testid="preview-settings"' in browser.get("/apps/shop/settings/").content.decode()


# --- live: through the real worker, engine and router --------------------------------------------


@pytest.fixture
def github(forge, connect):
    fake = forge("github")
    fake.add_repo("acme/shop", timezone.now(), private=True)
    connect(fake)
    return fake


def _statuses(fake, sha, state):
    return [s for s in fake.posted_statuses if s["sha"] == sha and s["state"] == state]


def test_the_limit_refuses_a_new_preview_and_says_so_on_the_pull_request(
    platform, github, owner, settings
):
    settings.PAAS_MAX_PREVIEWS_PER_APP = 1
    app = App.objects.create(name="full", owner=owner, repository="/nowhere", previews_enabled=True)
    first = Environment.create_for(app, "pr-1")
    Preview.objects.create(
        app=app, environment=first, number=1, provider="github", repository="acme/shop",
        head_sha="1" * 40, fetch_ref="refs/heads/one", prepared_at=timezone.now(),
    )  # fmt: skip

    response = send_pr("github", app, pr_payload("github", number=2))

    assert response.status_code == 200
    assert response.json()["ignored"].startswith("limit: full already has 1 previews")
    assert outcome_of(app).startswith("ignored: limit:")
    assert list(app.previews.values_list("number", flat=True)) == [1]
    assert not app.environments.filter(name="pr-2").exists()
    assert not Deployment.objects.filter(app=app).exists()
    [refused] = wait_for(lambda: _statuses(github, SHA, "failure"), 30, message="the status")
    assert "PAAS_MAX_PREVIEWS_PER_APP=1" in refused["description"]


def _backed_up_template(app):
    """production's postgres, with rows, backed up; one more row added after the backup."""
    addon = wait_addon(addon_services.attach(app, "production", "postgres"))
    conn = connect(addon)
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
    conn.execute("INSERT INTO items VALUES (1, 'from the backup')")
    conn.commit()
    backup = addon_backups.request_backup(addon)
    done = wait_for(
        lambda: Backup.objects.filter(pk=backup.pk, status="succeeded").first(),
        60,
        message="the template's backup",
    )
    conn.execute("INSERT INTO items VALUES (2, 'after the backup')")
    conn.commit()
    conn.close()
    return addon, done


def _rows(addon):
    conn = connect(addon)
    try:
        return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    finally:
        conn.close()


def _container_env(container) -> dict:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


def _preview_deployment(app, sha):
    def found():
        d = Deployment.objects.filter(environment__app=app, commit_sha=sha).first()
        return d if d and d.is_final else None

    return wait_for(found, 300, message=f"the preview's deployment of {sha[:7]}")


@pytest.mark.usefixtures("addon_leftovers")
def test_a_pull_request_is_previewed_seeded_redeployed_and_removed_without_a_trace(
    platform, github, owner, tmp_path
):
    repo = make_repo(tmp_path / "shop", sample_files("static"))
    git(repo, "checkout", "-q", "-b", "feature")
    first = commit(repo, {"index.html": "<h1>feature one</h1>"}, "feature one")
    app = App.objects.create(name="shop", owner=owner, repository=str(repo), previews_enabled=True)
    production = app.environment("production")
    EnvVar.objects.create(environment=production, key="PUBLIC_FLAG", value="yes")
    EnvVar.objects.create(
        environment=production, key="SIGNING_SECRET", value="s3cr3t-value", not_for_previews=True
    )
    template_db, backup = _backed_up_template(app)

    # Opened: the preview's own database is made and seeded, then its first deployment.
    opened = send_pr("github", app, pr_payload("github", sha=first))
    assert opened.status_code == 202, opened.content
    deployment = _preview_deployment(app, first)
    assert deployment.status == Status.SUCCEEDED, log_text(deployment)
    preview = Preview.objects.select_related("environment").get(app=app, number=7)
    env = preview.environment
    assert (env.name, deployment.environment_id) == ("pr-7", env.pk)
    host = f"shop-pr-7.{settings.PAAS_DOMAIN}"
    wait_for(lambda: "feature one" in through_proxy(host).text, 15, message="the preview")

    preview_db = AddOn.objects.get(environment=env)
    assert preview_db.kind == "postgres" and preview_db.status == "running"
    assert preview_db.container_id != template_db.container_id
    assert preview_db.volume != template_db.volume
    assert _rows(preview_db) == [(1, "from the backup")]  # the backup's, not what came after
    assert _rows(template_db) == [(1, "from the backup"), (2, "after the backup")]

    assert env.env_dict() == {"PUBLIC_FLAG": "yes", "DATABASE_URL": preview_db.connection_url()}
    labels = ["slipway.app=shop", "slipway.environment=pr-7"]
    [web] = containers(all=False, label=[*labels, f"slipway.deployment={deployment.number}"])
    assert "SIGNING_SECRET" not in _container_env(web)
    assert _container_env(web)["PUBLIC_FLAG"] == "yes"

    [live] = wait_for(lambda: _statuses(github, first, "success"), 30, message="success")
    assert live["target_url"] == env.url and env.url in live["description"]
    assert live["context"] == "slipway/preview"
    assert _statuses(github, first, "pending")

    # Updated: redeployed at the new head.
    second = commit(repo, {"index.html": "<h1>feature two</h1>"}, "feature two")
    updated = send_pr("github", app, pr_payload("github", action="update", sha=second))
    assert updated.status_code == 202, updated.content
    redeployed = wait_final(Deployment.objects.get(app=app, number=updated.json()["number"]))
    assert redeployed.status == Status.SUCCEEDED, log_text(redeployed)
    assert redeployed.commit_sha == second and redeployed.environment_id == env.pk
    wait_for(lambda: "feature two" in through_proxy(host).text, 15, message="the new head")
    wait_for(lambda: _statuses(github, second, "success"), 30, message="the new status")

    # Closed: nothing of it is left.
    labels = ["slipway.app=shop", "slipway.environment=pr-7"]
    engine = docker.from_env()
    tags = set(env.deployments.exclude(image_tag="").values_list("image_tag", flat=True))
    runtime = wiring.runtime()
    assert tags and all(runtime.image_exists(tag) for tag in tags)  # built for it: removed with it
    closed = send_pr("github", app, pr_payload("github", action="close", sha=second))
    assert closed.status_code == 202 and closed.json()["status"] == "deleting"
    wait_for(lambda: not Environment.objects.filter(pk=env.pk).exists(), 120, message="gone")

    assert not containers(label=labels)
    assert not engine.volumes.list(filters={"label": labels})
    assert not engine.networks.list(filters={"label": labels})
    assert not any(runtime.image_exists(tag) for tag in tags)  # its own builds too
    assert not volume_exists(preview_db.volume)
    assert env.route_id not in wiring.router().route_ids()
    wait_for(lambda: through_proxy(host).status_code == 404, 15, message="the route to go")
    assert not Preview.objects.filter(app=app).exists()
    assert not AddOn.objects.filter(pk=preview_db.pk).exists()
    assert not EnvVar.objects.filter(environment_id=env.pk).exists()
    assert not Deployment.objects.filter(environment_id=env.pk).exists()
    # The template keeps its database, data and backup.
    assert _rows(template_db) == [(1, "from the backup"), (2, "after the backup")]
    assert backup.file.is_file()
