"""Commit the CI build's dvc.lock back to the branch safely: never force, never lose a commit,
never put an older build's lock on top of newer pipeline code.

Every path here is relative to the git root, so a DVC project in a subdirectory of a monorepo
commits `ml/dvc.lock`, wherever the command was started from.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .adapters import git, github
from .adapters.runner import CommandError
from .commit_order import ancestry
from .errors import ConfigError, InfrastructureError
from .supersession import BUILT_FROM_TRAILER, Supersession, branch_supersedes, fetch_branch_tip

LOCK_MODES = ("commit", "tag", "none")
_REJECTED_RACE = ("non-fast-forward", "fetch first", "[rejected]", "stale info", "cannot lock ref")


@dataclass(frozen=True)
class GitIdentity:
    name: str
    email: str


GITHUB_ACTIONS_BOT = GitIdentity("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


@dataclass(frozen=True)
class LockCommitResult:
    mode: str
    status: str  # committed | tagged | unchanged | superseded | skipped
    commit: str | None  # the commit holding this build's dvc.lock
    tag: str | None = None
    attempts: int = 0
    detail: str = ""
    superseded_by: str | None = None  # the newer commit that owns the lock (status superseded)


def resolve_identity(repo: Path, name: str | None, email: str | None) -> GitIdentity:
    """--git-user-name/email, else git's own config or GIT_COMMITTER_*, else the Actions bot on Actions."""
    name = name or os.environ.get("GIT_COMMITTER_NAME") or git.config_value(repo, "user.name")
    email = email or os.environ.get("GIT_COMMITTER_EMAIL") or git.config_value(repo, "user.email")
    if name and email:
        return GitIdentity(name, email)
    if github.in_actions():
        return GITHUB_ACTIONS_BOT
    raise ConfigError(
        "no git identity to commit dvc.lock with; pass --git-user-name and --git-user-email (or set git config user.name/user.email)"
    )


def commit_message(built_commit: str) -> str:
    """The human subject, and a trailer that later builds read to tell whose lock this is."""
    return (
        f"Update dvc.lock from the CI build of {built_commit[:12]} [skip ci]\n\n{BUILT_FROM_TRAILER}: {built_commit}\n"
    )


def _identity_env(identity: GitIdentity) -> dict[str, str]:
    # Author and committer both: the environment would override `-c user.name`.
    return {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }


def _push_branch(git_root: Path, remote: str, branch: str, endpoint: str) -> str | None:
    """Push HEAD to the branch without force; None on success, the rejection text on a race."""
    try:
        git.git(git_root, "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", retry=True, endpoint=endpoint)
        return None
    except CommandError as error:
        text = error.output.lower()
        if any(marker in text for marker in _REJECTED_RACE) and "hook declined" not in text:
            return error.output
        raise InfrastructureError(
            f"git remote '{remote}' ({endpoint}) refused the push of {branch}: {error.output.strip()[-500:]}",
            endpoint=endpoint,
        ) from None


def lock_tag(built_commit: str) -> str:
    return f"mlops/lock/{built_commit[:12]}"


def _remote_tag_commit(git_root: Path, remote: str, tag: str, endpoint: str) -> str | None:
    listed = git.git(git_root, "ls-remote", remote, f"refs/tags/{tag}", retry=True, endpoint=endpoint).split()
    return listed[0] if listed else None


def _push_lock_tag(git_root: Path, remote: str, built_commit: str, endpoint: str) -> LockCommitResult:
    """Tag the lock commit and push the tag. A re-run finds the tag an earlier build of the same
    commit pushed (after its outputs were pushed) and keeps it: tags are never moved."""
    tag, lock_commit = lock_tag(built_commit), git.head_commit(git_root)
    existing = _remote_tag_commit(git_root, remote, tag, endpoint)
    if existing:
        return LockCommitResult(
            "tag", "tagged", existing, tag, 0, "the tag exists: an earlier build of this commit pushed it; kept"
        )
    git.git(git_root, "tag", "-f", tag, lock_commit)
    try:
        git.git(git_root, "push", remote, f"refs/tags/{tag}", retry=True, endpoint=endpoint)
    except CommandError as error:
        raise InfrastructureError(
            f"{endpoint} refused tag {tag}: {error.output.strip()[-500:]}", endpoint=endpoint
        ) from None
    return LockCommitResult("tag", "tagged", lock_commit, tag, 1)


