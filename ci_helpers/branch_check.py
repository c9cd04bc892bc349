"""Preflight of master-build: the branch it builds and commits to is real, and holds the commit.

A typo (`--branch mian`) must not push a new branch holding the lock commit while main's dvc.lock
stays stale; a build of a commit that is not on the branch must not commit its lock there.
"""

from __future__ import annotations

from pathlib import Path

from .adapters import git
from .adapters.runner import CommandError
from .errors import ConfigError


def remote_branches(git_root: Path, remote: str, endpoint: str) -> dict[str, str]:
    """branch -> tip commit, as the remote has them now (read-only)."""
    listed = git.git(git_root, "ls-remote", "--heads", remote, retry=True, endpoint=endpoint)
    tips = {}
    for line in listed.splitlines():
        commit, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            tips[ref.removeprefix("refs/heads/")] = commit
    return tips


def _merge_base_says(git_root: Path, old: str, new: str) -> bool:
    try:
        git.git(git_root, "merge-base", "--is-ancestor", old, new)
        return True
    except CommandError as error:
        if error.returncode == 1:
            return False
        raise


def _is_ancestor(git_root: Path, remote: str, endpoint: str, old: str, new: str, ref: str) -> bool:
    """Whether `old` is in `new`'s history (`new`: the tip of `ref` on the remote). Fetches the ref
    (servers need not serve an object by its id), and deepens a shallow checkout (where git cannot
    see past the cut) before it answers no."""
    if not git.has_commit(git_root, new):
        git.git(git_root, "fetch", "-q", remote, ref, retry=True, endpoint=endpoint)
    if _merge_base_says(git_root, old, new):
        return True
    if git.git(git_root, "rev-parse", "--is-shallow-repository").strip() != "true":
        return False
    git.git(git_root, "fetch", "-q", "--unshallow", remote, ref, retry=True, endpoint=endpoint)
    return _merge_base_says(git_root, old, new)


def check_head_on_branch(git_root: Path, remote: str, branch: str) -> str:
    """ConfigError (exit 2) unless `branch` exists on `remote` and HEAD is its tip or an ancestor
    of it. Returns the branch's tip."""
    url = git.remote_url(git_root, remote) or "?"
    endpoint = f"git remote '{remote}' ({url})"
    tips = remote_branches(git_root, remote, endpoint)
    if branch not in tips:
        known = ", ".join(sorted(tips)[:10]) or "none"
        raise ConfigError(
            f"branch '{branch}' does not exist on {endpoint} (it has: {known}); pass the branch this commit "
            "was merged into to --branch (master-build never creates a branch)"
        )
    head, tip = git.head_commit(git_root), tips[branch]
    if head != tip and not _is_ancestor(git_root, remote, endpoint, head, tip, f"refs/heads/{branch}"):
        raise ConfigError(
            f"HEAD {head[:12]} is not on '{branch}' of {endpoint} (its tip is {tip[:12]}); build a commit of "
            f"'{branch}', or pass the branch that holds it to --branch"
        )
    return tip
