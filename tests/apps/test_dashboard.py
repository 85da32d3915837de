"""The dashboard: pages, the htmx partials that refresh them, and the actions behind buttons.

Partials are requested as htmx does (HX-Request: true) and checked for the fragment and the
status; polling partials answer 286 once nothing more can change. Git providers are the fake
forges of test_providers (real HTTP on loopback); actions that enqueue go to the real Redis.
"""

import re
from datetime import timedelta
from html.parser import HTMLParser

import docker
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.models import ApiToken, App, Environment, EnvVar
from apps.models.providers import ProviderCredential
from apps.web import pages as dashboard_pages
from deployments import services
from deployments.models import Deployment, RuntimeLogLine
from deployments.models.promotion import PromotionPolicy
from tests.apps.test_providers import API_PREFIX, NOW, FakeForge

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(autouse=True)
def _proxy_port(settings):
    settings.PAAS_PROXY_HTTP_PORT = 8088  # the app URLs below name it


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client_for():
    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def web(client_for, owner):
    return client_for(owner)


@pytest.fixture
def image_id():
    """A real image in the local engine: rollback, promote and restart check it exists."""
    return docker.from_env().images.get(django_settings.PAAS_BASE_IMAGES["static"]).id


def _deployment(app, environment="production", **fields):
    return app.new_deployment(app.environment(environment), **fields)


def _live(app, environment, image_id, **fields):
    """A succeeded deployment that is live in its environment."""
    now = timezone.now()
    d = _deployment(
        app,
        environment,
        status="succeeded",
        image_id=image_id,
        started_at=now - timedelta(seconds=42),
        finished_at=now - timedelta(seconds=10),
        **fields,
    )
    env = app.environment(environment)
    env.live_deployment = d
    env.save()
    return d


def _text(response) -> str:
    return response.content.decode()


# --- accessibility: every control has a label ----------------------------------------------


class _Controls(HTMLParser):
    """Collects form controls and what labels them."""

    def __init__(self):
        super().__init__()
        self.controls, self.label_for, self.open_labels = [], set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.open_labels += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.controls.append((attrs, self.open_labels > 0))

    def handle_endtag(self, tag):
        if tag == "label":
            self.open_labels -= 1


def unlabelled_controls(html: str) -> list[dict]:
    parser = _Controls()
    parser.feed(html)
    return [
        attrs
        for attrs, wrapped in parser.controls
        if not (wrapped or attrs.get("aria-label") or attrs.get("id") in parser.label_for)
    ]


def test_every_input_on_every_page_has_a_label(web, make_app, owner):
    app = make_app("labels")
    services.set_env_vars(app.environment("production"), {"KEY": "v"})
    _deployment(app)
    pages = [
        reverse("home"),
        reverse("app-create"),
        reverse("app-detail", args=["labels"]),
        reverse("app-settings", args=["labels"]),
        reverse("settings-tokens"),
        reverse("deployment-detail", args=["labels", 1]),
        reverse("account_login"),
    ]
    for page in pages:
        client = Client() if page == reverse("account_login") else web
        response = client.get(page)
        assert response.status_code == 200, page
        assert unlabelled_controls(_text(response)) == [], page


# --- home -----------------------------------------------------------------------------------


def test_home_without_apps_explains_the_first_step(web):
    response = web.get("/")
    body = _text(response)
    assert response.status_code == 200
    assert "No apps yet" in body and "Pick a repository" in body
    assert f'href="{reverse("app-create")}"' in body and "Create app" in body


def test_home_lists_apps_with_status_url_and_last_deployment(web, make_app):
    app = make_app("shop")
    _deployment(app, status="failed", finished_at=timezone.now())
    App.objects.filter(pk=app.pk).update(status="failed")
    body = _text(web.get("/"))
    assert 'href="/apps/shop/"' in body
    assert "badge-failed" in body and "#1" in body and "just now" in body
    assert "http://shop.localhost:8088" in body


def test_the_app_list_partial_polls_only_while_visible(web, make_app):
    make_app("shop")
    response = web.get(reverse("home-apps"), headers=HX)
    body = _text(response)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="app-list"')
    assert "every 3s [document.visibilityState === 'visible']" in body
    assert "<html" not in body


# --- create ---------------------------------------------------------------------------------


def test_the_create_page_offers_paste_a_url_without_providers(web):
    body = _text(web.get(reverse("app-create")))
    assert 'name="repository"' in body and 'name="branch"' in body
    assert 'name="build_method"' in body and 'placeholder="$PORT"' in body
    assert 'hx-trigger="keyup changed delay:300ms"' in body
    assert "env-production-bulk" in body and "env-staging-key" in body
    assert "connect GitHub, GitLab or Gitea" in body


