"""Git through the shared runner. Paths given to these functions are as git names them from `cwd`."""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import ConfigError
from .runner import CommandError, run


def git(
    repo: Path, *args: str, retry: bool = False, endpoint: str | None = None, env: dict[str, str] | None = None
) -> str:
    return run(["git", *args], cwd=repo, env=env, retry=retry, endpoint=endpoint).stdout


def require_git_repo(repo: Path) -> Path:
    """The work tree's top level; ConfigError when `repo` is not inside a git work tree."""
    if not repo.is_dir():
        raise ConfigError(f"--repo {repo} does not exist; pass the path of your project's git checkout")
    try:
        return Path(git(repo, "rev-parse", "--show-toplevel").strip())
    except CommandError:
        raise ConfigError(
            f"{repo} is not a git repository; run inside your project's checkout or pass --repo"
        ) from None


def head_commit(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def current_branch(repo: Path) -> str | None:
    """The branch name, or None on a detached HEAD."""
    name = git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return None if name == "HEAD" else name


def config_value(repo: Path, key: str) -> str | None:
    try:
        return git(repo, "config", key).strip() or None
    except CommandError:
        return None


def remote_url(repo: Path, name: str = "origin") -> str | None:
    try:
        return git(repo, "remote", "get-url", name).strip()
    except CommandError:
        return None


def _ref_exists(repo: Path, ref: str) -> bool:
    try:
        git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return True
    except CommandError:
        return False


def resolve_ref(repo: Path, ref: str) -> str:
    """Resolve `ref` to a commit, fetching it from origin when the checkout lacks it.

    Shallow and single-branch checkouts (actions/checkout's default) do not have the base
    branch, so `main` is also tried as `origin/main` and fetched when absent.
    """
    for candidate in (ref, f"origin/{ref}"):
        if _ref_exists(repo, candidate):
            return git(repo, "rev-parse", f"{candidate}^{{commit}}").strip()
    url = remote_url(repo)
    if url:
        with contextlib.suppress(CommandError):
            git(
                repo,
                "fetch",
                "--no-tags",
                "--depth=1",
                "origin",
                f"+{ref}:refs/remotes/origin/{ref}",
                retry=True,
                endpoint=f"git remote origin ({url})",
            )
        if _ref_exists(repo, f"origin/{ref}"):
            return git(repo, "rev-parse", f"origin/{ref}^{{commit}}").strip()
    raise ConfigError(
        f"baseline ref '{ref}' does not exist locally or on origin; pass an existing branch, tag or commit to --baseline-ref"
    )


def read_file_at(repo: Path, commit: str, path: str) -> str | None:
    """The content of `path` (relative to `repo`, the working directory) at `commit`, or None."""
    try:
        return git(repo, "show", f"{commit}:./{path}")
    except CommandError:
        return None


def changed_paths(git_root: Path, paths: list[str]) -> list[str]:
    """Which of `paths` (relative to the git root) differ from HEAD, modified or new."""
    existing = [p for p in paths if (git_root / p).exists()]
    if not existing:
        return []
    out = git(git_root, "status", "--porcelain", "--untracked-files=all", "--", *existing)
    return [line[3:].strip() for line in out.splitlines() if line.strip()]


def files_changed_between(git_root: Path, old: str, new: str) -> list[str]:
    """Paths (relative to the git root) that differ between two commits."""
    return git(git_root, "diff", "--name-only", old, new).split()