def commit_lock_file(
    git_root: Path,
    *,
    built_commit: str,
    branch: str | None,
    remote: str,
    paths: list[str],
    identity: GitIdentity | None,
    mode: str,
    pipeline_inputs: frozenset[str] | set[str],
    also_superseded: Callable[[], Supersession | None] | None = None,
    max_attempts: int = 5,
) -> LockCommitResult:
    """Commit `paths` (git-root relative: the lock files and git-tracked outputs) and push them.

    In commit mode the branch is read before the commit and after every rejected push: when it
    already reflects a newer commit (see supersession.py), or `also_superseded` (the alias) says
    so, nothing is committed and the result is "superseded".
    """
    if mode == "none":
        return LockCommitResult(mode, "skipped", None, detail="--lock-mode none")
    if mode == "commit" and not branch:
        raise ConfigError("no branch to commit dvc.lock to (detached HEAD); pass --branch or --lock-mode tag|none")
    url = git.remote_url(git_root, remote)
    if url is None and mode == "commit":
        raise ConfigError(f"git remote '{remote}' is not configured; pass an existing one to --git-remote")
    endpoint = f"git remote '{remote}' ({url})"
    is_ancestor = ancestry(git_root, remote)

    def superseded(tip: str | None) -> Supersession | None:
        assert branch
        found = branch_supersedes(
            git_root,
            built=built_commit,
            branch=branch,
            tip=tip,
            lock_paths=paths,
            pipeline_inputs=pipeline_inputs,
            is_ancestor=is_ancestor,
        )
        return found or (also_superseded() if also_superseded else None)

    def stop(verdict: Supersession, attempt: int) -> LockCommitResult:
        return LockCommitResult(mode, "superseded", None, None, attempt, verdict.line, verdict.by)

    if mode == "commit":
        assert branch
        verdict = superseded(fetch_branch_tip(git_root, remote, branch, endpoint))
        if verdict:
            return stop(verdict, 0)
    changed = git.changed_paths(git_root, paths)
    if not changed:
        return LockCommitResult(mode, "unchanged", built_commit, detail="the build reproduced the committed dvc.lock")
    assert identity is not None
    if url is None:
        raise ConfigError(f"git remote '{remote}' is not configured; pass an existing one to --git-remote")
    env = _identity_env(identity)
    git.git(git_root, "add", "--", *changed)
    git.git(git_root, "commit", "-q", "-m", commit_message(built_commit), "--", *changed, env=env)
    if mode == "tag":
        return _push_lock_tag(git_root, remote, built_commit, endpoint)
    assert branch
    for attempt in range(1, max_attempts + 1):
        rejection = _push_branch(git_root, remote, branch, endpoint)
        if rejection is None:
            return LockCommitResult(mode, "committed", git.head_commit(git_root), None, attempt)
        tip = fetch_branch_tip(git_root, remote, branch, endpoint)
        verdict = superseded(tip)
        if verdict:
            git.git(git_root, "reset", "-q", "--hard", built_commit)
            return stop(verdict, attempt)
        # Only unrelated commits (or lock commits of this or older builds) landed: replay ours on top.
        try:
            git.git(git_root, "rebase", "-q", "-X", "theirs", tip or built_commit, env=env)
        except CommandError as error:
            git.git(git_root, "rebase", "--abort")
            raise InfrastructureError(
                f"could not rebase the dvc.lock commit onto {branch}: {error}", endpoint=endpoint
            ) from None
    raise InfrastructureError(
        f"{endpoint}: {branch} kept moving; dvc.lock not pushed after {max_attempts} attempts", endpoint=endpoint
    )
