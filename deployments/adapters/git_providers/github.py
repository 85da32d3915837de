"""GitHub (github.com or Enterprise) through its REST API v3."""

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


class GitHubClient(HttpClient):
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    # A search looks through this many pages of 100 most recently updated repositories.
    SEARCH_PAGES = 3
    # A commit's statuses and check runs in one page each: more than any real CI sets.
    CHECKS_PER_PAGE = 100

    def list_repositories(self, query: str, page: int, per_page: int) -> RepositoryPage:
        if query:
            return self._search(query, page, per_page)
        params = {"sort": "updated", "direction": "desc", "per_page": per_page, "page": page}
        response = self.request("GET", "/user/repos", params=params)
        items = [_repository(row) for row in self.json(response)]
        return RepositoryPage(items, page, self.has_next(response), "")

    def _search(self, query: str, page: int, per_page: int) -> RepositoryPage:
        """Filtered here, by name: GitHub's search API finds repositories by owner or org, not
        "every repository this user can reach", and would miss collaborations. The cost: only
        the SEARCH_PAGES * 100 most recently updated repositories are searched."""
        needle = query.lower()
        matches = [repo for repo in self._recent() if needle in repo.full_name.lower()]
        start = (page - 1) * per_page
        has_next = len(matches) > start + per_page
        return RepositoryPage(matches[start : start + per_page], page, has_next, query)

    def _recent(self) -> list[Repository]:
        params = {"sort": "updated", "direction": "desc", "per_page": 100}
        rows = self.all_pages("/user/repos", params, self.SEARCH_PAGES)
        return [_repository(row) for row in rows]

    def list_branches(self, full_name: str) -> list[str]:
        rows = self.all_pages(
            f"/repos/{repo_path(full_name, self.label)}/branches", {"per_page": 100}
        )
        return [row["name"] for row in rows]

    def get_repository(self, full_name: str) -> Repository:
        return _repository(self.get_json(f"/repos/{repo_path(full_name, self.label)}"))

    def has_branch(self, full_name: str, branch: str) -> bool:
        path = f"/repos/{repo_path(full_name, self.label)}/branches/{quote(branch, safe='/')}"
        return self.exists(path)

    def create_webhook(self, full_name: str, url: str, secret: str) -> str:
        config = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
        body = {"name": "web", "active": True, "events": ["push", "pull_request"], "config": config}
        path = f"/repos/{repo_path(full_name, self.label)}/hooks"
        return str(self.post_json(path, body)["id"])

    def delete_webhook(self, full_name: str, hook_id: str) -> None:
        path = f"/repos/{repo_path(full_name, self.label)}/hooks/{quote(hook_id, safe='')}"
        self.request("DELETE", path)

    def commit_ci_status(self, full_name: str, sha: str) -> CiStatus:
        """Both of GitHub's ways to report CI: commit statuses (the combined status's
        latest one per context) and check runs (GitHub Actions and other apps)."""
        base = f"/repos/{repo_path(full_name, self.label)}/commits/{commit_path(sha, self.label)}"
        size = {"per_page": self.CHECKS_PER_PAGE}
        statuses = self.get_json(f"{base}/status", **size).get("statuses") or []
        runs = self.get_json(f"{base}/check-runs", **size).get("check_runs") or []
        checks = [(s["context"], s["state"], s.get("target_url") or "") for s in statuses]
        checks += [(r["name"], _run_outcome(r), r.get("html_url") or "") for r in runs]
        return combine_checks(self.label, checks)

    def post_commit_status(self, full_name: str, sha: str, status: CommitStatus) -> None:
        path = f"/repos/{repo_path(full_name, self.label)}/statuses/{commit_path(sha, self.label)}"
        self.post_json(path, {**status_body(status, status.state), "context": status.context})


def _run_outcome(run: dict) -> str:
    # A check run has a conclusion only once completed; until then its status says why not.
    if run.get("status") == "completed":
        return run.get("conclusion") or "failure"
    return run.get("status") or "pending"


def _repository(row: dict) -> Repository:
    return Repository(
        provider="github",
        full_name=row["full_name"],
        clone_url=row["clone_url"],
        default_branch=row.get("default_branch") or "",
        private=bool(row.get("private")),
        updated_at=parse_time(row.get("updated_at")),
        html_url=row.get("html_url") or "",
    )