def test_creating_an_app_saves_env_vars_and_starts_the_first_deployment(web, owner):
    response = web.post(
        reverse("app-create"),
        {
            "name": "Shop",
            "repository": "https://example.com/acme/shop.git",
            "branch": "",
            "build_method": "python",
            "port": "",
            "health_check_path": "/healthz",
            "env-production-key": ["GREETING", "", "EMPTY_OK"],
            "env-production-value": ["hello world", "", ""],
            "env-production-bulk": "# pasted\nDEBUG=0\nGREETING=overridden by the row\n",
            "env-staging-key": ["STAGE"],
            "env-staging-value": ["yes"],
            "env-staging-bulk": "",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/apps/shop/"
    app = App.objects.get(name="shop")
    assert (app.build_method, app.port, app.health_check_path, app.owner) == (
        "python",
        None,
        "/healthz",
        owner,
    )
    assert app.environment("production").env_dict() == {
        "GREETING": "hello world",
        "DEBUG": "0",
        "EMPTY_OK": "",
    }
    assert app.environment("staging").env_dict() == {"STAGE": "yes"}
    first = app.deployments.get()
    assert (first.number, first.status, first.environment.name, first.requested_by) == (
        1,
        "pending",
        "production",
        owner,
    )


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"name": "Bad_Name"}, "name", "Use lowercase letters"),
        ({"name": "admin"}, "name", "reserved"),
        ({"repository": "http://example.com/x.git"}, "repository", "Plain http://"),
        ({"repository": "ext::sh"}, "repository", "remote helpers"),
        ({"port": "70000"}, "port", "less than or equal to 65535"),
        ({"health_check_path": "no-slash"}, "health_check_path", "starts with /"),
        ({"env-production-bulk": "NOT A LINE"}, "env", "Line 1: expected KEY=value"),
        ({"env-staging-key": ["1BAD"], "env-staging-value": ["x"]}, "env", "Row 1 (1BAD)"),
    ],
)
def test_invalid_input_re_renders_the_form_with_messages_and_creates_nothing(
    web, change, field, message
):
    data = {"name": "fine", "repository": "https://example.com/acme/x.git", "build_method": "auto"}
    data.update(change)
    response = web.post(reverse("app-create"), data)
    body = _text(response)
    assert response.status_code == 400
    assert "Nothing was created" in body and message in body
    assert App.objects.count() == 0 and Deployment.objects.count() == 0
    if field == "name":
        assert 'value="' + data["name"] + '"' in body  # what was typed is kept


def test_a_taken_name_is_refused(web, make_app):
    make_app("shop")
    response = web.post(
        reverse("app-create"), {"name": "SHOP", "repository": "https://example.com/a/b.git"}
    )
    assert response.status_code == 400 and "already exists" in _text(response)
    assert App.objects.count() == 1


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("my-app", "“my-app” is available; it will be served at http://my-app.localhost:8088"),
        ("My-App", "“my-app” is available"),
        ("taken", "An app called “taken” already exists."),
        ("-bad", "Use lowercase letters, digits and hyphens"),
        ("api", "“api” is reserved"),
        ("shop-staging", "kept for staging environments"),
        ("", "the name becomes the app's address"),
        (XSS, "Use lowercase letters"),
    ],
)
def test_the_name_check_says_whether_a_name_is_free_and_valid(web, make_app, typed, expected):
    make_app("taken")
    response = web.get(reverse("app-name-check"), {"name": typed}, headers=HX)
    assert response.status_code == 200
    assert expected in _text(response)
    assert XSS not in _text(response)


@pytest.fixture
def github(owner, settings):
    """A fake GitHub on loopback and the owner's credential for it."""
    fake = FakeForge("github")
    api_url = fake.url + API_PREFIX["github"]
    settings.PAAS_GIT_PROVIDERS = {
        **settings.PAAS_GIT_PROVIDERS,
        "github": {"name": "GitHub", "web_url": fake.url, "api_url": api_url},
    }
    ProviderCredential.objects.create(
        user=owner,
        provider="github",
        web_url=fake.url,
        api_url=api_url,
        account_id="42",
        login="alice-forge",
        access_token=fake.token,
    )
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_the_create_page_searches_and_pages_the_users_repositories(web, github):
    for n in range(12):
        github.add_repo(f"acme/repo-{n:02d}", NOW - timedelta(hours=n), branches=("main", "dev"))
    github.add_repo("acme/secret-thing", NOW, private=True)
    page = _text(web.get(reverse("app-create")))
    assert "GitHub (alice-forge)" in page and 'hx-get="/new/repositories/"' in page

    first = web.get(reverse("app-create-repositories"), {"provider": "github"}, headers=HX)
    body = _text(first)
    assert first.status_code == 200 and "acme/secret-thing" in body and "private" in body
    assert "Next →" in body and "page=2" in body and "← Previous" not in body
    second = _text(
        web.get(reverse("app-create-repositories"), {"provider": "github", "page": 2}, headers=HX)
    )
    assert "acme/repo-10" in second and "← Previous" in second and "Next →" not in second

    searched = _text(
        web.get(
            reverse("app-create-repositories"), {"provider": "github", "q": "secret"}, headers=HX
        )
    )
    assert "acme/secret-thing" in searched and "acme/repo-01" not in searched


def test_picking_a_repository_fills_the_url_and_a_branch_select(web, github):
    github.add_repo("acme/shop", NOW, branches=("main", "dev", "release"), default="dev")
    response = web.get(
        reverse("app-create-pick"),
        {
            "provider": "github",
            "repo": "acme/shop",
            "clone_url": f"{github.url}/acme/shop.git",
            "branch": "dev",
        },
        headers=HX,
    )
    body = _text(response)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="source-fields">')
    assert f'value="{github.url}/acme/shop.git"' in body
    assert '<select id="id_branch" name="branch">' in body
    assert (
        '<option value="dev" selected>dev</option>' in body and '<option value="release">' in body
    )


