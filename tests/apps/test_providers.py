"""Sign-in with a Git provider and the Git-provider service.

The providers are real HTTP servers on loopback that answer with GitHub's, GitLab's and
Gitea's JSON bodies and headers (pagination, rate limits, errors) and check the token in
every request; nothing of deployments.adapters.git_providers is mocked.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.models.providers import ProviderCredential
from deployments.adapters import git_providers as providers
from deployments.adapters.git_providers import ProviderError
from deployments.adapters.git_providers.tokens import clone_token_for
from tests.fakeforge import API_PREFIX, AUTH_SCHEME, CLIENT, FakeForge, iso_z  # noqa: F401

pytestmark = pytest.mark.django_db

# --- Fixtures ----------------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def oauth_apps(settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        kind: {"APPS": [dict(CLIENT)]} for kind in ("github", "gitlab", "gitea")
    }


def _many_repos(fake, count):
    """Repos whose update times are not in name order, so sorting shows."""
    for n in range(count):
        fake.add_repo(f"acme/repo-{n:02d}", NOW - timedelta(hours=(n * 7) % count))


def _raw_columns(credential):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM apps_providercredential WHERE id = %s",
            [credential.pk],
        )
        return cursor.fetchone()


# --- Repositories: sorted, paginated, searched ----------------------------------------------


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_it_lists_repositories_most_recently_updated_first_page_by_page(
    kind, forge, connect, owner
):
    fake = forge(kind)
    _many_repos(fake, 25)
    connect(fake)
    first = providers.list_repositories(owner, kind, per_page=10)
    last = providers.list_repositories(owner, kind, page=3, per_page=10)
    every = (
        first.items
        + providers.list_repositories(owner, kind, page=2, per_page=10).items
        + last.items
    )
    assert [r.updated_at for r in every] == sorted((r.updated_at for r in every), reverse=True)
    assert len({r.full_name for r in every}) == 25
    assert (first.page, first.has_next, last.has_next, len(last.items)) == (1, True, False, 5)
    assert all(r.updated_at.tzinfo is not None and r.provider == kind for r in every)


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_it_maps_a_repository_from_the_providers_shape(kind, forge, connect, owner):
    fake = forge(kind)
    fake.add_repo("acme/shop", NOW, private=True, default="trunk", branches=["trunk"])
    connect(fake)
    [repo] = providers.list_repositories(owner, kind).items
    assert repo.full_name == "acme/shop" and repo.private and repo.default_branch == "trunk"
    assert (
        repo.clone_url == f"{fake.url}/acme/shop.git" and repo.html_url == f"{fake.url}/acme/shop"
    )
    assert repo.updated_at.replace(microsecond=0) == NOW  # GitLab adds milliseconds


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_it_searches_repositories_by_name(kind, forge, connect, owner):
    fake = forge(kind)
    _many_repos(fake, 12)
    fake.add_repo("acme/billing-api", NOW - timedelta(days=3))
    fake.add_repo("acme/search-api", NOW - timedelta(days=1))
    connect(fake)
    found = providers.list_repositories(owner, kind, query=" API ")
    assert [r.full_name for r in found.items] == ["acme/search-api", "acme/billing-api"]
    assert (found.query, found.has_next) == ("API", False)


def test_a_github_search_pages_through_its_matches(forge, connect, owner):
    fake = forge("github")
    _many_repos(fake, 25)
    connect(fake)
    first = providers.list_repositories(owner, "github", query="repo-1", per_page=6)
    second = providers.list_repositories(owner, "github", query="repo-1", page=2, per_page=6)
    assert (len(first.items), first.has_next, len(second.items), second.has_next) == (
        6,
        True,
        4,
        False,
    )


def test_a_repository_list_is_cached_briefly_but_an_error_is_not(forge, connect, owner):
    fake = forge("gitlab")
    fake.add_repo("acme/shop", NOW)
    connect(fake)
    fake.fail_status = 500
    with pytest.raises(ProviderError):
        providers.list_repositories(owner, "gitlab")
    fake.fail_status = 0
    assert len(providers.list_repositories(owner, "gitlab").items) == 1
    fake.add_repo("acme/new", NOW)
    assert len(providers.list_repositories(owner, "gitlab").items) == 1
    assert len(fake.hits("GET", "/api/v4/projects")) == 2


def test_it_lists_no_repositories_for_a_provider_the_user_has_not_connected(owner):
    with pytest.raises(ProviderError) as caught:
        providers.list_repositories(owner, "github")
    assert caught.value.code == "unauthorized" and "Sign in with GitHub" in caught.value.message


def test_connected_providers_are_the_users_own(forge, connect, owner, outsider):
    connect(forge("github"))
    connect(forge("gitea"), user=outsider)
    assert [c.provider for c in providers.connected_providers(owner)] == ["github"]


# --- Branches and check_repository -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_it_lists_every_branch_across_pages(kind, forge, connect, owner):
    fake = forge(kind)
    names = ["main"] + [f"feature/{n:03d}" for n in range(120)]
    fake.add_repo("acme/shop", NOW, branches=names)
    connect(fake)
    assert providers.list_branches(owner, kind, "acme/shop") == names


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_check_repository_finds_a_private_repository_and_branch_with_the_users_token(
    kind, forge, connect, owner
):
    fake = forge(kind)
    fake.add_repo("acme/secret", NOW, private=True, branches=["main", "release/1.0"])
    connect(fake)
    repo = providers.check_repository(owner, f"{fake.url}/acme/secret.git", "release/1.0")
    assert repo.full_name == "acme/secret" and repo.private
    assert {r["authorization"] for r in fake.requests} == {f"{AUTH_SCHEME[kind]} {fake.token}"}


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_check_repository_names_the_missing_repository(kind, forge, connect, owner):
    fake = forge(kind)
    connect(fake)
    with pytest.raises(ProviderError) as caught:
        providers.check_repository(owner, f"{fake.url}/acme/nowhere")
    assert caught.value.code == "not_found" and "acme/nowhere" in caught.value.message


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_check_repository_names_the_missing_branch(kind, forge, connect, owner):
    fake = forge(kind)
    fake.add_repo("acme/shop", NOW)
    connect(fake)
    with pytest.raises(ProviderError) as caught:
        providers.check_repository(owner, f"{fake.url}/acme/shop.git", "nope")
    assert caught.value.code == "not_found"
    assert "'nope'" in caught.value.message and "acme/shop" in caught.value.message


def test_check_repository_leaves_a_url_of_another_host_to_the_caller(forge, connect, owner):
    connect(forge("github"))
    assert providers.check_repository(owner, "https://example.com/acme/demo.git") is None


def test_check_repository_refuses_a_name_that_tries_to_leave_the_repository(forge, connect, owner):
    fake = forge("github")
    connect(fake)
    with pytest.raises(ProviderError) as caught:
        providers.check_repository(owner, f"{fake.url}/acme/../../user")
    assert caught.value.code == "not_found" and fake.requests == []


# --- Errors: what the user is told -----------------------------------------------------------


@pytest.mark.parametrize(
    "kind,name", [("github", "GitHub"), ("gitlab", "GitLab"), ("gitea", "Gitea")]
)
def test_a_rejected_token_says_to_sign_in_again(kind, name, forge, connect, owner):
    fake = forge(kind)
    connect(fake, access_token="revoked-token")
    with pytest.raises(ProviderError) as caught:
        providers.list_repositories(owner, kind)
    assert caught.value.code == "unauthorized"
    assert caught.value.message == f"Your {name} sign-in has expired; sign in again."
    assert caught.value.user_fault


def test_github_out_of_rate_limit_says_when_to_retry(forge, connect, owner):
    fake = forge("github")
    reset = int(NOW.timestamp()) + 3600
    body = json.dumps({"message": "API rate limit exceeded for user ID 42."}).encode()
    fake.rate_limit = (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, body)
    connect(fake)
    with pytest.raises(ProviderError) as caught:
        providers.list_repositories(owner, "github")
    assert caught.value.code == "rate_limited" and caught.value.retry_at == NOW + timedelta(hours=1)
    assert "13:00 UTC" in caught.value.message


def test_a_429_is_rate_limited_too(forge, connect, owner):
    fake = forge("gitlab")
    fake.rate_limit = (429, {"Retry-After": "30"}, b'{"message": "Retry later"}')
    connect(fake)
    with pytest.raises(ProviderError) as caught:
        providers.list_branches(owner, "gitlab", "acme/shop")
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_at > timezone.now() + timedelta(seconds=20)


def test_a_github_403_that_is_not_a_rate_limit_is_a_provider_error(forge, connect, owner):
    fake = forge("github")
    fake.rate_limit = (
        403,
        {"X-RateLimit-Remaining": "4999"},
        b'{"message": "Resource not accessible"}',
    )
    connect(fake)
    with pytest.raises(ProviderError) as caught:
        providers.create_webhook(
            owner, "github", "acme/shop", "https://paas.example/hook", "s3cr3t"
        )
    assert (
        caught.value.code == "provider_error" and "Resource not accessible" in caught.value.message
    )


def test_a_provider_that_does_not_answer_in_time_is_a_timeout(forge, connect, owner, settings):
    settings.PAAS_GIT_PROVIDER_TIMEOUT = 0.3
    fake = forge("gitea")
    fake.delay = 1.5
    connect(fake)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        providers.list_repositories(owner, "gitea")
    assert caught.value.code == "timeout" and "0.3 seconds" in caught.value.message
    assert time.monotonic() - started < 1.2


def test_an_unreachable_provider_is_a_timeout(connect, owner, forge):
    fake = forge("github")
    connect(fake)
    fake.server.shutdown()
    fake.server.server_close()
    with pytest.raises(ProviderError) as caught:
        providers.list_repositories(owner, "github")
    assert caught.value.code == "timeout" and "could not reach GitHub" in caught.value.message


def test_a_provider_crash_is_a_provider_error_without_its_page(forge, connect, owner):
    fake = forge("github")
    fake.fail_status = 500
    connect(fake)
    with pytest.raises(ProviderError) as caught:
        providers.list_repositories(owner, "github")
    assert caught.value.code == "provider_error"
    assert caught.value.message == "GitHub failed (HTTP 500); try again later."
    assert not caught.value.user_fault


# --- Tokens: refresh, encryption at rest -----------------------------------------------------


def test_an_expired_gitlab_token_is_refreshed_and_stored_encrypted(
    forge, connect, owner, oauth_apps
):
    fake = forge("gitlab")
    fake.add_repo("acme/shop", NOW)
    credential = connect(
        fake, refresh_token="gitlab-refresh-1", expires_at=timezone.now() - timedelta(minutes=5)
    )
    fake.refresh_grants["gitlab-refresh-1"] = ("gitlab-access-2", "gitlab-refresh-2")
    assert len(providers.list_repositories(owner, "gitlab").items) == 1
    credential.refresh_from_db()
    assert (credential.access_token, credential.refresh_token) == (
        "gitlab-access-2",
        "gitlab-refresh-2",
    )
    assert credential.expires_at > timezone.now() + timedelta(hours=1)
    raw = " ".join(_raw_columns(credential))
    assert "gitlab-access" not in raw and "gitlab-refresh" not in raw
    [grant] = fake.hits("POST", "/oauth/token")
    assert parse_qs(grant["body"].decode())["grant_type"] == ["refresh_token"]


def test_a_token_the_provider_rejects_early_is_refreshed_once(forge, connect, owner, oauth_apps):
    fake = forge("gitea")
    fake.add_repo("acme/shop", NOW)
    credential = connect(
        fake,
        access_token="gitea-stale",
        refresh_token="gitea-refresh-1",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    fake.refresh_grants["gitea-refresh-1"] = ("gitea-access-2", "gitea-refresh-2")
    assert providers.list_branches(owner, "gitea", "acme/shop") == ["main"]
    credential.refresh_from_db()
    assert credential.access_token == "gitea-access-2"
    assert [r["authorization"] for r in fake.hits("GET", "/api/v1/repos")] == [
        "token gitea-stale",
        "token gitea-access-2",
    ]


def test_a_refresh_the_provider_refuses_says_to_sign_in_again(forge, connect, owner, oauth_apps):
    fake = forge("gitlab")
    connect(fake, refresh_token="used-up", expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ProviderError) as caught:
        providers.list_repositories(owner, "gitlab")
    assert (
        caught.value.code == "unauthorized" and "GitLab sign-in has expired" in caught.value.message
    )
    assert "used-up" not in caught.value.message


# --- clone_token_for -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,user", [("github", "x-access-token"), ("gitlab", "oauth2"), ("gitea", "alice-forge")]
)
def test_clone_token_for_gives_the_owners_token_for_a_repository_on_their_provider(
    kind, user, forge, connect, make_app
):
    fake = forge(kind)
    connect(fake)
    app = make_app(repository=f"{fake.url}/acme/secret.git")
    assert clone_token_for(app) == (fake.token, user)


def test_clone_token_for_gives_nothing_for_another_host(forge, connect, make_app):
    connect(forge("github"))
    assert clone_token_for(make_app(repository="https://example.com/acme/demo.git")) == (
        "",
        "x-access-token",
    )


def test_clone_token_for_gives_nothing_from_another_users_credential(
    forge, connect, make_app, outsider
):
    fake = forge("github")
    connect(fake, user=outsider)
    assert clone_token_for(make_app(repository=f"{fake.url}/acme/demo.git")) == (
        "",
        "x-access-token",
    )


def test_clone_token_for_refreshes_an_expired_token(forge, connect, make_app, oauth_apps):
    fake = forge("gitlab")
    connect(
        fake, refresh_token="gitlab-refresh-1", expires_at=timezone.now() - timedelta(seconds=1)
    )
    fake.refresh_grants["gitlab-refresh-1"] = ("gitlab-access-2", "gitlab-refresh-2")
    app = make_app(repository=f"{fake.url}/group/sub/shop.git")
    assert clone_token_for(app) == ("gitlab-access-2", "oauth2")


# --- Webhooks --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_webhooks_are_created_with_the_secret_and_deleted(kind, forge, connect, owner):
    fake = forge(kind)
    fake.add_repo("acme/shop", NOW, private=True)
    connect(fake)
    hook_id = providers.create_webhook(
        owner, kind, "acme/shop", "https://paas.example/hooks/shop", "s3cr3t"
    )
    hook = fake.hooks[hook_id]
    if kind == "gitlab":
        assert (hook["url"], hook["token"], hook["push_events"]) == (
            "https://paas.example/hooks/shop",
            "s3cr3t",
            True,
        )
        assert hook["merge_requests_events"] is True  # for preview environments
    else:
        assert hook["config"]["url"] == "https://paas.example/hooks/shop" and hook["events"] == [
            "push",
            "pull_request",
        ]
        assert hook["config"]["secret"] == "s3cr3t" and hook["config"]["content_type"] == "json"
        assert hook.get("type", "gitea") == "gitea" and hook.get("name", "web") == "web"
    providers.delete_webhook(owner, kind, "acme/shop", hook_id)
    assert fake.hooks == {}
    providers.delete_webhook(owner, kind, "acme/shop", hook_id)  # already gone: fine
    assert len(fake.hits("DELETE", "/")) == 2


def test_a_gitlab_hook_goes_to_the_url_encoded_project_path(forge, connect, owner):
    fake = forge("gitlab")
    fake.add_repo("group/sub/shop", NOW)
    connect(fake)
    providers.create_webhook(owner, "gitlab", "group/sub/shop", "https://paas.example/h", "s")
    [post] = fake.hits("POST", "/api/v4/projects/")
    assert post["path"] == "/api/v4/projects/group%2Fsub%2Fshop/hooks"


# --- Sign-in through allauth -----------------------------------------------------------------


def oauth_round_trip(client, fake, process):
    """What the browser does: start at Slipway, come back from the provider with a code."""
    start = client.post("/accounts/gitlab/login/", {"process": process})
    assert start.status_code == 302 and start["Location"].startswith(f"{fake.url}/oauth/authorize")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    return client.get("/accounts/gitlab/login/callback/", {"code": "auth-code", "state": state})


@pytest.fixture
def gitlab_signin(forge, settings):
    fake = forge("gitlab")
    settings.SOCIALACCOUNT_PROVIDERS = {
        "gitlab": {"SCOPE": ["api"], "APPS": [dict(CLIENT)], "GITLAB_URL": fake.url},
    }
    settings.PAAS_GIT_PROVIDERS = {
        **settings.PAAS_GIT_PROVIDERS,
        "gitlab": {"name": "GitLab", "web_url": fake.url, "api_url": f"{fake.url}/api/v4"},
    }
    return fake


def test_connecting_gitlab_stores_its_tokens_encrypted_and_not_in_allauth(gitlab_signin, owner):
    client = Client()
    assert (
        client.post("/accounts/login/", {"login": "alice", "password": "pw-alice-123"}).status_code
        == 302
    )
    response = oauth_round_trip(client, gitlab_signin, "connect")
    assert response.status_code == 302
    credential = ProviderCredential.objects.get(user=owner, provider="gitlab")
    assert (credential.access_token, credential.refresh_token) == (
        "gitlab-access-1",
        "gitlab-refresh-1",
    )
    assert (credential.login, credential.account_id, credential.web_url) == (
        "alice-forge",
        "42",
        gitlab_signin.url,
    )
    assert credential.expires_at > timezone.now() + timedelta(hours=1)
    raw = " ".join(_raw_columns(credential))
    assert "gitlab-access" not in raw and "gitlab-refresh" not in raw
    assert SocialToken.objects.count() == 0 and SocialAccount.objects.filter(user=owner).exists()


def test_signing_in_again_with_gitlab_updates_the_stored_tokens(gitlab_signin, owner):
    client = Client()
    client.post("/accounts/login/", {"login": "alice", "password": "pw-alice-123"})
    oauth_round_trip(client, gitlab_signin, "connect")
    client.post("/accounts/logout/")
    gitlab_signin.token = "gitlab-access-9"
    response = oauth_round_trip(client, gitlab_signin, "login")
    assert response.status_code == 302 and client.get("/").wsgi_request.user == owner
    assert ProviderCredential.objects.get(user=owner).access_token == "gitlab-access-9"


def test_a_first_sign_in_with_gitlab_keeps_the_tokens_when_signup_is_open(gitlab_signin, settings):
    settings.PAAS_OPEN_SIGNUP = True
    response = oauth_round_trip(Client(), gitlab_signin, "login")
    assert response.status_code == 302
    credential = ProviderCredential.objects.get(provider="gitlab")
    assert (
        credential.user.username == "alice-forge" and credential.access_token == "gitlab-access-1"
    )


def test_disconnecting_gitlab_forgets_its_tokens(gitlab_signin, owner):
    client = Client()
    client.post("/accounts/login/", {"login": "alice", "password": "pw-alice-123"})
    oauth_round_trip(client, gitlab_signin, "connect")
    account = SocialAccount.objects.get(user=owner)
    assert ProviderCredential.objects.filter(user=owner).exists()
    response = client.post("/accounts/3rdparty/", {"account": account.pk})
    assert (
        response.status_code == 302 and not ProviderCredential.objects.filter(user=owner).exists()
    )


def test_the_sign_in_page_offers_configured_providers(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [dict(CLIENT)]},
        "gitlab": {"APPS": [], "GITLAB_URL": "https://gitlab.example"},
    }
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert (
        b"/accounts/github/login/" in response.content
        and b"/accounts/gitlab/login/" not in response.content
    )


def test_the_sign_in_page_works_without_providers(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {"github": {"APPS": []}}
    response = client.get("/accounts/login/")
    assert response.status_code == 200 and b"/accounts/github/login/" not in response.content
