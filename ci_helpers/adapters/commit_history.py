"""What a clone's history says about a commit, read only and offline: its message, and the commit
that brought it into a branch (itself when it is on the branch's first-parent line, else the
merge commit on that line).

A branch's history is read in ONE `git log` pass (each commit's parents and message) and resolved
in memory: asking git once per commit costs a walk of the whole history each time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .git import git
from .runner import CommandError

_RECORD, _FIELD = "\x1e", "\x1f"


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


@dataclass(frozen=True)
class BranchHistory:
    """Every commit reachable from a branch tip: its message, and the commit on the tip's
    first-parent line that brought it in (the oldest one whose history holds it)."""

    brought_by: dict[str, str]
    messages: dict[str, str]


def read_branch_history(repo: Path, tip: str) -> BranchHistory:
    """One `git log` of `tip`, resolved in memory."""
    text = git(repo, "log", f"--format={_RECORD}%H{_FIELD}%P{_FIELD}%B", tip)
    parents: dict[str, list[str]] = {}
    messages: dict[str, str] = {}
    for record in text.split(_RECORD)[1:]:
        sha, parent_list, message = record.split(_FIELD, 2)
        parents[sha] = parent_list.split()
        messages[sha] = message.strip()
    line = []  # the first-parent line, from the tip (git log shows the tip first)
    at = next(iter(parents), None)
    while at is not None:
        line.append(at)
        at = parents[at][0] if parents.get(at) else None
    brought_by: dict[str, str] = {}
    for commit in reversed(line):  # oldest first: what an older one holds is already taken
        brought_by[commit] = commit
        todo = list(parents[commit][1:])
        while todo:
            other = todo.pop()
            if other not in brought_by and other in parents:
                brought_by[other] = commit
                todo += parents[other]
    return BranchHistory(brought_by, messages)