def test_provider_errors_are_messages_in_the_partial_not_500s(web, github, owner):
    github.fail_status = 502
    listed = web.get(reverse("app-create-repositories"), {"provider": "github"}, headers=HX)
    assert listed.status_code == 200 and 'role="alert"' in _text(listed)
    assert "0xdead" not in _text(listed)  # the provider's raw error page is not shown
    picked = web.get(
        reverse("app-create-pick"),
        {"provider": "github", "repo": "acme/x", "clone_url": "u"},
        headers=HX,
    )
    assert picked.status_code == 200 and "Could not list the branches" in _text(picked)
    assert 'name="branch"' in _text(picked)  # a text field to type it instead
    unknown = web.get(reverse("app-create-repositories"), {"provider": "gitlab"}, headers=HX)
    assert unknown.status_code == 200 and "Sign in with GitLab first" in _text(unknown)


def test_a_provider_repository_the_user_cannot_see_is_refused_at_creation(web, github, owner):
    # The credential's web host serves the URL; the fake API answers 404 for the repository.
    ProviderCredential.objects.filter(user=owner).update(web_url="https://git.example.test")
    response = web.post(
        reverse("app-create"),
        {
            "name": "ghost",
            "repository": "https://git.example.test/acme/missing.git",
            "build_method": "auto",
        },
    )
    assert response.status_code == 400
    assert "acme/missing does not exist on GitHub" in _text(response)
    assert App.objects.count() == 0


def test_the_env_row_partial_adds_a_labelled_row(web):
    response = web.get(reverse("app-create-env-row"), {"environment": "staging"}, headers=HX)
    body = _text(response)
    assert response.status_code == 200 and 'name="env-staging-key"' in body
    assert unlabelled_controls(body) == []


# --- the app page ---------------------------------------------------------------------------


def test_the_app_page_shows_status_urls_history_and_the_latest_deployment(
    web, make_app, owner, image_id
):
    app = make_app("shop")
    _live(
        app,
        "production",
        image_id,
        commit_sha="a" * 40,
        commit_message="First version",
        requested_by=owner,
    )
    _deployment(
        app,
        "staging",
        status="building",
        step="build",
        started_at=timezone.now() - timedelta(seconds=75),
        commit_sha="b" * 40,
        commit_message="Try staging",
    )
    body = _text(web.get("/apps/shop/"))
    assert "http://shop.localhost:8088" in body and "http://shop-staging.localhost:8088" in body
    assert "live #1" in body
    # history: number, environment, trigger, short sha + message, who, duration, status
    assert "<code>aaaaaaa</code>" in body and "First version" in body and "alice" in body
    assert "32s" in body and "badge-succeeded" in body
    # the latest (#2, building) panel: step and elapsed time, polling
    assert "Build image" in body and "running for 1m 15s" in body
    assert (
        'class="step-current"' in body
        and "every 2s [document.visibilityState === 'visible']" in body
    )
    assert (
        'hx-post="/apps/shop/deployments/1/rollback/"' not in body
    )  # #1 is live: nothing to roll back to


def test_the_panel_polls_while_running_and_stops_with_286_at_a_final_status(web, make_app):
    app = make_app("shop")
    d = _deployment(app, status="building", step="health", started_at=timezone.now())
    url = reverse("deployment-panel", args=["shop", 1])
    running = web.get(url, {"seen": "building:build"}, headers=HX)
    assert running.status_code == 200 and "hx-trigger" in _text(running)
    assert 'class="step-done"' in _text(running) and 'class="step-current"' in _text(running)
    assert 'hx-swap-oob="innerHTML:#announce-' in _text(running)  # the step moved: announced

    Deployment.objects.filter(pk=d.pk).update(
        status="failed",
        error_code="health_check_timeout",
        error_message="No answer on port 5000",
        finished_at=timezone.now(),
    )
    final = web.get(url, {"seen": "building:health"}, headers=HX)
    body = _text(final)
    assert final.status_code == 286
    assert "hx-trigger" not in body and "hx-get" not in body.split("</div>")[0]
    assert "Failed at: Health check" in body and "No answer on port 5000" in body
    assert 'class="step-failed"' in body


def test_a_rollback_shows_only_the_steps_it_runs(web, make_app):
    app = make_app("shop")
    _deployment(
        app, trigger="rollback", status="starting", step="health", started_at=timezone.now()
    )
    body = _text(web.get(reverse("deployment-panel", args=["shop", 1]), headers=HX))
    assert "Build image" not in body and "Fetch source" not in body
    assert (
        '<li class="step-done"><span class="step-dot" aria-hidden="true"></span>Start container'
        in body
    )
    assert (
        '<li class="step-current"><span class="step-dot" aria-hidden="true"></span>Health check'
        in body
    )


def test_the_log_partial_returns_only_lines_after_the_cursor(web, make_app):
    app = make_app("shop")
    d = _deployment(app, status="building", started_at=timezone.now())
    lines = [d.log(f"line {n}") for n in range(3)]
    response = web.get(
        reverse("deployment-log", args=["shop", 1]), {"after": lines[1].id}, headers=HX
    )
    body = _text(response)
    assert response.status_code == 200
    assert "line 2" in body and "line 1" not in body and "line 0" not in body
    assert f'hx-swap-oob="beforeend:#log-{d.pk}"' in body
    assert f"?after={lines[2].id}" in body and "every 1s" in body

    empty = web.get(reverse("deployment-log", args=["shop", 1]), {"after": lines[2].id}, headers=HX)
    assert empty.status_code == 200 and "hx-swap-oob" not in _text(empty)
    assert f"?after={lines[2].id}" in _text(empty)
    assert (
        web.get(reverse("deployment-log", args=["shop", 1]), {"after": "x"}, headers=HX).status_code
        == 400
    )


