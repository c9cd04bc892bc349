"""Git through the shared runner. Paths given to these functions are as git names them from `cwd`."""

from __future__ import annotations

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


def branch_name(ref: str) -> str:
    """`main` for every spelling of a branch: `main`, `origin/main`, `refs/heads/main`,
    `refs/remotes/origin/main`."""
    for prefix in ("refs/heads/", "refs/remotes/origin/", "origin/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def resolve_ref(repo: Path, ref: str) -> str:
    """Resolve `ref` to a commit, fetching it from origin when the checkout lacks it.

    Shallow, single-branch and PR-merge checkouts (actions/checkout's default) lack the base
    branch: every spelling of it is tried locally, then fetched from origin (depth 1).
    """
    branch = branch_name(ref)
    for candidate in dict.fromkeys((ref, f"origin/{branch}", branch)):
        if _ref_exists(repo, candidate):
            return git(repo, "rev-parse", f"{candidate}^{{commit}}").strip()
    url = remote_url(repo)
    if url:
        endpoint = f"git remote origin ({url})"
        attempts = [
            f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
            f"+refs/tags/{branch}:refs/tags/{branch}",
            ref,
        ]
        for refspec in attempts:
            try:
                git(repo, "fetch", "--no-tags", "--depth=1", "origin", refspec, retry=True, endpoint=endpoint)
            except CommandError:
                continue
            target = refspec.rpartition(":")[2] if ":" in refspec else "FETCH_HEAD"
            if _ref_exists(repo, target):
                return git(repo, "rev-parse", f"{target}^{{commit}}").strip()
    where = "in this checkout or on origin" if url else "in this checkout (it has no origin remote to fetch from)"
    raise ConfigError(
        f"baseline ref '{ref}' is not a branch, tag or commit {where}; pass an existing one to --baseline-ref "
        "(e.g. the PR's base branch, main)"
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
