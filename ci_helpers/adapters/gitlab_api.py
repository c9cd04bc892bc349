"""GitLab's REST API (v4), for the one thing ci_helpers writes there: a merge request's notes.

Every request goes to $CI_API_V4_URL (the job's own GitLab instance) and nowhere else: redirects
are not followed, and the next page is asked for by the number in `X-Next-Page`, never by a URL
from the answer. No proxy or .netrc setting can swap the credentials. The token travels in the
`PRIVATE-TOKEN` header only and never appears in a message (`GitLabAPIError` carries the status
and GitLab's own message).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from .http_api import HostedAPIError, api_url_from, send, token_session

PER_PAGE = 100  # GitLab's largest page
MAX_PAGES = 100  # 10,000 notes: a bound, not a limit anyone meets
MAX_NOTE_BODY = 1_000_000  # GitLab's limit on a note body, in characters


class GitLabAPIError(HostedAPIError):
    """Raised when GitLab answered with an error, or never answered (status None). GitLab answers
    404 for a project the token cannot see, so `forbidden` counts 404 too."""


@dataclass(frozen=True)
class MergeRequestNote:
    id: int
    body: str
    author: str
    system: bool  # GitLab's own notes ("added 1 commit"), never ours


def api_url_from_env() -> str:
    """$CI_API_V4_URL without its trailing slash; only http(s) URLs without credentials."""
    return api_url_from("CI_API_V4_URL", GitLabAPIError)


def project_id_from_env() -> int:
    """$CI_PROJECT_ID, GitLab's numeric project id."""
    value = os.environ.get("CI_PROJECT_ID", "")
    if not value.isdigit() or not value.isascii():
        raise GitLabAPIError(f"CI_PROJECT_ID {value!r} is not a numeric project id")
    return int(value)


class GitLabClient:
    """A minimal REST client bound to one API base URL, one project and one token."""

    def __init__(self, api_url: str, project_id: int, token: str, timeout: float = 20.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.project_id = int(project_id)
        self._timeout = timeout
        self._session = token_session(self.api_url, {"PRIVATE-TOKEN": token})

    def _notes_path(self, iid: int) -> str:
        return f"/projects/{self.project_id}/merge_requests/{int(iid)}/notes"

    def _request(self, method: str, path: str, params: dict | None = None, json: dict | None = None):
        shown = urlsplit(self.api_url).path + path
        # {"message": "403 Forbidden"} or, for a token without the scope, {"error": ..., "error_description": ...}
        keys = ("message", "error_description", "error")
        return send(
            self._session,
            method,
            self.api_url + path,
            self.api_url,
            shown,
            GitLabAPIError,
            self._timeout,
            keys,
            params=params,
            json=json,
        )

    def notes(self, iid: int) -> Iterator[MergeRequestNote]:
        """Every note of merge request !iid, oldest first, page by page as `X-Next-Page` says."""
        page: int | None = 1
        for _ in range(MAX_PAGES):
            if page is None:
                return
            params = {"sort": "asc", "order_by": "created_at", "per_page": PER_PAGE, "page": page}
            response = self._request("GET", self._notes_path(iid), params=params)
            for item in response.json():
                yield MergeRequestNote(
                    int(item["id"]),
                    item.get("body") or "",
                    (item.get("author") or {}).get("username", ""),
                    bool(item.get("system")),
                )
            page = _next_page(response.headers.get("X-Next-Page", ""), page)

    def create_note(self, iid: int, body: str) -> int:
        return int(self._request("POST", self._notes_path(iid), json={"body": body}).json()["id"])

    def update_note(self, iid: int, note_id: int, body: str) -> int:
        path = f"{self._notes_path(iid)}/{int(note_id)}"
        return int(self._request("PUT", path, json={"body": body}).json()["id"])


def _next_page(header: str, current: int) -> int | None:
    """The next page number, or None on the last page (an empty header). A number that does not
    move forward ends the walk too, so a misbehaving server cannot loop it."""
    header = header.strip()
    if not header.isdigit() or not header.isascii():
        return None
    following = int(header)
    return following if following > current else None