def test_the_log_stops_polling_only_after_the_final_lines_could_be_written(web, make_app):
    app = make_app("shop")
    d = _deployment(app, status="succeeded", finished_at=timezone.now())
    line = d.log("==> Live")
    url = reverse("deployment-log", args=["shop", 1])
    just_finished = web.get(url, {"after": line.id}, headers=HX)
    assert just_finished.status_code == 200 and "every 1s" in _text(just_finished)

    Deployment.objects.filter(pk=d.pk).update(finished_at=timezone.now() - timedelta(seconds=10))
    done = web.get(url, {"after": line.id}, headers=HX)
    assert (
        done.status_code == 286 and "hx-trigger" not in _text(done) and "hx-get" not in _text(done)
    )


def test_the_status_strip_answers_204_until_something_changes(web, make_app):
    app = make_app("shop")
    first = web.get(reverse("app-status", args=["shop"]), headers=HX)
    seen = re.search(r'name="seen" value="(\d+)"', _text(first))[1]
    fp = re.search(r'name="fp" value="(\w+)"', _text(first))[1]
    unchanged = web.get(reverse("app-status", args=["shop"]), {"seen": seen, "fp": fp}, headers=HX)
    assert unchanged.status_code == 204

    services.queue_deployment(app, "production")
    changed = web.get(reverse("app-status", args=["shop"]), {"seen": seen, "fp": fp}, headers=HX)
    assert changed.status_code == 200 and "Deploying" in _text(changed)
    assert changed["HX-Trigger"] == "new-deployment, app-changed"


def test_panels_refresh_as_partials(web, make_app):
    app = make_app("shop")
    _deployment(app, commit_message="hello")
    for name in ("app-environments", "app-history", "app-current"):
        response = web.get(reverse(name, args=["shop"]), headers=HX)
        assert response.status_code == 200 and "<html" not in _text(response), name
    assert "hello" in _text(web.get(reverse("app-history", args=["shop"]), headers=HX))
    assert "Queued, waiting for a worker" in _text(
        web.get(reverse("app-current", args=["shop"]), headers=HX)
    )


def test_the_runtime_log_says_when_nothing_runs_and_does_not_poll(web, make_app):
    make_app("shop")
    url = reverse("app-runtime-log", args=["shop", "production"])
    full = web.get(url, headers=HX)
    assert full.status_code == 200 and "Nothing runs in production yet" in _text(full)
    assert "every 2s" not in _text(full)
    tail = web.get(url, {"since": "123"}, headers=HX)
    assert tail.status_code == 286 and "hx-trigger" not in _text(tail)
    assert (
        web.get(reverse("app-runtime-log", args=["shop", "elsewhere"]), headers=HX).status_code
        == 404
    )


def stored_log(app, count, text="line {n}", process="web") -> list[int]:
    """`count` lines in the log store for production, as the collector writes them; their
    timestamps, oldest first."""
    env = app.environment("production")
    stamps = [1_700_000_000_000_000_000 + n * 1_000_000 for n in range(count)]
    RuntimeLogLine.objects.bulk_create(
        RuntimeLogLine(
            app=app,
            environment=env,
            deployment=1,
            process=process,
            container=f"shop-{process}",
            ns=ns,
            text=text.format(n=n),
        )
        for n, ns in enumerate(stamps)
    )
    return stamps


@pytest.fixture
def shop_with_live_deployment(make_app, image_id):
    """Production of "shop" has a succeeded deployment on record as live (nothing runs)."""
    app = make_app("shop")
    _live(app, "production", image_id)
    return app


def test_the_runtime_log_shows_the_latest_page_then_older_pages_and_the_tail(
    web, shop_with_live_deployment
):
    stamps = stored_log(shop_with_live_deployment, 250)
    url = reverse("app-runtime-log", args=["shop", "production"])
    full = _text(web.get(url, headers=HX))
    assert "line 249" in full and "line 150" in full and "line 149" not in full
    assert f"?before={stamps[150]}" in full and f"?since={stamps[249]}" in full
    assert 'role="log"' in full and "every 2s [document.visibilityState === 'visible']" in full
    assert "web.1" in full  # each line says which process and replica printed it

    older = _text(web.get(url, {"before": stamps[150]}, headers=HX))
    assert 'hx-swap-oob="afterbegin:#rt-production"' in older
    assert (
        "line 149" in older
        and "line 50" in older
        and "line 49" not in older
        and "line 150" not in older
    )
    oldest = _text(web.get(url, {"before": stamps[50]}, headers=HX))
    assert "line 0" in oldest and "line 49" in oldest and "Load older lines" not in oldest

    stored_log(shop_with_live_deployment, 1, text="fresh line")  # an older stamp: not new
    RuntimeLogLine.objects.filter(text="fresh line").update(ns=stamps[-1] + 5)
    tail = web.get(url, {"since": stamps[249]}, headers=HX)
    body = _text(tail)
    assert tail.status_code == 200 and 'hx-swap-oob="beforeend:#rt-production"' in body
    assert "fresh line" in body and "line 249" not in body and f"?since={stamps[-1] + 5}" in body


