"""The sticky report comment: one per pull request (GitHub) or merge request note (GitLab) and
project, created once, then updated in place.

The comment is found again by a hidden marker at the start of its body, across every page of the
PR's comments. The body is the report's markdown, redacted, cut to the host's size limit. Which
host is asked follows from the environment: a GitLab CI job ($GITLAB_CI=true) writes an MR note
through $CI_API_V4_URL, anything else a GitHub PR comment through $GITHUB_API_URL. Writing it never
changes the verdict: a token that may not write (a fork PR, a token without the scope) gets a
notice and the job's own report stays the report; any other API failure is retried a few times,
then becomes a warning.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from ..adapters import github, github_api, gitlab_api
from ..adapters.github_api import GitHubClient
from ..adapters.gitlab_api import GitLabClient
from ..adapters.http_api import HostedAPIError
from ..adapters.redact import redact
from ..adapters.runner import retry_attempts, retry_wait_seconds
from .limits import fit_comment, summary_is_whole

MAX_BODY = 65536  # GitHub's limit on a comment body, in characters
MARKER_PREFIX = "<!-- mlops-actions:pr-validate"
TITLE = "mlops-actions pr-validate"
# Where a GitLab job finds its token for the MR note, first set wins. CI_JOB_TOKEN is not one:
# GitLab does not let a job token write notes.
GITLAB_TOKEN_VARS = ("CI_HELPERS_GITLAB_TOKEN", "GITLAB_TOKEN")


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


# Room for redaction to lengthen the text a little (a URL's one-letter user info becomes the mask).
_REDACTION_ROOM = 64


def full_report_place(markdown: str, host: str, run_url: str | None) -> str:
    """Where a reader of a cut comment finds the whole report: the job summary (GitLab: the job
    log) when it holds all of it, else the JSON report, which is always whole."""
    run = f"[this run]({run_url})" if run_url else "this run"
    if summary_is_whole(markdown):
        return f"{'the job log' if host == 'GitLab' else 'the job summary'} of {run}"
    return f"the JSON report of {run} (its `report-json` output; the job summary was cut too)"


def comment_body(
    markdown: str, key: str, run_url: str | None = None, limit: int = MAX_BODY, host: str = "GitHub"
) -> str:
    """Marker, then the redacted report, cut to `limit` characters (between whole blocks and
    table rows, see limits.py) with a note saying what was cut and where the whole report is."""
    head = marker(key) + "\n"
    room = limit - len(head) - _REDACTION_ROOM
    return head + redact(fit_comment(markdown, room, host, full_report_place(markdown, host, run_url)))


def notice(message: str) -> None:
    """A ::notice:: annotation on Actions; a plain `notice:` line on stderr elsewhere."""
    message = redact(message)
    if github.in_actions():
        import github_action_utils as gha

        gha.notice(message, title=TITLE)
    else:
        sys.stderr.write(f"notice: {message}\n")


# -- the two hosts, behind one shape ---------------------------------------------------------


class Thread(Protocol):
    """The comments of one PR or MR on its code host, as the sticky comment needs them."""

    host: ClassVar[str]  # "GitHub", "GitLab"
    what: ClassVar[str]  # "PR comment", "MR note": how messages name the comment
    limit: ClassVar[int]  # the host's largest body
    needs: ClassVar[str]  # what the token needs, said when it is refused
    report_elsewhere: ClassVar[str]  # where the report is when no comment could be written

    @property
    def where(self) -> str: ...  # "PR #7", "MR !7"

    def comments(self) -> Iterator[tuple[int, str]]: ...  # (id, body), oldest first

    def create(self, body: str) -> int: ...

    def update(self, comment_id: int, body: str) -> None: ...


@dataclass(frozen=True)
class GitHubThread:
    client: GitHubClient
    number: int
    host: ClassVar[str] = "GitHub"
    what: ClassVar[str] = "PR comment"
    limit: ClassVar[int] = MAX_BODY
    needs: ClassVar[str] = "the token needs `pull-requests: write`; a fork PR's token is read-only"
    no_token: ClassVar[str] = "no GITHUB_TOKEN in the environment (pass the action's github-token input)"
    report_elsewhere: ClassVar[str] = "the job summary holds the report"

    @staticmethod
    def token() -> str:
        return os.environ.get("GITHUB_TOKEN", "")

    @classmethod
    def connect(cls, token: str, number: int) -> GitHubThread:
        """Bound to $GITHUB_API_URL and $GITHUB_REPOSITORY; GitHubAPIError (a HostedAPIError) when they are not valid."""
        return cls(GitHubClient(github_api.api_url_from_env(), github_api.repository_from_env(), token), number)

    @property
    def where(self) -> str:
        return f"PR #{self.number}"

    def comments(self) -> Iterator[tuple[int, str]]:
        return ((c.id, c.body) for c in self.client.issue_comments(self.number))

    def create(self, body: str) -> int:
        return self.client.create_comment(self.number, body)

    def update(self, comment_id: int, body: str) -> None:
        self.client.update_comment(comment_id, body)


@dataclass(frozen=True)
class GitLabThread:
    client: GitLabClient
    iid: int
    host: ClassVar[str] = "GitLab"
    what: ClassVar[str] = "MR note"
    limit: ClassVar[int] = gitlab_api.MAX_NOTE_BODY
    needs: ClassVar[str] = (
        "the token needs the `api` scope and at least the Reporter role; a fork's pipeline, "
        "or a protected variable in an unprotected branch's pipeline, has no token"
    )
    no_token: ClassVar[str] = (
        f"no {' or '.join(GITLAB_TOKEN_VARS)} in the environment (a project access token with the `api` scope; "
        "CI_JOB_TOKEN cannot write notes)"
    )
    report_elsewhere: ClassVar[str] = "the job log holds the report"

    @staticmethod
    def token() -> str:
        return gitlab_token()

    @classmethod
    def connect(cls, token: str, iid: int) -> GitLabThread:
        """Bound to $CI_API_V4_URL and $CI_PROJECT_ID; GitLabAPIError (a HostedAPIError) when they are not valid."""
        return cls(GitLabClient(gitlab_api.api_url_from_env(), gitlab_api.project_id_from_env(), token), iid)

    @property
    def where(self) -> str:
        return f"MR !{self.iid}"

    def comments(self) -> Iterator[tuple[int, str]]:
        return ((n.id, n.body) for n in self.client.notes(self.iid) if not n.system)

    def create(self, body: str) -> int:
        return self.client.create_note(self.iid, body)

    def update(self, comment_id: int, body: str) -> None:
        self.client.update_note(self.iid, comment_id, body)


def on_gitlab() -> bool:
    """A GitLab CI job (GitLab's runner sets GITLAB_CI=true)."""
    return os.environ.get("GITLAB_CI") == "true"


def gitlab_token() -> str:
    return next((os.environ[name] for name in GITLAB_TOKEN_VARS if os.environ.get(name)), "")


def _thread(pr: int) -> Thread | None:
    """The PR's or MR's comments on the host this job runs on; None (said) when there is no token
    or the environment names no valid API."""
    kind: type[GitHubThread] | type[GitLabThread] = GitLabThread if on_gitlab() else GitHubThread
    token = kind.token()
    if not token:
        _fall_back(kind.what, kind.report_elsewhere, kind.no_token)
        return None
    try:
        return kind.connect(token, pr)
    except HostedAPIError as error:
        github.warning(f"{kind.what} not written: {error}", title=TITLE)
        return None


# -- the shared find-or-create ---------------------------------------------------------------


def publish_pr_comment(markdown: str, pr: int | None, key: str, run_url: str | None = None) -> str | None:
    """Create or update the PR's (or MR's) sticky comment; returns what was done ('created
    (comment N)', 'updated (note N)'), or None when it was not written (said as a notice or
    warning). Never raises for the code host's sake."""
    if pr is None:
        if on_gitlab():
            github.warning("--comment: not a merge request (no $CI_MERGE_REQUEST_IID or --pr); no MR note written")
        else:
            github.warning("--comment: not a pull request (no PR number in $GITHUB_REF or --pr); no comment written")
        return None
    thread = _thread(pr)
    if thread is None:
        return None
    body = comment_body(markdown, key, run_url, thread.limit, thread.host)
    action = _write(thread, key, body)
    if action:
        sys.stderr.write(f"{thread.what} on {thread.where}: {action}\n")
    return action


def _upsert(thread: Thread, key: str, body: str) -> str:
    """Update the first comment that starts with this project's marker, else create one."""
    start = marker(key)
    noun = thread.what.split()[-1]  # "comment", "note"
    for comment_id, text in thread.comments():
        if text.startswith(start):
            thread.update(comment_id, body)
            return f"updated ({noun} {comment_id})"
    return f"created ({noun} {thread.create(body)})"


def _write(thread: Thread, key: str, body: str) -> str | None:
    """The find-or-create, retried as a whole: a create whose answer was lost is found next time."""
    attempts, wait = retry_attempts(), retry_wait_seconds()
    for attempt in range(1, attempts + 1):
        try:
            return _upsert(thread, key, body)
        except HostedAPIError as error:
            if error.forbidden:
                _fall_back(thread.what, thread.report_elsewhere, f"{error} ({thread.needs})")
                return None
            if not error.transient or attempt == attempts:
                github.warning(f"{thread.what} not written after {attempt} attempt(s): {error}", title=TITLE)
                return None
            sys.stderr.write(f"{thread.what}: {redact(str(error))}; retrying ({attempt}/{attempts})\n")
            time.sleep(wait * 2 ** (attempt - 1))
    return None


def _fall_back(what: str, report_elsewhere: str, reason: str) -> None:
    notice(f"the {what} could not be written: {reason}; {report_elsewhere}")
    if not on_gitlab():
        github.write_summary(f"\n> ℹ️ The {what} could not be written: {reason}.\n")
