"""Sign-in with a Git provider and the Git-provider service.

The providers are real HTTP servers on loopback that answer with GitHub's, GitLab's and
Gitea's JSON bodies and headers (pagination, rate limits, errors) and check the token in
every request; nothing of apps.providers is mocked.
"""

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps import providers
from apps.provider_models import ProviderCredential
from apps.provider_tokens import clone_token_for
from apps.providers import ProviderError

pytestmark = pytest.mark.django_db

API_PREFIX = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}
AUTH_SCHEME = {"github": "Bearer", "gitlab": "Bearer", "gitea": "token"}
CLIENT = {"client_id": "slipway-client", "secret": "slipway-client-secret", "key": ""}


# --- A fake forge: one provider's API on loopback -------------------------------------------


class FakeForge:
    def __init__(self, kind: str):
        self.kind, self.token = kind, f"{kind}-access-1"
        self.repos: dict[str, dict] = {}
        self.hooks: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.refresh_grants: dict[str, tuple[str, str]] = {}  # refresh token -> new pair
        self.user = {"id": 42, "login": "alice-forge", "username": "alice-forge"}
        self.fail_status, self.rate_limit, self.delay = 0, None, 0.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        # A short poll interval: shutdown() waits for one, at the end of every test.
        serve = lambda: self.server.serve_forever(poll_interval=0.05)  # noqa: E731
        threading.Thread(target=serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def add_repo(self, full_name, updated, private=False, branches=("main",), default="main"):
        self.repos[full_name] = {
            "id": len(self.repos) + 1,
            "full_name": full_name,
            "private": private,
            "updated": updated,
            "branches": list(branches),
            "default": default,
        }

    def hits(self, method: str, path_start: str) -> list[dict]:
        return [
            r for r in self.requests if r["method"] == method and r["path"].startswith(path_start)
        ]

    # What each provider answers: (status, headers, body).

    def answer(self, method, path, query, headers, body):
        if self.delay:
            time.sleep(self.delay)
        if path in ("/oauth/token", "/login/oauth/access_token"):
            return self._token_endpoint(parse_qs(body.decode()))
        if self.fail_status:
            return (
                self.fail_status,
                {"Content-Type": "text/html"},
                b"<html><h1>500</h1>trace at 0xdead</html>",
            )
        if self.rate_limit:
            return self.rate_limit
        authorized = self._authorized(headers, query)
        if authorized is False:
            return 401, {}, _error_body(self.kind, "401 Unauthorized")
        if not path.startswith(API_PREFIX[self.kind]):
            return 404, {}, _error_body(self.kind, "Not Found")
        route = path[len(API_PREFIX[self.kind]) :]
        return getattr(self, f"_{self.kind}")(method, route, query, body, authorized)

    def _authorized(self, headers, query):
        """True with the right token, None without any (anonymous), False with a wrong one."""
        given = headers.get("Authorization", "")
        if not given and "access_token" in query:  # allauth's GitLab profile call
            given = f"Bearer {query['access_token'][0]}"
        if not given:
            return None
        return given == f"{AUTH_SCHEME[self.kind]} {self.token}"

    def _token_endpoint(self, form):
        if form.get("client_id") != [CLIENT["client_id"]] or form.get("client_secret") != [
            CLIENT["secret"]
        ]:
            return 401, {}, json.dumps({"error": "invalid_client"}).encode()
        grant = form["grant_type"][0]
        if grant == "authorization_code":
            return 200, {}, _token_body(self.token, f"{self.kind}-refresh-1")
        pair = self.refresh_grants.pop(form.get("refresh_token", [""])[0], None)
        if pair is None:
            return 400, {}, json.dumps({"error": "invalid_grant"}).encode()
        self.token = pair[0]
        return 200, {}, _token_body(*pair)

    def _visible(self, authorized):
        return [r for r in self.repos.values() if authorized or not r["private"]]

    def _repo_or_404(self, full_name, authorized):
        repo = self.repos.get(full_name)
        return repo if repo and (authorized or not repo["private"]) else None

    # GitHub: /user/repos, /repos/{o}/{r}[/branches[/b]|/hooks[/id]]; Link pagination.

    def _github(self, method, route, query, body, authorized):
        if route == "/user/repos":
            rows = self._sorted(self._visible(authorized), query, "sort", "updated", "direction")
            return self._link_page([self._github_repo(r) for r in rows], route, query, "per_page")
        return self._repo_routes(
            method, route, query, body, authorized, self._github_repo, "per_page"
        )

    def _github_repo(self, repo):
        return {
            "id": repo["id"],
            "name": repo["full_name"].split("/")[-1],
            "full_name": repo["full_name"],
            "owner": {"login": repo["full_name"].split("/")[0]},
            "private": repo["private"],
            "html_url": f"{self.url}/{repo['full_name']}",
            "clone_url": f"{self.url}/{repo['full_name']}.git",
            "default_branch": repo["default"],
            "pushed_at": _iso_z(repo["updated"]),
            "updated_at": _iso_z(repo["updated"]),
        }

    # GitLab: /projects[?search], /projects/:id[/repository/branches[/b]|/hooks[/id]], /user.

    def _gitlab(self, method, route, query, body, authorized):
        parts = route.split("/")
        if route == "/user":
            return (
                200,
                {},
                json.dumps({**self.user, "email": "alice@example.com", "name": "Alice"}).encode(),
            )
        if route == "/projects":
            rows = self._visible(authorized) if query.get("membership") == ["true"] else []
            needle = query.get("search", [""])[0]
            rows = [r for r in rows if needle.lower() in r["full_name"].lower()]
            ordered = query.get("order_by") == ["last_activity_at"] and query.get("sort") == [
                "desc"
            ]
            rows = sorted(rows, key=lambda r: r["updated"], reverse=True) if ordered else rows
            return self._gitlab_page([self._gitlab_repo(r) for r in rows], query)
        repo = self._repo_or_404(unquote(parts[2]), authorized)
        if repo is None:
            return 404, {}, _error_body("gitlab", "404 Project Not Found")
        rest = "/".join(parts[3:])
        if rest == "":
            return 200, {}, json.dumps(self._gitlab_repo(repo)).encode()
        if rest == "repository/branches":
            return self._gitlab_page([{"name": b} for b in repo["branches"]], query)
        if rest.startswith("repository/branches/"):
            return self._branch(repo, unquote(rest[len("repository/branches/") :]))
        return self._hooks(method, repo, rest, body)

    def _gitlab_repo(self, repo):
        return {
            "id": repo["id"],
            "path_with_namespace": repo["full_name"],
            "http_url_to_repo": f"{self.url}/{repo['full_name']}.git",
            "web_url": f"{self.url}/{repo['full_name']}",
            "default_branch": repo["default"],
            "visibility": "private" if repo["private"] else "public",
            "last_activity_at": repo["updated"].strftime("%Y-%m-%dT%H:%M:%S.123Z"),
        }

    def _gitlab_page(self, rows, query):
        per_page, page = int(query.get("per_page", ["20"])[0]), int(query.get("page", ["1"])[0])
        pages = max(1, -(-len(rows) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(rows)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
        }
        return 200, headers, json.dumps(rows[(page - 1) * per_page : page * per_page]).encode()

    # Gitea: /repos/search?q&uid&sort&order, /repos/{o}/{r}[...], /user; Link + X-Total-Count.

    def _gitea(self, method, route, query, body, authorized):
        if route == "/user":
            return 200, {}, json.dumps({**self.user, "email": "alice@example.com"}).encode()
        if route == "/repos/search":
            if query.get("uid") != [str(self.user["id"])]:
                rows = []  # the test forge has no other users' repositories to show
            else:
                needle = query.get("q", [""])[0].lower()
                rows = [r for r in self._visible(authorized) if needle in r["full_name"].lower()]
                rows = self._sorted(rows, query, "sort", "updated", "order")
            status, headers, page = self._link_page(
                [self._gitea_repo(r) for r in rows], route, query, "limit"
            )
            return status, headers, json.dumps({"ok": True, "data": json.loads(page)}).encode()
        return self._repo_routes(method, route, query, body, authorized, self._gitea_repo, "limit")

    def _gitea_repo(self, repo):
        local = repo["updated"].astimezone(timezone.get_fixed_timezone(120))
        return {
            "id": repo["id"],
            "name": repo["full_name"].split("/")[-1],
            "full_name": repo["full_name"],
            "owner": {"login": repo["full_name"].split("/")[0]},
            "private": repo["private"],
            "html_url": f"{self.url}/{repo['full_name']}",
            "clone_url": f"{self.url}/{repo['full_name']}.git",
            "default_branch": repo["default"],
            "updated_at": local.isoformat(timespec="seconds"),
        }

    # Shared shapes of GitHub and Gitea.

    def _repo_routes(self, method, route, query, body, authorized, render, size_param):
        parts = route.split("/")
        if len(parts) < 4 or parts[1] != "repos":
            return 404, {}, _error_body(self.kind, "Not Found")
        repo = self._repo_or_404(f"{parts[2]}/{parts[3]}", authorized)
        if repo is None:
            return 404, {}, _error_body(self.kind, "Not Found")
        rest = "/".join(parts[4:])
        if rest == "":
            return 200, {}, json.dumps(render(repo)).encode()
        if rest == "branches":
            rows = [
                {"name": b, "commit": {"sha": "0" * 40}, "protected": False}
                for b in repo["branches"]
            ]
            return self._link_page(rows, route, query, size_param)
        if rest.startswith("branches/"):
            return self._branch(repo, unquote(rest[len("branches/") :]))
        return self._hooks(method, repo, rest, body)

    def _branch(self, repo, name):
        if name not in repo["branches"]:
            return 404, {}, _error_body(self.kind, "Branch not found")
        return 200, {}, json.dumps({"name": name, "commit": {"id": "0" * 40}}).encode()

    def _hooks(self, method, repo, rest, body):
        if method == "POST" and rest == "hooks":
            hook_id = str(len(self.hooks) + 100)
            self.hooks[hook_id] = {"repo": repo["full_name"], **json.loads(body)}
            return 201, {}, json.dumps({"id": int(hook_id), "active": True}).encode()
        if method == "DELETE" and rest.startswith("hooks/"):
            gone = self.hooks.pop(rest[len("hooks/") :], None)
            return (204, {}, b"") if gone else (404, {}, _error_body(self.kind, "Not Found"))
        return 404, {}, _error_body(self.kind, "Not Found")

    @staticmethod
    def _sorted(rows, query, sort_key, wanted, order_key):
        if query.get(sort_key) == [wanted] and query.get(order_key) == ["desc"]:
            return sorted(rows, key=lambda r: r["updated"], reverse=True)
        return sorted(rows, key=lambda r: r["full_name"])  # both default to name order

    def _link_page(self, rows, route, query, size_param):
        size, page = int(query.get(size_param, ["30"])[0]), int(query.get("page", ["1"])[0])
        last = max(1, -(-len(rows) // size))
        base = f"{self.url}{API_PREFIX[self.kind]}{route}?{size_param}={size}"
        links = (
            [f'<{base}&page={page + 1}>; rel="next"', f'<{base}&page={last}>; rel="last"']
            if page < last
            else []
        )
        headers = {"Link": ", ".join(links)} if links else {}
        headers["X-Total-Count"] = str(len(rows))
        return 200, headers, json.dumps(rows[(page - 1) * size : page * size]).encode()


def _handler_for(forge: FakeForge):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = parse_qs(url.query)
            forge.requests.append(
                {
                    "method": self.command,
                    "path": url.path,
                    "query": query,
                    "authorization": self.headers.get("Authorization", ""),
                    "body": body,
                }
            )
            status, headers, payload = forge.answer(
                self.command, url.path, query, self.headers, body
            )
            try:
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (the timeout test)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args):
            pass

    return Handler


def _error_body(kind, message):
    if kind == "github":
        return json.dumps(
            {"message": message, "documentation_url": "https://docs.github.com/rest"}
        ).encode()
    if kind == "gitea":
        return json.dumps({"message": message, "url": "https://gitea.example/api/swagger"}).encode()
    return json.dumps({"message": message}).encode()


def _token_body(access, refresh):
    body = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 7200,
        "refresh_token": refresh,
        "scope": "api",
        "created_at": int(time.time()),
    }
    return json.dumps(body).encode()


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Fixtures ----------------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The fixture users' passwords need not resist brute force here; hashing them would
    # cost most of this file's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def forge():
    """A factory: forge("github") starts a fake GitHub on its own port."""
    started = []

    def start(kind):
        started.append(FakeForge(kind))
        return started[-1]

    yield start
    for fake in started:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture
def connect(owner, settings):
    """Give a user a credential pointing at a fake forge, and tell settings where it lives."""

    def make(fake, user=None, **fields):
        api_url = fake.url + API_PREFIX[fake.kind]
        settings.PAAS_GIT_PROVIDERS = {
            **settings.PAAS_GIT_PROVIDERS,
            fake.kind: {"name": fake.kind, "web_url": fake.url, "api_url": api_url},
        }
        fields.setdefault("access_token", fake.token)
        return ProviderCredential.objects.create(
            user=user or owner,
            provider=fake.kind,
            web_url=fake.url,
            api_url=api_url,
            account_id=str(fake.user["id"]),
            login=fake.user["login"],
            **fields,
        )

    return make


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
    else:
        assert hook["config"]["url"] == "https://paas.example/hooks/shop" and hook["events"] == [
            "push"
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


def _oauth_round_trip(client, fake, process):
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
    response = _oauth_round_trip(client, gitlab_signin, "connect")
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
    _oauth_round_trip(client, gitlab_signin, "connect")
    client.post("/accounts/logout/")
    gitlab_signin.token = "gitlab-access-9"
    response = _oauth_round_trip(client, gitlab_signin, "login")
    assert response.status_code == 302 and client.get("/").wsgi_request.user == owner
    assert ProviderCredential.objects.get(user=owner).access_token == "gitlab-access-9"


def test_a_first_sign_in_with_gitlab_keeps_the_tokens_when_signup_is_open(gitlab_signin, settings):
    settings.PAAS_OPEN_SIGNUP = True
    response = _oauth_round_trip(Client(), gitlab_signin, "login")
    assert response.status_code == 302
    credential = ProviderCredential.objects.get(provider="gitlab")
    assert (
        credential.user.username == "alice-forge" and credential.access_token == "gitlab-access-1"
    )


def test_disconnecting_gitlab_forgets_its_tokens(gitlab_signin, owner):
    client = Client()
    client.post("/accounts/login/", {"login": "alice", "password": "pw-alice-123"})
    _oauth_round_trip(client, gitlab_signin, "connect")
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
