"""The sticky PR comment: one comment per PR and project, created once, then updated in place.

The comment is found again by a hidden marker at the start of its body. The body is the job
summary's markdown, redacted, cut to GitHub's size limit. Writing it never changes the verdict: a
token that may not write (a fork PR) gets a notice and the job summary stays the report; any other
API failure is retried a few times, then becomes a warning.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..adapters import github
from ..adapters.github_api import GitHubAPIError, GitHubClient, api_url_from_env, repository_from_env
from ..adapters.redact import redact
from ..adapters.runner import retry_attempts, retry_wait_seconds

MAX_BODY = 65536  # GitHub's limit on a comment body, in characters
MARKER_PREFIX = "<!-- mlops-actions:pr-validate"
TITLE = "mlops-actions pr-validate"


def project_key(root: Path, git_root: Path) -> str:
    """The project's folder inside its git repository ('.' at the top): a monorepo's projects
    each keep a comment of their own."""
    try:
        key = root.resolve().relative_to(git_root.resolve()).as_posix()
    except ValueError:
        key = root.resolve().name
    return key if key not in ("", ".") else "."


def marker(key: str) -> str:
    """The hidden line that starts the comment; `--` and `>` cannot end the HTML comment early."""
    if key == ".":
        return f"{MARKER_PREFIX} -->"
    safe = key.replace("--", "-\u2010").replace(">", "\u203a")
    return f"{MARKER_PREFIX} project={safe} -->"


def comment_body(markdown: str, key: str, run_url: str | None = None) -> str:
    """Marker, then the redacted report, cut to MAX_BODY characters with a note saying so."""
    head = marker(key) + "\n"
    text = redact(markdown)
    if len(head) + len(text) <= MAX_BODY:
        return head + text
    where = f"the job summary of [this run]({run_url})" if run_url else "the job summary"
    note = f"\n\n---\n⚠️ Truncated to GitHub's comment size limit; the full report is in {where}.\n"
    return head + text[: MAX_BODY - len(head) - len(note)] + note


def notice(message: str) -> None:
    """A ::notice:: annotation on Actions; a plain `notice:` line on stderr elsewhere."""
    message = redact(message)
    if github.in_actions():
        import github_action_utils as gha

        gha.notice(message, title=TITLE)
    else:
        sys.stderr.write(f"notice: {message}\n")


def _upsert(client: GitHubClient, pr: int, key: str, body: str) -> str:
    """Update the first comment that starts with this project's marker, else create one."""
    start = marker(key)
    for comment in client.issue_comments(pr):
        if comment.body.startswith(start):
            client.update_comment(comment.id, body)
            return f"updated (comment {comment.id})"
    return f"created (comment {client.create_comment(pr, body)})"


def publish_pr_comment(markdown: str, pr: int | None, key: str, run_url: str | None = None) -> str | None:
    """Create or update the PR's sticky comment; returns 'created'/'updated', or None when it was
    not written (said as a notice or warning). Never raises for GitHub's sake."""
    if pr is None:
        github.warning("--comment: not a pull request (no PR number in $GITHUB_REF or --pr); no comment written")
        return None
    client = _client()
    if client is None:
        return None
    action = _write(client, pr, key, comment_body(markdown, key, run_url))
    if action:
        sys.stderr.write(f"PR comment on PR #{pr}: {action}\n")
    return action


def _client() -> GitHubClient | None:
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        _fall_back("no GITHUB_TOKEN in the environment (pass the action's github-token input)")
        return None
    try:
        return GitHubClient(api_url_from_env(), repository_from_env(), token)
    except GitHubAPIError as error:
        github.warning(f"PR comment not written: {error}", title=TITLE)
        return None


def _write(client: GitHubClient, pr: int, key: str, body: str) -> str | None:
    """The find-or-create, retried as a whole: a create whose answer was lost is found next time."""
    attempts, wait = retry_attempts(), retry_wait_seconds()
    for attempt in range(1, attempts + 1):
        try:
            return _upsert(client, pr, key, body)
        except GitHubAPIError as error:
            if error.forbidden:
                _fall_back(f"{error} (the token needs `pull-requests: write`; a fork PR's token is read-only)")
                return None
            if not error.transient or attempt == attempts:
                github.warning(f"PR comment not written after {attempt} attempt(s): {error}", title=TITLE)
                return None
            sys.stderr.write(f"PR comment: {redact(str(error))}; retrying ({attempt}/{attempts})\n")
            time.sleep(wait * 2 ** (attempt - 1))
    return None


def _fall_back(reason: str) -> None:
    notice(f"the PR comment could not be written: {reason}; the job summary holds the report")
    github.write_summary(f"\n> ℹ️ The PR comment could not be written: {reason}.\n")
