"""GitHub (github.com or Enterprise) through its REST API v3."""

from urllib.parse import quote

from deployments.adapters.git_providers.base import Repository, RepositoryPage
from deployments.adapters.git_providers.http import parse_time, repo_path
from deployments.adapters.git_providers.rest import HttpClient


class GitHubClient(HttpClient):
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    # A search looks through this many pages of 100 most recently updated repositories.
    SEARCH_PAGES = 3

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
        body = {"name": "web", "active": True, "events": ["push"], "config": config}
        path = f"/repos/{repo_path(full_name, self.label)}/hooks"
        return str(self.post_json(path, body)["id"])

    def delete_webhook(self, full_name: str, hook_id: str) -> None:
        path = f"/repos/{repo_path(full_name, self.label)}/hooks/{quote(hook_id, safe='')}"
        self.request("DELETE", path)


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
