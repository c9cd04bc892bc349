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

DEFAULT_API_URL = "https://api.github.com"
PER_PAGE = 100
MAX_PAGES = 100  # 10,000 comments: a bound, not a limit anyone meets
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class GitHubAPIError(Exception):
    """A request GitHub answered with an error, or that never got an answer (status None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def transient(self) -> bool:
        """Worth retrying: no answer, a rate limit or a server error."""
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def forbidden(self) -> bool:
        """The token may not do this (a fork PR's read-only token, a missing permission)."""
        return self.status in (401, 403, 404)


@dataclass(frozen=True)
class IssueComment:
    id: int
    body: str
    user: str


def api_url_from_env() -> str:
    """$GITHUB_API_URL without its trailing slash; only http(s) URLs are accepted."""
    url = (os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise GitHubAPIError(f"GITHUB_API_URL {url!r} is not an http(s) URL")
    if "@" in parts.netloc:
        raise GitHubAPIError("GITHUB_API_URL must not carry credentials")
    return url


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
        self._session = requests.Session()
        self._session.trust_env = False  # no .netrc may replace the token; proxies are set below
        self._session.proxies.update(requests.utils.get_environ_proxies(self.api_url))
        self._session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": "mlops-actions-ci-helpers",
            }
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
        try:
            response = self._session.request(
                method, self._check_url(url), json=json, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as error:
            raise GitHubAPIError(f"{method} {self.api_url} got no answer ({type(error).__name__})") from None
        if response.status_code >= 300:
            raise GitHubAPIError(
                f"{method} {urlsplit(url).path} answered {response.status_code}: {_message(response)}",
                response.status_code,
            )
        return response

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


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason or "no message"
    message = data.get("message") if isinstance(data, dict) else None
    return " ".join(str(message or response.reason or "no message").split())[:200]