def test_the_runtime_log_filters_by_process_type(web, shop_with_live_deployment):
    stored_log(shop_with_live_deployment, 3, text="web says {n}")
    stored_log(shop_with_live_deployment, 3, text="worker says {n}", process="worker")
    live = shop_with_live_deployment.environment("production").live_deployment
    live.patch_step_data(processes={"web": "serve", "worker": "work"})
    url = reverse("app-runtime-log", args=["shop", "production"])
    both = _text(web.get(url, headers=HX))
    assert "web says 2" in both and "worker says 2" in both and "runtime-process-worker" in both
    only = _text(web.get(url, {"process": "worker"}, headers=HX))
    assert "worker says 2" in only and "web says" not in only
    assert "process=worker" in only  # the poller keeps the filter


def test_runtime_log_lines_are_escaped(web, shop_with_live_deployment):
    stored_log(shop_with_live_deployment, 3, text=XSS + " {n}")
    url = reverse("app-runtime-log", args=["shop", "production"])
    for params in ({}, {"since": "1"}, {"before": str(2_000_000_000_000_000_000)}):
        body = _text(web.get(url, params, headers=HX))
        assert XSS not in body and XSS_ESCAPED in body, params


# --- actions --------------------------------------------------------------------------------


def test_deploy_now_queues_a_deployment_and_answers_with_a_toast(web, make_app):
    app = make_app("shop")
    response = web.post(
        reverse("app-deploy", args=["shop"]), {"environment": "staging"}, headers=HX
    )
    assert response.status_code == 200
    assert "Deployment #1 to staging is queued." in _text(response) and "toast-success" in _text(
        response
    )
    assert response["HX-Trigger"] == "new-deployment, app-changed"
    assert app.deployments.get().environment.name == "staging"


def test_actions_are_post_only_and_refusals_are_shown_not_raised(web, make_app):
    app = make_app("shop")
    assert web.get(reverse("app-deploy", args=["shop"])).status_code == 405
    bad = web.post(reverse("app-deploy", args=["shop"]), {"environment": "qa"}, headers=HX)
    assert bad.status_code == 400 and "Unknown environment “qa”" in _text(bad)
    stop = web.post(reverse("app-stop", args=["shop"]), {"environment": "production"}, headers=HX)
    assert (
        stop.status_code == 409
        and "Nothing is running" in _text(stop)
        and "toast-error" in _text(stop)
    )
    restart = web.post(
        reverse("app-restart", args=["shop"]), {"environment": "production"}, headers=HX
    )
    assert restart.status_code == 409 and "no successful deployment to restart" in _text(restart)
    promote = web.post(reverse("app-promote", args=["shop"]), headers=HX)
    assert promote.status_code == 409 and "no successful deployment to promote" in _text(promote)
    _deployment(app, status="failed", finished_at=timezone.now())
    rollback = web.post(reverse("deployment-rollback", args=["shop", 1]), headers=HX)
    assert rollback.status_code == 409 and "no successful deployment to rollback" in _text(rollback)
    assert web.post(reverse("deployment-rollback", args=["shop", 9]), headers=HX).status_code == 404
    assert app.deployments.count() == 1


def test_actions_need_the_csrf_token(owner, make_app):
    app = make_app("shop")
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(
        reverse("app-deploy", args=["shop"]), {"environment": "production"}, headers=HX
    )
    assert response.status_code == 403 and app.deployments.count() == 0
    page = client.get("/apps/shop/")
    token = re.search(r'"X-CSRFToken": "([\w-]+)"', _text(page))[1]
    sent = client.post(
        reverse("app-deploy", args=["shop"]), {"environment": "production"},
        headers={**HX, "X-CSRFToken": token},
    )  # fmt: skip
    assert sent.status_code == 200 and app.deployments.count() == 1


def test_a_plain_form_post_gets_a_message_and_a_redirect(web, make_app):
    make_app("shop")
    response = web.post(
        reverse("app-deploy", args=["shop"]), {"environment": "production"}, follow=True
    )
    assert response.redirect_chain == [("/apps/shop/", 302)]
    assert "Deployment #1 to production is queued." in _text(response)


def test_redeploy_rollback_and_cancel(web, make_app, image_id):
    app = make_app("shop")
    first = _live(app, "production", image_id, commit_sha="c" * 40)
    _live(app, "production", image_id, commit_sha="d" * 40)
    redeploy = web.post(reverse("deployment-redeploy", args=["shop", 1]), headers=HX)
    assert redeploy.status_code == 200 and "Redeploying #1 as deployment #3." in _text(redeploy)
    third = app.deployments.get(number=3)
    assert (third.trigger, third.commit_sha, third.source_deployment) == (
        "redeploy",
        "c" * 40,
        first,
    )

    cancel = web.post(reverse("deployment-cancel", args=["shop", 3]), headers=HX)
    assert cancel.status_code == 200 and app.deployments.get(number=3).status == "cancelled"
    again = web.post(reverse("deployment-cancel", args=["shop", 3]), headers=HX)
    assert again.status_code == 409 and "cannot be cancelled" in _text(again)

    rollback = web.post(reverse("deployment-rollback", args=["shop", 1]), headers=HX)
    assert (
        rollback.status_code == 200
        and "Rolling production back to #1 (deployment #4)." in _text(rollback)
    )
    fourth = app.deployments.get(number=4)
    assert (fourth.trigger, fourth.source_deployment) == ("rollback", first)
    history = _text(web.get(reverse("app-history", args=["shop"]), headers=HX))
    assert 'action="/apps/shop/deployments/1/rollback/"' in history  # #1 is not live: offered


