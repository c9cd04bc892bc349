"""GitHub's REST API, for the one thing ci_helpers writes there: a PR's issue comments.

Every request goes to $GITHUB_API_URL (default https://api.github.com) and nowhere else: redirects
are not followed, a pagination `Link` that points elsewhere is refused, and no proxy or .netrc
setting can swap the credentials. The token is sent in the Authorization header only and never
appears in a message (`GitHubAPIError` carries the status and GitHub's own message).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from .http_api import HostedAPIError, api_url_from, send, token_session

DEFAULT_API_URL = "https://api.github.com"
PER_PAGE = 100
MAX_PAGES = 100  # 10,000 comments: a bound, not a limit anyone meets
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class GitHubAPIError(HostedAPIError):
    """Raised when GitHub answered with an error, or never answered (status None)."""


@dataclass(frozen=True)
class IssueComment:
    id: int
    body: str
    user: str


def api_url_from_env() -> str:
    """$GITHUB_API_URL without its trailing slash; only http(s) URLs without credentials."""
    return api_url_from("GITHUB_API_URL", GitHubAPIError, DEFAULT_API_URL)


def repository_from_env() -> str:
    """$GITHUB_REPOSITORY as owner/name."""
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    if not _REPOSITORY.match(repository) or ".." in repository:
        raise GitHubAPIError(f"GITHUB_REPOSITORY {repository!r} is not owner/name")
    return repository


class GitHubClient:
    """A minimal REST client bound to one API base URL, one repository and one token."""

    def __init__(self, api_url: str, repository: str, token: str, timeout: float = 20.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self._timeout = timeout
        self._session = token_session(
            self.api_url,
            {
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )

    def _check_url(self, url: str) -> str:
        """Refuse any URL outside the API base (a Link header pointing elsewhere)."""
        base = urlsplit(self.api_url)
        target = urlsplit(url)
        base_path = base.path.rstrip("/") + "/"
        if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not target.path.startswith(base_path):
            raise GitHubAPIError(f"refusing to follow a URL outside GITHUB_API_URL ({self.api_url})")
        return url

    def _request(self, method: str, url: str, json: dict | None = None) -> requests.Response:
        checked = self._check_url(url)
        return send(
            self._session, method, checked, self.api_url, urlsplit(url).path, GitHubAPIError, self._timeout, json=json
        )

    def issue_comments(self, number: int) -> Iterator[IssueComment]:
        """Every comment of issue or PR `number`, oldest first, following the pagination links."""
        url: str | None = f"{self.api_url}/repos/{self.repository}/issues/{int(number)}/comments?per_page={PER_PAGE}"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self._request("GET", url)
            for item in response.json():
                yield IssueComment(int(item["id"]), item.get("body") or "", (item.get("user") or {}).get("login", ""))
            url = _next_link(response.headers.get("Link", ""))

    def create_comment(self, number: int, body: str) -> int:
        url = f"{self.api_url}/repos/{self.repository}/issues/{int(number)}/comments"
        return int(self._request("POST", url, {"body": body}).json()["id"])

    def update_comment(self, comment_id: int, body: str) -> int:
        url = f"{self.api_url}/repos/{self.repository}/issues/comments/{int(comment_id)}"
        return int(self._request("PATCH", url, {"body": body}).json()["id"])


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        match = _NEXT_LINK.search(part)
        if match:
            return match.group(1)
    return None
