"""GitLab (gitlab.com or self-hosted) through its REST API v4."""

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


class GitLabClient(HttpClient):
    def has_next(self, response) -> bool:
        return bool(response.headers.get("X-Next-Page"))

    def list_repositories(self, query: str, page: int, per_page: int) -> RepositoryPage:
        params = {
            "membership": "true",
            "order_by": "last_activity_at",
            "sort": "desc",
            "per_page": per_page,
            "page": page,
        }
        if query:
            params.update(search=query, search_namespaces="true")
        response = self.request("GET", "/projects", params=params)
        items = [_repository(row) for row in self.json(response)]
        return RepositoryPage(items, page, self.has_next(response), query)

    def list_branches(self, full_name: str) -> list[str]:
        rows = self.all_pages(f"{self._project(full_name)}/repository/branches", {"per_page": 100})
        return [row["name"] for row in rows]

    def get_repository(self, full_name: str) -> Repository:
        return _repository(self.get_json(self._project(full_name)))

    def has_branch(self, full_name: str, branch: str) -> bool:
        return self.exists(
            f"{self._project(full_name)}/repository/branches/{quote(branch, safe='')}"
        )

    def create_webhook(self, full_name: str, url: str, secret: str) -> str:
        body = {
            "url": url,
            "token": secret,
            "push_events": True,
            "merge_requests_events": True,  # preview environments
            "enable_ssl_verification": True,
        }
        return str(self.post_json(f"{self._project(full_name)}/hooks", body)["id"])

    def delete_webhook(self, full_name: str, hook_id: str) -> None:
        self.request("DELETE", f"{self._project(full_name)}/hooks/{quote(hook_id, safe='')}")

    def commit_ci_status(self, full_name: str, sha: str) -> CiStatus:
        """The commit's latest pipeline: its status is already the sum of its jobs."""
        path = f"{self._project(full_name)}/repository/commits/{commit_path(sha, self.label)}"
        pipeline = self.get_json(path).get("last_pipeline")
        if not pipeline:
            return combine_checks(self.label, [])
        name = f"pipeline #{pipeline.get('id')}"
        return combine_checks(
            self.label, [(name, pipeline.get("status", ""), pipeline.get("web_url") or "")]
        )

    def post_commit_status(self, full_name: str, sha: str, status: CommitStatus) -> None:
        # GitLab's word for a failure is "failed", and it names the context "name".
        state = "failed" if status.state == "failure" else status.state
        path = f"{self._project(full_name)}/statuses/{commit_path(sha, self.label)}"
        self.post_json(path, {**status_body(status, state), "name": status.context})

    def _project(self, full_name: str) -> str:
        # GitLab takes the URL-encoded full path wherever it takes a project id.
        repo_path(full_name, self.label)
        return "/projects/" + quote(full_name, safe="")


def _repository(row: dict) -> Repository:
    return Repository(
        provider="gitlab",
        full_name=row["path_with_namespace"],
        clone_url=row["http_url_to_repo"],
        default_branch=row.get("default_branch") or "",
        # "internal" projects need a sign-in to clone, like private ones.
        private=row.get("visibility", "private") != "public",
        updated_at=parse_time(row.get("last_activity_at")),
        html_url=row.get("web_url") or "",
    )
