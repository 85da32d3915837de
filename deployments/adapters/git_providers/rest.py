"""The REST client every provider builds on: the user's token on each call, refreshed once
when the provider says it expired."""

import requests

from deployments.adapters.git_providers import tokens as provider_tokens
from deployments.adapters.git_providers.base import ProviderClient, ProviderError
from deployments.adapters.git_providers.http import MAX_PAGES, error_for, json_of, send


class HttpClient(ProviderClient):
    """A ProviderClient over REST: subclasses say how to authenticate and paginate."""

    auth_scheme = "Bearer"
    headers: dict[str, str] = {"Accept": "application/json"}

    @property
    def label(self) -> str:
        return self.credential.display_name

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        token = provider_tokens.access_token(self.credential)
        response = self._send(method, path, token, **kwargs)
        if response.status_code == 401 and self.credential.refresh_token:
            # Revoked early or expired by the provider's clock, not ours: refresh once.
            response = self._send(method, path, provider_tokens.refresh(self.credential), **kwargs)
        if response.status_code >= 400:
            raise error_for(response, self.label)
        return response

    def json(self, response: requests.Response):
        return json_of(response, self.label)

    def get_json(self, path: str, **params):
        return self.json(self.request("GET", path, params=params))

    def post_json(self, path: str, body: dict):
        return self.json(self.request("POST", path, json=body))

    def exists(self, path: str) -> bool:
        try:
            self.request("GET", path)
        except ProviderError as exc:
            if exc.code == "not_found":
                return False
            raise
        return True

    def all_pages(self, path: str, params: dict, max_pages: int = MAX_PAGES) -> list:
        rows: list = []
        for page in range(1, max_pages + 1):
            response = self.request("GET", path, params={**params, "page": page})
            rows.extend(self.json(response))
            if not self.has_next(response):
                break
        return rows

    def has_next(self, response: requests.Response) -> bool:
        return "next" in response.links

    def _send(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        headers = {**self.headers, "Authorization": f"{self.auth_scheme} {token}"}
        url = self.credential.api_url.rstrip("/") + path
        return send(method, url, self.label, headers=headers, **kwargs)