def test_restart_stop_start_and_promote(web, make_app, image_id):
    app = make_app("shop")
    _live(app, "production", image_id)
    _live(app, "staging", image_id)
    restart = web.post(
        reverse("app-restart", args=["shop"]), {"environment": "production"}, headers=HX
    )
    assert restart.status_code == 200 and app.deployments.get(number=3).trigger == "restart"
    stop = web.post(reverse("app-stop", args=["shop"]), {"environment": "staging"}, headers=HX)
    assert stop.status_code == 200 and app.environment("staging").stopped
    assert stop["HX-Trigger"] == "app-changed"
    envs = _text(web.get(reverse("app-environments", args=["shop"]), headers=HX))
    assert 'id="start-staging"' in envs and 'id="stop-production"' in envs
    start = web.post(reverse("app-start", args=["shop"]), {"environment": "staging"}, headers=HX)
    assert start.status_code == 200 and not app.environment("staging").stopped
    promote = web.post(reverse("app-promote", args=["shop"]), headers=HX)
    assert (
        promote.status_code == 200
        and "Promoting staging to production (deployment #4)." in _text(promote)
    )
    assert app.deployments.get(number=4).trigger == "promote"


def test_promotion_waiting_for_approval_says_so(web, make_app, image_id):
    app = make_app("shop")
    _live(app, "staging", image_id)
    PromotionPolicy.objects.create(
        app=app, environment=app.environment("production"), require_approval=True
    )
    response = web.post(reverse("app-promote", args=["shop"]), headers=HX)
    assert response.status_code == 200 and "must approve it" in _text(response)
    assert app.deployments.count() == 1


# --- settings, env vars, delete -------------------------------------------------------------


def test_settings_change_and_say_a_redeploy_is_needed(web, make_app):
    app = make_app("shop")
    response = web.post(
        reverse("app-settings", args=["shop"]),
        {
            "repository": "https://example.com/acme/new.git",
            "branch": "dev",
            "build_method": "node",
            "port": "8080",
            "health_check_path": "/up",
        },
        headers=HX,
    )
    body = _text(response)
    assert response.status_code == 200 and body.lstrip().startswith('<form id="settings-form"')
    assert "A redeploy is needed to apply" in body and "Redeploy production" in body
    app.refresh_from_db()
    assert (app.repository, app.branch, app.build_method, app.port, app.health_check_path) == (
        "https://example.com/acme/new.git",
        "dev",
        "node",
        8080,
        "/up",
    )


def test_the_three_commands_are_settings_shown_and_changed(web, make_app):
    app = make_app("shop", release_command="python manage.py migrate")
    page = _text(web.get(reverse("app-settings", args=["shop"])))
    assert 'name="release_command" value="python manage.py migrate"' in page
    assert 'name="build_command"' in page and 'name="start_command"' in page
    response = web.post(
        reverse("app-settings", args=["shop"]),
        {
            "repository": app.repository,
            "build_method": "auto",
            "health_check_path": "/",
            "build_command": "npm run build",
            "start_command": "uvicorn main:app --host 0.0.0.0 --port $PORT",
            "release_command": "",
        },
        headers=HX,
    )
    assert response.status_code == 200 and "A redeploy is needed" in _text(response)
    app.refresh_from_db()
    assert (app.build_command, app.start_command, app.release_command) == (
        "npm run build",
        "uvicorn main:app --host 0.0.0.0 --port $PORT",
        "",
    )


def test_a_command_of_two_lines_is_refused_and_changes_nothing(web, make_app):
    app = make_app("shop")
    response = web.post(
        reverse("app-settings", args=["shop"]),
        {"repository": app.repository, "start_command": "gunicorn app:app\nrm -rf /"},
        headers=HX,
    )
    assert response.status_code == 400 and "A command is one line" in _text(response)
    app.refresh_from_db()
    assert app.start_command == ""


def test_invalid_settings_change_nothing(web, make_app):
    app = make_app("shop", branch="main")
    response = web.post(
        reverse("app-settings", args=["shop"]),
        {"repository": "http://plain.example.com/x.git", "branch": "main", "port": "0"},
        headers=HX,
    )
    assert response.status_code == 400 and "Nothing was saved" in _text(response)
    assert "Plain http://" in _text(response)
    app.refresh_from_db()
    assert (app.repository, app.port) == ("https://example.com/acme/demo.git", None)


