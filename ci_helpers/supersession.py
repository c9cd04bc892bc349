"""Is this build of an older commit than what the branch's dvc.lock or the alias already reflect?
Then it commits nothing and moves nothing: one truth on the branch.

What the branch's lock reflects is read from its first-parent history after the built commit C:
a commit there that changed a lock file or a pipeline input means a newer commit owns the lock,
except a CI lock commit built from C or an ancestor of C (the build replays its own lock over it).
What the alias reflects is its holder's `mlops.git_commit`: a strict descendant of C owns it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .adapters import git
from .adapters.runner import CommandError

# The trailer CI lock commits carry, machine-readable: which commit's build the lock comes from.
BUILT_FROM_TRAILER = "Mlops-Built-From"
_TRAILER = re.compile(rf"^{BUILT_FROM_TRAILER}: ([0-9a-f]{{40}})\s*$", re.MULTILINE)
# Lock commits made before the trailer existed name the commit in their subject only.
_LEGACY_SUBJECT = re.compile(r"\AUpdate dvc\.lock from the CI build of ([0-9a-f]{12}) \[skip ci\]")


@dataclass(frozen=True)
class Supersession:
    by: str  # the newer commit that owns the lock or the alias
    reason: str

    @property
    def line(self) -> str:
        return f"superseded by {self.by[:12]}: {self.reason}"


@dataclass(frozen=True)
class BranchCommit:
    sha: str
    message: str
    paths: tuple[str, ...]  # changed against its first parent


def built_from(message: str) -> str | None:
    """The commit a CI lock commit was built from (40 hex, or 12 for the legacy subject); None for
    any other commit."""
    trailer = _TRAILER.search(message)
    if trailer:
        return trailer.group(1)
    legacy = _LEGACY_SUBJECT.match(message)
    return legacy.group(1) if legacy else None


def touches(paths: Iterable[str], inputs: Iterable[str]) -> list[str]:
    """The paths among `paths` that are pipeline inputs or under one (the project's own `.dvc`
    files are among its inputs; another project's in the same repository are not)."""
    items = [raw.rstrip("/") for raw in inputs]
    return [path for path in paths if any(path == item or path.startswith(item + "/") for item in items)]


def newer_on_branch(
    commits: list[BranchCommit],
    built: str,
    branch: str,
    lock_paths: Iterable[str],
    pipeline_inputs: Iterable[str],
    is_ancestor: Callable[[str, str], bool],
) -> Supersession | None:
    """The newest commit after `built` (commits: newest first) that owns the branch's dvc.lock."""
    locks, inputs = set(lock_paths), list(pipeline_inputs)
    for commit in commits:
        source = built_from(commit.message)
        # a CI lock commit of another project of the repository (a monorepo) owns nothing here
        if source and any(path in locks for path in commit.paths):
            if is_ancestor(source, built):
                continue  # this build's own lock commit, or an older build's: replayed over
            return Supersession(source, f"{branch}'s dvc.lock comes from the CI build of {source[:12]}")
        changed_lock = [path for path in commit.paths if path in locks]
        if changed_lock:
            return Supersession(commit.sha, f"{commit.sha[:12]} on {branch} changed {', '.join(changed_lock[:5])}")
        changed_inputs = touches(commit.paths, inputs)
        if changed_inputs:
            return Supersession(
                commit.sha,
                f"{commit.sha[:12]} on {branch} changed pipeline inputs ({', '.join(changed_inputs[:5])}); "
                "its build owns dvc.lock",
            )
    return None


def alias_newer(
    alias: str, holder: tuple[str, str | None] | None, built: str, is_ancestor: Callable[[str, str], bool]
) -> Supersession | None:
    """The alias holder (version, commit) when it was built from a strict descendant of `built`."""
    version, commit = holder or ("", None)
    if not commit or commit == built or not is_ancestor(built, commit):
        return None
    return Supersession(commit, f"the alias '{alias}' is on v{version}, built from {commit[:12]}")


def alias_diverged(
    alias: str, holder: tuple[str, str | None] | None, built: str, is_ancestor: Callable[[str, str], bool]
) -> str | None:
    """Why the alias cannot follow this build: its holder was built from a commit that is neither
    in `built`'s history nor after it (another branch, a rewritten history). None otherwise."""
    version, commit = holder or ("", None)
    if not commit or commit == built or is_ancestor(commit, built) or is_ancestor(built, commit):
        return None
    return (
        f"the alias '{alias}' is on v{version}, built from {commit[:12]}, which is neither in this commit's "
        "history nor after it (another branch, or a rewritten history): moving it here would leave the alias "
        "and the branch's dvc.lock naming different builds; point the alias at a version of this branch "
        "(`ci-helpers rollback` or `register-model`), or pass another --alias"
    )


_RECORD, _FIELD = "\x1e", "\x1f"


def _parse_log(text: str) -> list[BranchCommit]:
    commits = []
    for record in text.split(_RECORD)[1:]:
        sha, message, names = record.split(_FIELD, 2)
        commits.append(BranchCommit(sha.strip(), message.strip(), tuple(names.split())))
    return commits


def branch_commits_after(git_root: Path, built: str, tip: str) -> list[BranchCommit]:
    """The branch's first-parent commits after `built` up to `tip`, newest first, with the paths
    each changed (a merge: against its first parent)."""
    text = git.git(
        git_root,
        "log",
        "-m",
        "--first-parent",
        "--no-renames",
        f"--format={_RECORD}%H{_FIELD}%B{_FIELD}",
        "--name-only",
        f"{built}..{tip}",
    )
    return [_resolved(git_root, commit) for commit in _parse_log(text)]


def _resolved(git_root: Path, commit: BranchCommit) -> BranchCommit:
    """A legacy lock commit names 12 hex: its full id. One the history lacks counts as a plain
    commit of the lock (a newer owner: the safe side)."""
    source = built_from(commit.message)
    if not source or len(source) == 40:
        return commit
    try:
        full = git.git(git_root, "rev-parse", "--verify", "--quiet", f"{source}^{{commit}}").strip()
    except CommandError:
        return BranchCommit(commit.sha, "", commit.paths)
    return BranchCommit(commit.sha, f"{commit.message}\n\n{BUILT_FROM_TRAILER}: {full}", commit.paths)


def fetch_branch_tip(git_root: Path, remote: str, branch: str, endpoint: str) -> str | None:
    """The branch's tip on the remote, fetched; None when the remote has no such branch yet."""
    if not git.git(git_root, "ls-remote", remote, f"refs/heads/{branch}", retry=True, endpoint=endpoint).strip():
        return None
    git.git(git_root, "fetch", "-q", remote, f"refs/heads/{branch}", retry=True, endpoint=endpoint)
    return git.git(git_root, "rev-parse", "FETCH_HEAD").strip()


def branch_supersedes(
    git_root: Path,
    *,
    built: str,
    branch: str,
    tip: str | None,
    lock_paths: Iterable[str],
    pipeline_inputs: Iterable[str],
    is_ancestor: Callable[[str, str], bool],
) -> Supersession | None:
    """Whether the branch at `tip` reflects a newer commit than `built` (None: nothing newer)."""
    if tip is None or tip == built:
        return None
    # Asked first: it completes a shallow checkout's history, which the log below reads.
    if not is_ancestor(built, tip):
        return Supersession(tip, f"{built[:12]} is not in {branch}'s history any more ({branch} is at {tip[:12]})")
    commits = branch_commits_after(git_root, built, tip)
    return newer_on_branch(commits, built, branch, lock_paths, pipeline_inputs, is_ancestor)
