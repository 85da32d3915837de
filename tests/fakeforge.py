"""A fake Git forge: GitHub's, GitLab's or Gitea's API on loopback, speaking their JSON
shapes and headers and checking the token in every request. Shared by the provider,
webhook-registration and dashboard tests."""

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from django.utils import timezone

API_PREFIX = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}
AUTH_SCHEME = {"github": "Bearer", "gitlab": "Bearer", "gitea": "token"}
CLIENT = {"client_id": "slipway-client", "secret": "slipway-client-secret", "key": ""}


# --- A fake forge: one provider's API on loopback -------------------------------------------


class FakeForge:
    def __init__(self, kind: str):
        self.kind, self.token = kind, f"{kind}-access-1"
        self.repos: dict[str, dict] = {}
        self.hooks: dict[str, dict] = {}
        self.commits: dict[str, dict] = {}  # sha -> its CI, see add_commit
        self.posted_statuses: list[dict] = []  # {"repo", "sha", **body}, as POSTed
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

    def add_commit(self, sha, statuses=(), check_runs=(), pipeline=None):
        """A commit and what CI says of it: statuses are (context, state) (GitHub and Gitea),
        check_runs (name, status, conclusion) (GitHub), pipeline a status (GitLab's last)."""
        self.commits[sha] = {
            "statuses": list(statuses),
            "check_runs": list(check_runs),
            "pipeline": pipeline,
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
            "pushed_at": iso_z(repo["updated"]),
            "updated_at": iso_z(repo["updated"]),
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
        if rest.startswith("repository/commits/"):
            return self._gitlab_commit(rest[len("repository/commits/") :])
        if method == "POST" and rest.startswith("statuses/"):
            return self._post_status(repo, rest[len("statuses/") :], body)
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

    def _gitlab_commit(self, sha):
        commit = self.commits.get(sha)
        if commit is None:
            return 404, {}, _error_body("gitlab", "404 Commit Not Found")
        pipeline = commit["pipeline"] and {
            "id": 7,
            "sha": sha,
            "status": commit["pipeline"],
            "web_url": f"{self.url}/pipelines/7",
        }
        body = {"id": sha, "short_id": sha[:8], "title": "a commit", "last_pipeline": pipeline}
        return 200, {}, json.dumps(body).encode()

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
        if rest.startswith("commits/"):
            return self._commit_ci(*rest[len("commits/") :].split("/", 1))
        if method == "POST" and rest.startswith("statuses/"):
            return self._post_status(repo, rest[len("statuses/") :], body)
        return self._hooks(method, repo, rest, body)

    def _commit_ci(self, sha, what):
        """GitHub's and Gitea's combined status, and GitHub's check runs."""
        commit = self.commits.get(sha)
        if commit is None and self.kind == "github":
            return 422, {}, _error_body("github", f"No commit found for SHA: {sha}")
        if commit is None:
            return 404, {}, _error_body(self.kind, "Not Found")
        if what == "check-runs" and self.kind == "github":
            runs = [
                {"id": i, "name": n, "status": s, "conclusion": c, "html_url": f"{self.url}/r/{i}"}
                for i, (n, s, c) in enumerate(commit["check_runs"], 1)
            ]
            return 200, {}, json.dumps({"total_count": len(runs), "check_runs": runs}).encode()
        if what != "status":
            return 404, {}, _error_body(self.kind, "Not Found")
        key = "state" if self.kind == "github" else "status"  # Gitea's field is "status"
        statuses = [
            {"id": i, "context": context, key: state, "target_url": f"{self.url}/ci/{i}"}
            for i, (context, state) in enumerate(commit["statuses"], 1)
        ]
        combined = {"state": "pending", "sha": sha, "total_count": len(statuses)}
        return 200, {}, json.dumps({**combined, "statuses": statuses}).encode()

    def _post_status(self, repo, sha, body):
        """POST /repos/{o}/{r}/statuses/{sha} (GitHub, Gitea), /projects/:id/statuses/:sha
        (GitLab): recorded in posted_statuses, answered as the provider does (201)."""
        fields = json.loads(body)
        self.posted_statuses.append({"repo": repo["full_name"], "sha": sha, **fields})
        answer = {"id": len(self.posted_statuses), "sha": sha, **fields}
        return 201, {}, json.dumps(answer).encode()

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


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