def test_env_vars_are_masked_revealed_to_the_owner_set_in_bulk_and_removed(
    web, make_app, client_for, staff
):
    app = make_app("shop")
    services.set_env_vars(app.environment("production"), {"SECRET": "s3cr3t-value"})
    page = _text(web.get(reverse("app-settings", args=["shop"])))
    assert "SECRET" in page and "s3cr3t-value" not in page and "••••••" in page

    reveal = reverse("app-env-reveal", args=["shop", "production", "SECRET"])
    shown = web.get(reveal, headers=HX)
    assert shown.status_code == 200 and "s3cr3t-value" in _text(shown) and "Hide" in _text(shown)
    assert "no-store" in shown["Cache-Control"]
    assert "s3cr3t-value" not in _text(web.get(reveal, {"show": "0"}, headers=HX))
    assert (
        client_for(staff).get(reveal, headers=HX).status_code == 404
    )  # staff see apps, not secrets

    saved = web.post(
        reverse("app-env-set", args=["shop", "staging"]),
        {"key": "", "value": "", "bulk": "A=1\nB=two words\n"},
        headers=HX,
    )
    assert saved.status_code == 200 and "A redeploy is needed to apply it to staging" in _text(
        saved
    )
    assert app.environment("staging").env_dict() == {"A": "1", "B": "two words"}

    one = web.post(
        reverse("app-env-set", args=["shop", "staging"]), {"key": "C", "value": "3"}, headers=HX
    )
    assert one.status_code == 200 and app.environment("staging").env_dict()["C"] == "3"

    removed = web.post(reverse("app-env-delete", args=["shop", "staging", "A"]), headers=HX)
    assert removed.status_code == 200 and "A" not in app.environment("staging").env_dict()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"key": "1BAD", "value": "x"}, "Keys start with a letter"),
        ({"key": "", "value": "orphan"}, "A key is required"),
        ({"key": "", "value": "", "bulk": "OK=1\nbroken line"}, "Line 2: expected KEY=value"),
        ({"key": "", "value": ""}, "Type a key and a value"),
    ],
)
def test_invalid_env_vars_are_refused_and_nothing_is_saved(web, make_app, data, message):
    app = make_app("shop")
    response = web.post(reverse("app-env-set", args=["shop", "production"]), data, headers=HX)
    assert response.status_code == 400 and message in _text(response)
    assert EnvVar.objects.count() == 0 and app.environment("production").env_dict() == {}


def test_delete_needs_the_typed_name(web, make_app):
    app = make_app("shop")
    wrong = web.post(reverse("app-delete", args=["shop"]), {"confirm": "sho"}, headers=HX)
    assert wrong.status_code == 400 and "Type “shop” exactly" in _text(wrong)
    app.refresh_from_db()
    assert app.cleanup_requested_at is None

    right = web.post(reverse("app-delete", args=["shop"]), {"confirm": "shop"}, headers=HX)
    assert right.status_code == 200 and right["HX-Redirect"] == "/"
    app.refresh_from_db()
    assert app.cleanup_requested_at is not None and app.status == "deleting"
    assert "is being deleted" in _text(web.get("/"))


def test_delete_is_refused_while_a_deployment_runs(web, make_app):
    app = make_app("shop")
    _deployment(app, status="building", started_at=timezone.now())
    response = web.post(reverse("app-delete", args=["shop"]), {"confirm": "shop"}, headers=HX)
    assert response.status_code == 409 and "A deployment is pending or in progress" in _text(
        response
    )
    app.refresh_from_db()
    assert app.cleanup_requested_at is None
    plain = web.post(reverse("app-delete", args=["shop"]), {"confirm": "shop"})
    assert plain.status_code == 409 and "A deployment is pending or in progress" in _text(plain)


# --- API tokens -----------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_the_users_own_can_be_revoked(web, owner, outsider):
    created = web.post(
        reverse("settings-tokens"), {"name": "ci", "scope": "write", "expires_at": "30"}
    )
    raw = re.search(r'data-testid="new-token">(slw_[\w-]+)<', _text(created))[1]
    assert created.status_code == 200 and "no-store" in created["Cache-Control"]
    token = ApiToken.objects.get(user=owner)
    assert ApiToken.authenticate(raw).user == owner and token.name == "ci"
    again = _text(web.get(reverse("settings-tokens")))
    assert raw not in again and token.hint in again

    others, _ = ApiToken.issue(outsider, "theirs")
    assert web.post(reverse("token-revoke", args=[others.pk])).status_code == 404
    revoked = web.post(reverse("token-revoke", args=[token.pk]), headers=HX)
    assert revoked.status_code == 200 and "is revoked" in _text(revoked)
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["theirs"]


def test_a_token_needs_a_name(web):
    response = web.post(reverse("settings-tokens"), {"name": "  "})
    assert response.status_code == 400 and ApiToken.objects.count() == 0


# --- escaping -------------------------------------------------------------------------------


def test_user_text_is_escaped_in_every_page_and_partial(web, make_app, image_id):
    app = make_app("shop")
    services.set_env_vars(app.environment("production"), {"EVIL": XSS})
    d = _live(app, "production", image_id, commit_sha="e" * 40, commit_message=XSS, branch=XSS)
    d.log(XSS)
    App.objects.filter(pk=app.pk).update(repository=f"https://example.com/{XSS}.git")
    urls = [
        ("/", {}),
        (reverse("home-apps"), HX),
        ("/apps/shop/", {}),
        (reverse("app-history", args=["shop"]), HX),
        (reverse("app-current", args=["shop"]), HX),
        (reverse("app-status", args=["shop"]), HX),
        (reverse("deployment-detail", args=["shop", 1]), {}),
        (reverse("deployment-panel", args=["shop", 1]), HX),
        (reverse("deployment-log", args=["shop", 1]), HX),
        (reverse("app-settings", args=["shop"]), {}),
        (reverse("app-env-reveal", args=["shop", "production", "EVIL"]), HX),
    ]
    seen_escaped = 0
    for url, headers in urls:
        body = _text(web.get(url, headers=headers))
        assert XSS not in body and "<script>alert" not in body, url
        seen_escaped += XSS_ESCAPED in body
    assert seen_escaped >= 8
    log = _text(web.get(reverse("deployment-log", args=["shop", 1]), headers=HX))
    assert XSS_ESCAPED in log
    revealed = _text(
        web.get(reverse("app-env-reveal", args=["shop", "production", "EVIL"]), headers=HX)
    )
    assert XSS_ESCAPED in revealed


