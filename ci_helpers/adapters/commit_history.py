"""What a clone's history says about a commit, read only and offline: its message, and the commit
that brought it into a branch (itself when it is on the branch's first-parent line, else the
merge commit on that line)."""

from __future__ import annotations

from pathlib import Path

from .git import git
from .runner import CommandError


def holds_commit(repo: Path, commit: str) -> bool:
    try:
        git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
        return True
    except CommandError:
        return False


def full_commit(repo: Path, commit: str) -> str | None:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}").strip() or None
    except CommandError:
        return None


def commit_message(repo: Path, commit: str) -> str | None:
    try:
        return git(repo, "log", "-1", "--format=%B", commit)
    except CommandError:
        return None


def branch_ref(repo: Path, branch: str | None) -> str | None:
    """The clone's ref for `branch`: origin's copy first (what was merged there), else the local
    branch; None when the clone has neither."""
    for ref in (f"refs/remotes/origin/{branch}", f"refs/heads/{branch}") if branch else ():
        if full_commit(repo, ref):
            return ref
    return None


def bringing_commit(repo: Path, commit: str, branch_tip: str) -> str | None:
    """The commit on `branch_tip`'s first-parent line that brought `commit` in: `commit` itself
    when it lies on that line, else the oldest first-parent descendant of it (the merge commit);
    None when `commit` is not in that history."""
    try:
        line = git(repo, "rev-list", "--first-parent", branch_tip).split()
        if commit in line:
            return commit
        descendants = git(repo, "rev-list", "--first-parent", "--ancestry-path", f"{commit}..{branch_tip}").split()
    except CommandError:
        return None
    return descendants[-1] if descendants else None
