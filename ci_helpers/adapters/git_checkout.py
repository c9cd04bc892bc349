"""Pin a commit of a remote git repository, and work in a fresh checkout of it that removes itself.

For workers that share no disk (Airflow's Celery or Kubernetes executors, hosted Airflow): the
first task pins the commit at the branch's tip (`pin_commit`: one `git ls-remote`, no clone); every
task then clones that commit into a temporary directory of its own (`fresh_checkout`), which is
removed when the task's block ends, failed or not.

Credentials (`GitCredentials`: from an Airflow Connection, or none for the worker's own credential
helper, ssh agent or GIT_ASKPASS) reach every git process through the environment, for the block's
duration only (`git_credentials_in_env`): a token through a private askpass script that reads it
from an environment variable, an SSH key through a 0600 file in a private folder. Never argv (ps
shows it), never .git/config, never a message (the token's variable is one `redact` masks).

Every network git command is bounded by a timeout (`timeout=`, else CI_HELPERS_GIT_TIMEOUT, else
300 s), so a remote that hangs cannot hold a worker for ever. Nothing here retries: a retried
failure (InfrastructureError) is retried by Airflow under the task's `retries`.

What fails, and how (one line each, naming the problem and the fix):

| case                                              | raised                                   |
| ------------------------------------------------- | ---------------------------------------- |
| repo URL with user:password@, empty, or "-..."    | ConfigError (RepoSource(...))            |
| subdir absolute or with "..", empty branch        | ConfigError (RepoSource(...))            |
| invalid branch name                               | ConfigError (pin_commit)                 |
| repo unreachable (refused, no such host, ...)     | ConfigError at pin_commit (the first     |
|                                                   | task: the URL is wrong, never retried);  |
|                                                   | InfrastructureError at fresh_checkout    |
|                                                   | (the URL answered when the run pinned    |
|                                                   | its commit: an outage, retried)          |
| no repository at the URL (404, "not found")       | ConfigError                              |
| credentials rejected or missing (401/403, ssh     | ConfigError (never retried; the secret   |
| "Permission denied (publickey)")                  | is in no message)                        |
| branch missing on the remote                      | ConfigError, listing a few branches      |
| pinned commit no longer served (force-push + gc)  | ConfigError: re-run to pin the new tip   |
| subdir without a dvc.yaml / no .dvc around it     | ConfigError, naming folders that have one|
| the remote answers 5xx                            | InfrastructureError (retried)            |
| git outlives its timeout (a hanging remote)       | InfrastructureError (retried)            |
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import CIHelpersError, ConfigError, InfrastructureError
from .process_env import environment_set
from .redact import redact
from .runner import CommandError, run

log = logging.getLogger(__name__)

TIMEOUT_ENV = "CI_HELPERS_GIT_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 300.0
# The askpass script's answers. The password's variable is one of redact.SECRET_ENV_VARS. A
# project's stage commands need neither: pass these to the runner's `unset=` when running them.
USERNAME_ENV = "CI_HELPERS_GIT_ASKPASS_USERNAME"
PASSWORD_ENV = "CI_HELPERS_GIT_ASKPASS_PASSWORD"
SECRET_ENV_NAMES = (USERNAME_ENV, PASSWORD_ENV)
# The login sent with a token when the Connection has none: token-checking servers accept any.
TOKEN_LOGIN = "git"
SSH_CONNECT_TIMEOUT_SECONDS = 30
SHOWN_BRANCHES = 5
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SERVER_ERROR = re.compile(
    r"returned error: (5\d\d)\b|\b(5\d\d) (?:Internal Server Error|Bad Gateway|Service Unavailable)"
)
_NO_REPOSITORY = re.compile(
    r"repository '.*' (?:not found|does not exist)|returned error: 404\b|does not appear to be a git repository|"
    r"Repository not found|No such file or directory|not a git repository",
    re.IGNORECASE,
)
_NO_SUCH_COMMIT = re.compile(r"not our ref|couldn't find remote ref|no such remote ref|unadvertised object", re.I)
# git's lines after ssh's own, which say nothing of what failed
_BOILERPLATE = re.compile(
    r"Could not read from remote repository|correct access rights|and the repository exists", re.IGNORECASE
)
_ASKPASS_SCRIPT = """#!/bin/sh
# git's askpass: the answer comes from the environment, never from argv or this file
case "$1" in
  Username*) printf '%s\\n' "$CI_HELPERS_GIT_ASKPASS_USERNAME" ;;
  Password*) printf '%s\\n' "$CI_HELPERS_GIT_ASKPASS_PASSWORD" ;;
  *) exit 1 ;;