def test_an_expired_session_sends_htmx_to_the_sign_in_page(make_app):
    make_app("shop")
    response = Client().get(
        reverse("app-status", args=["shop"]),
        headers={**HX, "HX-Current-URL": "http://testserver/apps/shop/"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/accounts/login/?next=/apps/shop/")


def test_the_settings_page_shows_webhook_urls_and_the_secret_to_the_owner_only(
    owner, staff, make_app
):
    app = make_app("hooked")
    owner_client, staff_client = Client(), Client()
    owner_client.force_login(owner)
    staff_client.force_login(staff)
    mine = owner_client.get("/apps/hooked/settings/").content.decode()
    assert "/hooks/github/hooked" in mine and app.webhook_secret in mine
    assert "app-notifications" not in mine and "/apps/hooked/notifications/" in mine
    theirs = staff_client.get("/apps/hooked/settings/").content.decode()
    assert "/hooks/gitlab/hooked" in theirs and app.webhook_secret not in theirs


def test_the_app_page_links_add_ons_and_loads_resources(owner, make_app):
    make_app("linked")
    client = Client()
    client.force_login(owner)
    page = client.get("/apps/linked/").content.decode()
    assert "/apps/linked/addons/" in page and "/apps/linked/notifications/resources/" in page


def test_the_apps_list_shows_a_page_of_apps_by_name_and_its_poll_keeps_the_page(
    web, make_app, monkeypatch
):
    monkeypatch.setattr(dashboard_pages, "APPS_PER_PAGE", 3)
    for name in ("echo", "alpha", "delta", "bravo", "charlie"):
        make_app(name)
    first = _text(web.get("/"))
    names = ("alpha", "bravo", "charlie", "delta", "echo")
    assert [n for n in names if f'id="app-link-{n}"' in first] == ["alpha", "bravo", "charlie"]
    assert "Page 1 of 2 (5 apps)" in first and 'href="?page=2"' in first
    assert 'id="apps-previous"' not in first
    second = _text(web.get("/?page=2"))
    assert 'id="app-link-delta"' in second and 'id="app-link-echo"' in second
    assert 'id="app-link-alpha"' not in second and 'href="?page=1"' in second
    # The list's own poll asks for the page it shows.
    assert f'hx-get="{reverse("home-apps")}?page=2"' in second
    polled = _text(web.get(reverse("home-apps") + "?page=2", headers=HX))
    assert 'id="app-link-echo"' in polled and 'id="app-link-alpha"' not in polled


def test_each_row_links_its_app_its_newest_deployment_and_its_live_address(web, make_app):
    # A name holding the digits the row links are made with, a number the same length.
    app = make_app("app-1234567890")
    production = app.environment("production")
    Deployment.objects.create(app=app, environment=production, number=7, status="failed")
    live = Deployment.objects.create(app=app, environment=production, number=12, status="succeeded")
    production.live_deployment = live
    production.save(update_fields=["live_deployment"])
    quiet = make_app("quiet")
    row = _text(web.get(reverse("home-apps"), headers=HX))
    assert f'href="{reverse("app-detail", args=[app.name])}"' in row
    assert f'href="{reverse("deployment-detail", args=[app.name, 12])}">#12</a>' in row
    assert f'<a href="{production.url}">{production.url}</a>' in row
    assert f'<span class="muted">{quiet.environment("production").url}</span>' in row
    assert f'href="{reverse("app-detail", args=[quiet.name])}"' in row


def test_a_row_whose_production_has_no_host_label_shows_the_address_from_the_app_name(
    web, make_app
):
    """Environment.hostname's fallback for an empty label (none is empty today: the column is
    set at creation): the row's unsaved Environment knows its app's name too."""
    app = make_app("unlabelled")
    production = app.environment("production")
    Environment.objects.filter(pk=production.pk).update(host_label="")
    expected = Environment.objects.select_related("app").get(pk=production.pk).url
    assert "unlabelled." in expected
    row = _text(web.get(reverse("home-apps"), headers=HX))
    assert f'<span class="muted">{expected}</span>' in row


@pytest.mark.parametrize("page, shown", [("abc", "alpha"), ("0", "delta"), ("99", "delta")])
def test_a_page_number_out_of_range_shows_the_last_page_and_no_number_the_first(
    web, make_app, monkeypatch, page, shown
):
    monkeypatch.setattr(dashboard_pages, "APPS_PER_PAGE", 3)
    for name in ("alpha", "bravo", "charlie", "delta"):
        make_app(name)
    response = web.get(f"/?page={page}")
    assert response.status_code == 200 and f'id="app-link-{shown}"' in _text(response)


def test_one_page_of_apps_has_no_page_links(web, make_app):
    make_app("shop")
    body = _text(web.get("/"))
    assert "Pages of apps" not in body and "?page=" not in body
