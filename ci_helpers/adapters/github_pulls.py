"""GitHub's answer to "which pull requests brought this commit in"
(`GET /repos/{owner}/{repo}/commits/{sha}/pulls`), read only, through the same guarded client as
the PR comment (github_api: $GITHUB_API_URL only, no redirect, the token never in a message)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .github_api import GitHubAPIError, GitHubClient

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
# github.com as the URL's host (https, ssh, or scp-like `git@github.com:`), never a path segment
# of a mirror (`https://mirror.example/github.com/o/r`) or a look-alike host (`notgithub.com`).
_ORIGIN = re.compile(
    r"^(?:(?:https?|ssh|git)://(?:[^@/\s]+@)?|[^@/:\s]+@)?github\.com(?::\d+)?[:/]"
    r"(?P<repository>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)


@dataclass(frozen=True)
class CommitPull:
    number: int
    title: str | None
    url: str | None
    merged: bool
    base: str | None


def repository_from_origin(url: str | None) -> str | None:
    """owner/name of a github.com origin URL (https or ssh), else None."""
    match = _ORIGIN.search(url or "")
    return match.group("repository") if match else None


class CommitPullsClient(GitHubClient):
    def pulls_of_commit(self, sha: str) -> list[CommitPull]:
        if not _SHA.match(sha):
            raise GitHubAPIError(f"'{sha[:80]}' is not a commit sha")
        url = f"{self.api_url}/repos/{self.repository}/commits/{sha}/pulls?per_page=100"
        pulls = []
        for item in self._request("GET", url).json():
            if isinstance(item, dict) and isinstance(item.get("number"), int):
                pulls.append(
                    CommitPull(
                        item["number"],
                        item.get("title"),
                        item.get("html_url"),
                        bool(item.get("merged_at")),
                        (item.get("base") or {}).get("ref"),
                    )
                )
        return pulls


def pull_that_brought(pulls: list[CommitPull], branch: str | None) -> CommitPull | None:
    """The merged pull request into `branch` among `pulls` (GitHub lists open ones, and those into
    other branches, too); None when none targets it. With no branch known, the first merged one."""
    merged = [pull for pull in pulls if pull.merged]
    if branch:
        return next((pull for pull in merged if pull.base == branch), None)
    return merged[0] if merged else None