esac
"""


@dataclass(frozen=True)
class RepoSource:
    """Where a DVC project lives in git: the repository, the branch to build, the project's folder.

    `url` is as the user gave it (https://, ssh://, scp-like git@host:path, file:// or a local
    path) and never holds a password: one given as user:password@ is refused (ConfigError)."""

    url: str
    branch: str = "main"
    subdir: str = ""  # the DVC project's folder inside the repo ("" = the repo root)

    def __post_init__(self) -> None:
        url = self.url.strip() if isinstance(self.url, str) else ""
        if not url:
            raise ConfigError("repo_url is empty; pass the git URL of the project's repository (https://, ssh://...)")
        if url.startswith("-"):
            raise ConfigError(f"repo_url {url!r} is not a URL (it starts with '-'); fix repo_url=")
        safe = _url_without_password(url)
        if safe is not None:
            raise ConfigError(
                f"repo_url {safe} holds a password; take it out of the URL and pass the credentials through "
                "git_conn_id= (an Airflow Connection whose login and password are the user and the token)"
            )
        scheme, _, rest = url.partition("://")
        if scheme.lower() in ("http", "https") and "@" in rest.split("/", 1)[0]:
            # a bare token as the user name (https://TOKEN@host/...) is as secret as a password
            raise ConfigError(
                f"repo_url {redact(url)} holds a user name or token; take it out of the URL and pass the credentials "
                "through git_conn_id= (an Airflow Connection whose login and password are the user and the token)"
            )
        if not self.branch or not self.branch.strip():
            raise ConfigError("branch is empty; pass the branch to build, e.g. branch='main'")
        subdir = (self.subdir or "").strip().replace("\\", "/")
        parts = PurePosixPath(subdir).parts if subdir else ()
        if subdir.startswith("/") or ".." in parts:
            raise ConfigError(
                f"subdir {self.subdir!r} is not a folder inside the repository; pass a relative path "
                "without '..' to subdir= (e.g. 'projects/churn'), or '' for the repo root"
            )
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "branch", self.branch.strip())
        object.__setattr__(self, "subdir", "/".join(part for part in parts if part != "."))

    def describe(self) -> str:
        """`URL@branch[:subdir]`, with any user info in the URL masked."""
        where = f"{redact(self.url)}@{self.branch}"
        return f"{where}:{self.subdir}" if self.subdir else where

    @property
    def shown_url(self) -> str:
        return redact(self.url)


def _url_without_password(url: str) -> str | None:
    """When `url` holds user:password@, the URL with its user info masked; else None. A password
    with '/' or '@' in it counts too (it would fool a URL parser)."""
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return None
    userinfo, _, host_and_path = rest.rpartition("@")
    if ":" not in userinfo:
        return None
    return f"{scheme}://***@{host_and_path}"


@dataclass(frozen=True)
class GitCredentials:
    """What git authenticates with: a login and password or token (http(s) URLs), or an SSH
    private key's text (ssh URLs; the login is the URL's, e.g. git@host; no passphrase), with
    optional known_hosts text (without it, ssh accepts a host it has never seen: accept-new).
    Neither the password nor the key is ever shown by repr() or str()."""

    username: str | None = None
    password: str | None = None
    private_key: str | None = None
    known_hosts: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.private_key or self.known_hosts)

    def __repr__(self) -> str:
        shown = ", ".join(
            [
                f"username={self.username!r}",
                f"password={'***' if self.password else None}",
                f"private_key={'***' if self.private_key else None}",
                f"known_hosts={'<set>' if self.known_hosts else None}",
            ]
        )
        return f"GitCredentials({shown})"

    __str__ = __repr__


@contextmanager
def git_credentials_in_env(credentials: GitCredentials | None) -> Iterator[None]:
    """For the block's duration, every git process (ours, DVC's, `ci_helpers.adapters.git`'s)
    authenticates with `credentials`, and none ever prompts (GIT_TERMINAL_PROMPT=0).

    - a password or token: GIT_ASKPASS names a 0700 script in a private 0700 folder that answers
      git's prompts from two environment variables (USERNAME_ENV, PASSWORD_ENV); the worker's own
      credential helpers are switched off for the block (GIT_CONFIG_COUNT), so that none answers
      first, stores the token, or erases its own entry when ours is rejected;
    - a private key: GIT_SSH_COMMAND uses it from a 0600 file in that folder (IdentitiesOnly,
      BatchMode), with known_hosts when given (StrictHostKeyChecking=yes), else accept-new.

    None or empty credentials: git uses what the environment has. The environment is restored and
    the private folder removed when the block ends. os.environ is the process's: one block at a time.
    """
    values: dict[str, str] = {"GIT_TERMINAL_PROMPT": "0"}
    private: Path | None = None
    try:
        if credentials is not None and not credentials.empty:
            private = Path(tempfile.mkdtemp(prefix="ci-helpers-git-auth-"))  # 0700
            if credentials.password:
                values.update(_askpass_environment(private, credentials))
            if credentials.private_key:
                values["GIT_SSH_COMMAND"] = _ssh_command(private, credentials)
        with environment_set(values):
            yield
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def _askpass_environment(private: Path, credentials: GitCredentials) -> dict[str, str]:
    script = private / "askpass.sh"
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
    with os.fdopen(fd, "w") as handle:
        handle.write(_ASKPASS_SCRIPT)
    count = _int(os.environ.get("GIT_CONFIG_COUNT"))
    return {
        "GIT_ASKPASS": str(script),
        USERNAME_ENV: credentials.username or TOKEN_LOGIN,
        PASSWORD_ENV: credentials.password or "",
        # an empty credential.helper resets the list: ours is the only answer
        f"GIT_CONFIG_KEY_{count}": "credential.helper",
        f"GIT_CONFIG_VALUE_{count}": "",
        "GIT_CONFIG_COUNT": str(count + 1),
    }


def _ssh_command(private: Path, credentials: GitCredentials) -> str:
    key = _private_file(private / "id_key", (credentials.private_key or "").strip() + "\n")  # ssh wants the newline
    command = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
    command += ["-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT_SECONDS}"]
    if credentials.known_hosts:
        known = _private_file(private / "known_hosts", credentials.known_hosts.strip() + "\n")
        command += ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
    else:
        command += ["-o", "StrictHostKeyChecking=accept-new"]
    return shlex.join(command)


def _private_file(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path


def _int(text: str | None) -> int:
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0


def timeout_seconds(timeout: float | None = None) -> float:
    """The bound on one network git command: `timeout`, else CI_HELPERS_GIT_TIMEOUT, else 300 s."""
    if timeout is not None:
        return max(1.0, float(timeout))
    try:
        return max(1.0, float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS))
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS


def pin_commit(source: RepoSource, credentials: GitCredentials | None = None, *, timeout: float | None = None) -> str:
    """The 40-hex commit at the tip of source.branch on the remote (git ls-remote), without cloning.

    The first task's check of the repository: an unreachable URL, a missing repository, rejected
    credentials, an invalid or missing branch are ConfigError (never retried); a 5xx or a remote
    that outlives the timeout, InfrastructureError (see the module's table)."""
    check_branch_name(source)
    with git_credentials_in_env(credentials):
        heads = _remote_heads(source, credentials, timeout, unreachable_is_config=True)
    if source.branch not in heads:
        raise _missing_branch(source, heads)
    return heads[source.branch]


def check_branch_name(source: RepoSource) -> None:
    try:
        normalised = run(["git", "check-ref-format", "--branch", source.branch]).stdout.strip()
    except CommandError:
        normalised = None
    if normalised != source.branch:
        raise ConfigError(f"branch {source.branch!r} is not a valid git branch name; fix branch= (e.g. 'main')")


def _remote_heads(
    source: RepoSource, credentials: GitCredentials | None, timeout: float | None, *, unreachable_is_config: bool
) -> dict[str, str]:
    """{branch: commit} of the remote's branches."""
    output = _network_git(
        ["ls-remote", "--heads", source.url],
        source,
        credentials,
        timeout,
        what="ls-remote",
        unreachable_is_config=unreachable_is_config,
    )
    heads = {}
    for line in output.splitlines():
        commit, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            heads[ref[len("refs/heads/") :]] = commit.strip()
    return heads


def _missing_branch(source: RepoSource, heads: dict[str, str]) -> ConfigError:
    names = sorted(heads, key=lambda name: (name not in ("main", "master"), name))
    shown = ", ".join(names[:SHOWN_BRANCHES]) + (f", ... ({len(names)} in all)" if len(names) > SHOWN_BRANCHES else "")
    has = f"it has: {shown}" if names else "it has no branches"
    return ConfigError(f"branch {source.branch!r} does not exist on {source.shown_url} ({has}); fix branch=")


def _network_git(
    args: list[str],
    source: RepoSource,
    credentials: GitCredentials | None,
    timeout: float | None,
    *,
    what: str,
    unreachable_is_config: bool,
    cwd: Path | None = None,
) -> str:
    """Run a git command that talks to source.url, bounded by the timeout; its failure as the
    module's table says."""
    seconds = timeout_seconds(timeout)
    bound = shutil.which("timeout")  # coreutils: the whole process group is stopped at the bound
    command = ["git", *args]
    if bound:
        command = [bound, "--kill-after=5", f"{seconds:g}", *command]
    try:
        return run(
            command,
            cwd=cwd,
            env={"GIT_TERMINAL_PROMPT": "0"},
            rejected=lambda reason: _rejected(source, credentials, reason),
        ).stdout
    except (CommandError, InfrastructureError) as error:
        # the runner turns a one-attempt "unreachable" into InfrastructureError; the cause says what git said
        failure = error if isinstance(error, CommandError) else error.__cause__
        if not isinstance(failure, CommandError):
            raise
        if "not found in upstream" in failure.output or "Remote branch" in failure.output:
            raise failure from None  # a branch missing at clone time: the caller lists the branches there are
        if _NO_SUCH_COMMIT.search(failure.output):
            raise failure from None  # a pinned commit the server no longer serves: the caller says so
        raise _classified(failure, source, what, seconds if bound else None, unreachable_is_config) from None


def _rejected(source: RepoSource, credentials: GitCredentials | None, reason: str) -> ConfigError:
    if credentials is None or credentials.empty:
        fix = "pass git_conn_id= (an Airflow Connection: login and token, or an SSH private_key) or set up the worker's git credentials"
    else:
        fix = "fix the Connection named by git_conn_id= (login and a token with read access, or an SSH private_key the server accepts)"
    return ConfigError(redact(f"git repository {source.shown_url} rejected the credentials ({reason}); {fix}"))


def _classified(
    failure: CommandError, source: RepoSource, what: str, seconds: float | None, unreachable_is_config: bool
) -> CIHelpersError:
    url = source.shown_url
    if seconds is not None and failure.returncode in (124, 137):  # timeout's "timed out", its -k
        return InfrastructureError(
            f"git {what} of {url} did not finish within {seconds:g} s: the remote hangs or is very slow; "
            f"retry later, or set {TIMEOUT_ENV} (seconds) higher for a slow remote",
            endpoint=url,
        )
    why = _last_line(failure.output) or f"git exited {failure.returncode}"
    server_error = _SERVER_ERROR.search(failure.output)
    if server_error:
        code = server_error.group(1) or server_error.group(2)
        return InfrastructureError(f"git repository {url} answered HTTP {code} to git {what}: {why}", endpoint=url)
    wrong = _wrong_repository(failure.output, url, why)
    if wrong is not None:
        return wrong
    if failure.transient:  # refused, no such host, no route...
        if unreachable_is_config:
            return ConfigError(f"cannot reach git repository {url} ({why}); fix repo_url= (or the worker's network)")
        return InfrastructureError(
            f"cannot reach git repository {url}, which answered when this run pinned its commit ({why})", endpoint=url
        )
    # anything else on the wire (an early EOF, a hung-up remote, an RPC failure): the remote's
    # fault, retried by the task's retries, never "a failed gate"
    return InfrastructureError(f"git {what} of {url} failed: {why}", endpoint=url)


def _wrong_repository(output: str, url: str, why: str) -> ConfigError | None:
    """The URL names no repository, or an ssh host that is not the one known_hosts names."""
    if "Host key verification failed" in output:
        return ConfigError(
            f"the ssh host key of {url} is not the one known_hosts names; fix the known_hosts extra of the "
            "Connection named by git_conn_id= (`ssh-keyscan` the host)"
        )
    if _NO_REPOSITORY.search(output):
        return ConfigError(f"no git repository at {url} ({why}); fix repo_url=")
    return None


def _last_line(output: str) -> str:
    """git's last line that says something: ssh's own line rather than git's boilerplate after it."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not _BOILERPLATE.search(line)] or lines
    line = lines[-1] if lines else ""
    for prefix in ("fatal: ", "error: "):
        line = line.removeprefix(prefix)
    return redact(line[:300])


@contextmanager
def fresh_checkout(
    source: RepoSource,
    commit: str,
    credentials: GitCredentials | None = None,
    *,
    cache_dir: str | Path | None = None,
    work_root: str | Path | None = None,
    timeout: float | None = None,
) -> Iterator[Path]:
    """Clone source.url into a new directory under work_root (default: tempfile.gettempdir()),
    check out `commit` on the local branch `source.branch` (origin is the remote, the branch's
    upstream origin/<branch>: `git fetch origin <branch>` and `git push origin HEAD:refs/heads/<branch>`
    work inside the block, in a `git_credentials_in_env(credentials)` block of their own), and yield
    the project directory (checkout / subdir). The clone holds the branch's history
    (`--single-branch --no-tags`); a commit no longer on the branch (a force-push) is fetched by id
    when the server serves it.

    The credentials are in the environment for the clone only: the block's own processes (the
    project's stages) never see them. The checkout is removed when the block ends, failed or not
    (KeyboardInterrupt and SystemExit too).

    With cache_dir, the checkout's DVC cache is that directory (created if missing; set as
    `cache.dir` in .dvc/config.local, which git ignores), so that repeated tasks on one worker
    reuse it; without it the cache lives (and dies) inside the checkout.

    Failures: see the module's table. An unreachable remote is InfrastructureError here (retried):
    the run pinned its commit from that same URL."""
    if not _COMMIT.fullmatch(commit or ""):
        raise ConfigError(f"commit {commit!r} is not a 40-hex git commit id; pass the one pin_commit returned")
    root = Path(work_root) if work_root is not None else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mlops-checkout-", dir=root))
    try:
        checkout = work / _repo_name(source.url)
        with git_credentials_in_env(credentials):
            _clone_at(source, commit, credentials, checkout, timeout)
        project = _project_dir(source, commit, checkout)
        if cache_dir is not None:
            _use_cache_dir(project, Path(cache_dir))
        log.info("checked out %s at %s in %s", source.describe(), commit[:12], project)
        yield project
    finally:
        _remove_tree(work)


def _repo_name(url: str) -> str:
    name = re.split(r"[/:]", url.rstrip("/"))[-1].removesuffix(".git")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "repo"


def _clone_at(
    source: RepoSource, commit: str, credentials: GitCredentials | None, checkout: Path, timeout: float | None
) -> None:
    def network(*args: str, what: str, cwd: Path | None = None) -> str:
        return _network_git(list(args), source, credentials, timeout, what=what, unreachable_is_config=False, cwd=cwd)

    clone = ["clone", "--quiet", "--single-branch", "--no-tags", "--no-checkout", "--branch", source.branch]
    try:
        network(*clone, "--", source.url, str(checkout), what="clone", cwd=checkout.parent)
    except CommandError as error:
        if "not found in upstream" not in error.output and "Remote branch" not in error.output:
            raise
        heads = _remote_heads(source, credentials, timeout, unreachable_is_config=False)
        raise _missing_branch(source, heads) from None
    if not _has_commit(checkout, commit):
        try:
            network("fetch", "--quiet", "--no-tags", "origin", commit, what="fetch of the pinned commit", cwd=checkout)
        except CommandError as error:
            if not _NO_SUCH_COMMIT.search(error.output):
                raise
        if not _has_commit(checkout, commit):
            raise ConfigError(
                f"commit {commit[:12]} is no longer on branch {source.branch!r} of {source.shown_url}, and the "
                "server does not serve it by id (force-pushed away?); re-run the DAG so that it pins the branch's tip"
            )
    # the local branch at the pinned commit, origin/<branch> its upstream (set by the clone)
    run(["git", "checkout", "--quiet", "-B", source.branch, commit], cwd=checkout)


def _has_commit(checkout: Path, commit: str) -> bool:
    try:
        run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=checkout)
        return True
    except CommandError:
        return False


def _project_dir(source: RepoSource, commit: str, checkout: Path) -> Path:
    project = checkout / source.subdir if source.subdir else checkout
    where = f"subdir {source.subdir!r}" if source.subdir else "the repository root"
    if not (project / "dvc.yaml").is_file():
        found = _folders_with_dvc_yaml(checkout)
        hint = f"folders with one: {', '.join(found)}" if found else "no folder of it has one"
        what = "has no dvc.yaml" if project.is_dir() else "does not exist"
        raise ConfigError(
            f"{where} of {source.shown_url} at {commit[:12]} {what} ({hint}); fix subdir= to the DVC project's folder"
        )
    # DVC's root is the project's folder or one above it, inside the checkout
    roots = [checkout / parent for parent in PurePosixPath(source.subdir).parents] if source.subdir else []
    if not any((folder / ".dvc").is_dir() for folder in (project, *roots)):
        raise ConfigError(
            f"{where} of {source.shown_url} at {commit[:12]} has a dvc.yaml but no DVC project (.dvc folder) around "
            "it; run `dvc init` there (`--subdir` in a folder of a repo) and commit it"
        )
    return project


def _folders_with_dvc_yaml(checkout: Path) -> list[str]:
    files = run(["git", "ls-files", "--", "dvc.yaml", "*/dvc.yaml"], cwd=checkout).stdout.split("\n")
    folders = sorted({str(PurePosixPath(name).parent) for name in files if name.strip()}, key=len)
    shown = ["'' (the root)" if folder == "." else repr(folder) for folder in folders[:SHOWN_BRANCHES]]
    return shown + ([f"... ({len(folders)} in all)"] if len(folders) > SHOWN_BRANCHES else [])


def _use_cache_dir(project: Path, cache_dir: Path) -> None:
    """DVC's cache of this checkout is `cache_dir` (the worker's, shared by its tasks): its objects
    are written atomically, so tasks running at once on one worker can share it. Written into
    `.dvc/config.local` as `dvc config --local cache.dir` would, without that process's half
    second (every task pays it, the unchanged run too)."""
    import configparser

    cache = cache_dir.expanduser().resolve()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cache_dir {cache} cannot be created ({error.strerror}); fix cache_dir=") from None
    dvc_dir = _dvc_dir_of(project)
    local = dvc_dir / "config.local"
    parser = configparser.ConfigParser()
    parser.read(local)
    if not parser.has_section("cache"):
        parser.add_section("cache")
    parser.set("cache", "dir", str(cache))
    with local.open("w") as handle:
        parser.write(handle)


def _dvc_dir_of(project: Path) -> Path:
    """The `.dvc` folder of the DVC project `project` is in (the nearest one, up to the checkout)."""
    for folder in (project, *project.parents):
        if (folder / ".dvc").is_dir():
            return folder / ".dvc"
    raise ConfigError(f"{project} is in no DVC project (no .dvc folder); run `dvc init` there")


def _remove_tree(path: Path) -> None:
    """Remove the checkout; git's and DVC's read-only files too. A failure here is logged, never
    raised: it must not replace the block's own error."""
    try:
        shutil.rmtree(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    for folder, _, _ in os.walk(path):
        with suppress(OSError):
            os.chmod(folder, os.stat(folder).st_mode | stat.S_IWUSR | stat.S_IXUSR | stat.S_IRUSR)
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not remove the checkout %s entirely; remove it by hand", path)
