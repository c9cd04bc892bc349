"""Commit the CI build's dvc.lock back to the branch safely: never force, never lose a commit,
never put an older build's lock on top of newer pipeline code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import git as gitops
from .errors import ConfigError, InfrastructureError
from .runner import CommandError, run

LOCK_MODES = ("commit", "tag", "none")
_REJECTED_RACE = ("non-fast-forward", "fetch first", "[rejected]", "stale info", "cannot lock ref")


@dataclass(frozen=True)
class GitIdentity:
    name: str
    email: str


@dataclass(frozen=True)
class LockCommitResult:
    mode: str
    status: str  # committed | tagged | unchanged | superseded | skipped
    commit: str | None  # the commit holding this build's dvc.lock
    tag: str | None = None
    attempts: int = 0
    detail: str = ""


def commit_message(built_commit: str) -> str:
    return f"Update dvc.lock from the CI build of {built_commit[:12]} [skip ci]"


def _git(repo: Path, *args: str, identity: GitIdentity | None = None, endpoint: str | None = None) -> str:
    # Author and committer both: the environment would override `-c user.name`.
    env = {
        "GIT_AUTHOR_NAME": identity.name, "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name, "GIT_COMMITTER_EMAIL": identity.email,
    } if identity else None
    return run(["git", *args], cwd=repo, env=env, retry=endpoint is not None, endpoint=endpoint).stdout


def changed_paths(repo: Path, paths: list[str]) -> list[str]:
    """Which of `paths` differ from HEAD (modified or new)."""
    existing = [p for p in paths if (repo / p).exists()]
    if not existing:
        return []
    out = _git(repo, "status", "--porcelain", "--untracked-files=all", "--", *existing)
    return [line[3:].strip() for line in out.splitlines() if line.strip()]


def _touches(changed: list[str], inputs: set[str]) -> list[str]:
    hits = []
    for path in changed:
        for item in inputs:
            item = item.rstrip("/")
            if path == item or path.startswith(item + "/") or path == f"{item}.dvc" or path.endswith(".dvc"):
                hits.append(path)
                break
    return hits


def _push_branch(repo: Path, remote: str, branch: str, endpoint: str) -> str | None:
    """Push HEAD to the branch without force; None on success, the rejection text on a race."""
    try:
        _git(repo, "push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", endpoint=endpoint)
        return None
    except CommandError as error:
        text = error.output.lower()
        if any(marker in text for marker in _REJECTED_RACE) and "hook declined" not in text:
            return error.output
        raise InfrastructureError(
            f"git remote '{remote}' ({endpoint}) refused the push of {branch}: {error.output.strip()[-500:]}",
            endpoint=endpoint,
        ) from None


def commit_lock_file(
    repo: Path,
    *,
    built_commit: str,
    branch: str | None,
    remote: str,
    paths: list[str],
    identity: GitIdentity | None,
    mode: str,
    pipeline_inputs: set[str],
    max_attempts: int = 5,
) -> LockCommitResult:
    if mode == "none":
        return LockCommitResult(mode, "skipped", None, detail="--lock-mode none")
    changed = changed_paths(repo, paths)
    if not changed:
        return LockCommitResult(mode, "unchanged", built_commit, detail="the build reproduced the committed dvc.lock")
    assert identity is not None
    url = gitops.remote_url(repo, remote)
    if url is None:
        raise ConfigError(f"git remote '{remote}' is not configured; pass an existing one to --git-remote")
    endpoint = f"git remote '{remote}' ({url})"
    _git(repo, "add", "--", *changed)
    _git(repo, "commit", "-q", "-m", commit_message(built_commit), "--", *changed, identity=identity)
    lock_commit = gitops.head_commit(repo)
    if mode == "tag":
        tag = f"mlops/lock/{built_commit[:12]}"
        _git(repo, "tag", "-f", tag, lock_commit)
        try:
            _git(repo, "push", remote, f"refs/tags/{tag}", endpoint=endpoint)
        except CommandError as error:
            raise InfrastructureError(
                f"{endpoint} refused tag {tag}: {error.output.strip()[-500:]}", endpoint=endpoint
            ) from None
        return LockCommitResult(mode, "tagged", lock_commit, tag, 1)
    if not branch:
        raise ConfigError("no branch to commit dvc.lock to (detached HEAD); pass --branch or --lock-mode tag|none")
    for attempt in range(1, max_attempts + 1):
        rejection = _push_branch(repo, remote, branch, endpoint)
        if rejection is None:
            return LockCommitResult(mode, "committed", gitops.head_commit(repo), None, attempt)
        _git(repo, "fetch", "-q", remote, f"refs/heads/{branch}", endpoint=endpoint)
        tip = _git(repo, "rev-parse", "FETCH_HEAD").strip()
        moved = _git(repo, "diff", "--name-only", built_commit, tip).split()
        newer_pipeline = _touches(moved, pipeline_inputs)
        if newer_pipeline:
            _git(repo, "reset", "-q", "--hard", built_commit)
            return LockCommitResult(
                mode, "superseded", None, None, attempt,
                f"{branch} moved past {built_commit[:12]} with pipeline changes ({', '.join(newer_pipeline[:5])}); "
                "the newer commit's build owns dvc.lock",
            )
        # Only unrelated commits (or other builds' lock commits) landed: replay ours on top.
        try:
            _git(repo, "rebase", "-q", "-X", "theirs", tip, identity=identity)
        except CommandError as error:
            _git(repo, "rebase", "--abort")
            raise InfrastructureError(
                f"could not rebase the dvc.lock commit onto {branch}: {error}", endpoint=endpoint
            ) from None
    raise InfrastructureError(
        f"{endpoint}: {branch} kept moving; dvc.lock not pushed after {max_attempts} attempts", endpoint=endpoint
    )
