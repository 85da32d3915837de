"""Gitea and Forgejo (same API) through REST API v1."""

from urllib.parse import quote

from deployments.adapters.git_providers.base import (
    CiStatus,
    CommitStatus,
    Repository,
    RepositoryPage,
    combine_checks,
)
from deployments.adapters.git_providers.http import (
    commit_path,
    parse_time,
    repo_path,
    status_body,
)
from deployments.adapters.git_providers.rest import HttpClient


class GiteaClient(HttpClient):
    auth_scheme = "token"

    def list_repositories(self, query: str, page: int, per_page: int) -> RepositoryPage:
        # /user/repos cannot sort; /repos/search can, and uid limits it to the repositories the
        # user owns or collaborates on (without it, every public repository would show).
        params = {
            "q": query,
            "uid": self._uid(),
            "sort": "updated",
            "order": "desc",
            "page": page,
            "limit": per_page,
        }
        response = self.request("GET", "/repos/search", params=params)
        rows = self.json(response).get("data") or []
        return RepositoryPage(
            [_repository(row) for row in rows], page, self.has_next(response), query
        )

    def list_branches(self, full_name: str) -> list[str]:
        rows = self.all_pages(f"/repos/{repo_path(full_name, self.label)}/branches", {"limit": 50})
        return [row["name"] for row in rows]

    def get_repository(self, full_name: str) -> Repository:
        return _repository(self.get_json(f"/repos/{repo_path(full_name, self.label)}"))

    def has_branch(self, full_name: str, branch: str) -> bool:
        path = f"/repos/{repo_path(full_name, self.label)}/branches/{quote(branch, safe='/')}"
        return self.exists(path)

    def create_webhook(self, full_name: str, url: str, secret: str) -> str:
        config = {"url": url, "content_type": "json", "secret": secret}
        body = {
            "type": "gitea",
            "active": True,
            "events": ["push", "pull_request"],
            "config": config,
        }
        path = f"/repos/{repo_path(full_name, self.label)}/hooks"
        return str(self.post_json(path, body)["id"])

    def delete_webhook(self, full_name: str, hook_id: str) -> None:
        path = f"/repos/{repo_path(full_name, self.label)}/hooks/{quote(hook_id, safe='')}"
        self.request("DELETE", path)

    def commit_ci_status(self, full_name: str, sha: str) -> CiStatus:
        """The combined status's latest status per context (Gitea Actions and external CI).
        Gitea's "warning" counts as a failure: the gate wants success."""
        path = f"/repos/{repo_path(full_name, self.label)}/commits/{commit_path(sha, self.label)}"
        statuses = self.get_json(f"{path}/status", limit=50).get("statuses") or []
        checks = [(s["context"], _state(s), s.get("target_url") or "") for s in statuses]
        return combine_checks(self.label, checks)

    def post_commit_status(self, full_name: str, sha: str, status: CommitStatus) -> None:
        path = f"/repos/{repo_path(full_name, self.label)}/statuses/{commit_path(sha, self.label)}"
        self.post_json(path, {**status_body(status, status.state), "context": status.context})

    def _uid(self) -> str:
        return self.credential.account_id or str(self.get_json("/user")["id"])


def _state(status: dict) -> str:
    # Gitea names the field "status"; some Forgejo versions answer "state" beside it.
    return status.get("status") or status.get("state") or ""


def _repository(row: dict) -> Repository:
    return Repository(
        provider="gitea",
        full_name=row["full_name"],
        clone_url=row["clone_url"],
        default_branch=row.get("default_branch") or "",
        private=bool(row.get("private")),
        updated_at=parse_time(row.get("updated_at")),
        html_url=row.get("html_url") or "",
    )
