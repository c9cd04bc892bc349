"""Git through the shared runner. Paths given to these functions are as git names them from `cwd`."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .auth import git_rejected
from .redact import redact
from .runner import CommandError, run

# Subcommands that name a remote as their first positional argument.
_NETWORK_SUBCOMMANDS = ("push", "fetch", "pull", "ls-remote")


def git(
    repo: Path, *args: str, retry: bool = False, endpoint: str | None = None, env: dict[str, str] | None = None
) -> str:
    """Run git in `repo`. retry=True marks a command that talks to a remote: transient failures are
    retried (then InfrastructureError, exit 3), and a remote that rejects the credentials (HTTP 403,
    "Authentication failed", "Permission denied (publickey)") raises ConfigError (exit 2) at once.
    Git never prompts for a password there: it would wait for ever on CI."""
    if not retry:
        return run(["git", *args], cwd=repo, env=env).stdout
    return run(
        ["git", *args],
        cwd=repo,
        env={"GIT_TERMINAL_PROMPT": "0", **(env or {})},
        retry=True,
        endpoint=endpoint,
        rejected=lambda reason: git_rejected(endpoint or _remote_named_in(repo, args), reason),
    ).stdout


def _remote_named_in(repo: Path, args: tuple[str, ...]) -> str:
    """ "git remote 'NAME' (URL)" for the remote a network command names, as well as it can be told."""
    subcommand = next((i for i, arg in enumerate(args) if arg in _NETWORK_SUBCOMMANDS), None)
    positional = [arg for arg in args[subcommand + 1 :] if not arg.startswith("-")] if subcommand is not None else []
    if not positional:
        return "the git remote"
    name = positional[0]
    url = remote_url(repo, name)
    return f"git remote '{name}' ({url})" if url else f"git remote {name}"


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


def has_commit(repo: Path, commit: str) -> bool:
    """Whether the checkout holds `commit` (a shallow one may not)."""
    try:
        git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
        return True
    except CommandError:
        return False


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


def first_parent(repo: Path) -> str | None:
    """HEAD's first parent, or None when the checkout lacks it (a shallow clone, a root commit)."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", "HEAD^1^{commit}").strip() or None
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


def remote_names(repo: Path) -> list[str]:
    return git(repo, "remote").split()


def check_branch_name(repo: Path, branch: str) -> None:
    """ConfigError (exit 2) unless `branch` is a valid branch name (`git check-ref-format --branch`)."""
    try:
        normalised = git(repo, "check-ref-format", "--branch", branch).strip()
    except CommandError:
        normalised = None
    if normalised != branch:  # invalid, or a shorthand such as @{-1} that names another branch
        raise ConfigError(f"invalid branch name {branch!r}; pass a valid git branch name to --branch (e.g. main)")


# What a push that the real push will rebase and retry is rejected with: fine for the dry run.
_BEHIND_MARKERS = ("(non-fast-forward)", "(fetch first)")


def check_push_allowed(git_root: Path, remote: str, branch: str | None) -> None:
    """Preflight, read-only: `git push --dry-run REMOTE HEAD:refs/heads/BRANCH` succeeds.

    ConfigError (exit 2) when the remote is not configured, the branch name is invalid, the remote
    rejects the credentials, or it refuses the push for another reason than being ahead of HEAD (a
    non-fast-forward is fine: the real push rebases). InfrastructureError (exit 3) when the remote
    stays unreachable after retries. branch=None (tag mode): the push of a new tag is tried instead.
    """
    known = remote_names(git_root)
    if remote not in known:
        names = ", ".join(known) or "none"
        raise ConfigError(
            f"git remote '{remote}' is not configured (known: {names}); pass an existing one to --git-remote"
        )
    if branch is not None:
        check_branch_name(git_root, branch)
    url = remote_url(git_root, remote) or "?"
    endpoint = f"git remote '{remote}' ({url})"
    target = f"refs/heads/{branch}" if branch is not None else "refs/tags/mlops/lock/preflight-dry-run"
    try:
        git(git_root, "push", "--dry-run", "--no-verify", remote, f"HEAD:{target}", retry=True, endpoint=endpoint)
    except CommandError as error:
        if "[rejected]" in error.output and any(marker in error.output for marker in _BEHIND_MARKERS):
            return
        lines = [line.strip() for line in error.output.strip().splitlines() if line.strip()]
        why = lines[-1] if lines else f"git exited {error.returncode}"
        what = f"a push to {branch}" if branch is not None else "a tag push"
        raise ConfigError(
            redact(
                f"{endpoint} will not take {what}: {why[:300]}; check the remote and the branch (`git push --dry-run`)"
            )
        ) from None
