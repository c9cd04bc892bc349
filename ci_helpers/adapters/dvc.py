"""DVC through its CLI (``--json`` where it exists), via the shared runner; the remote's preflight
and the reads at a revision through DVC's own API (what a remote holds: remote_objects)."""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import posixpath
import re
import sys
from pathlib import Path, PurePosixPath

from ..errors import ConfigError, InfrastructureError, StageFailed
from .auth import exception_rejection_reason, remote_rejected
from .redact import redact
from .remote_types import RemoteSettings, check_connects, probe_address
from .runner import TAIL_LINES, CommandError, is_transient_text, retry_attempts, retry_wait_seconds, run
from .shared_repo import borrowed, workspace_changed


def dvc_executable() -> str:
    """The dvc installed beside ci_helpers (a private venv needs not be on PATH), else PATH's."""
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.is_file() else "dvc"


def dvc(repo: Path, *args: str, stream: bool = False, retry: bool = False, endpoint: str | None = None) -> str:
    return run([dvc_executable(), *args], cwd=repo, stream=stream, retry=retry, endpoint=endpoint).stdout


def _project_config(repo: Path) -> configparser.ConfigParser:
    """The repo's .dvc/config and .dvc/config.local, read in-process (one dvc call saved per query)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read([repo / ".dvc" / "config", repo / ".dvc" / "config.local"])
    return parser


def cache_dir(repo: Path) -> Path:
    """The project's DVC cache folder: `cache.dir` of its config (relative to .dvc/), else .dvc/cache."""
    configured = _project_config(repo).get("cache", "dir", fallback=None)
    return (repo / ".dvc" / configured).resolve() if configured else repo.resolve() / ".dvc" / "cache"


def _remote_sections(parser: configparser.ConfigParser) -> dict[str, configparser.SectionProxy]:
    sections = {}
    for section in parser.sections():
        match = re.fullmatch(r"""\s*['"]?remote\s+"(?P<name>[^"]+)"['"]?\s*""", section)
        if match:
            sections[match["name"]] = parser[section]
    return sections


def remotes(repo: Path) -> dict[str, str]:
    """Configured remote names and their URLs (project config; else DVC's merged config)."""
    found = {name: section.get("url", "") for name, section in _remote_sections(_project_config(repo)).items()}
    if found:
        return found
    for line in dvc(repo, "remote", "list").splitlines():
        name, _, url = line.strip().partition("\t")
        if name:
            found[name.strip()] = url.strip()
    return found


def committed_remote_urls(config_text: str | None) -> dict[str, str]:
    """Remote name -> URL in the text of a `.dvc/config` as git holds it (config.local is not in
    git); {} when it is absent or does not parse."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(config_text or "")
    except configparser.Error:
        return {}
    return {name: section.get("url", "") for name, section in _remote_sections(parser).items()}


def default_remote(repo: Path) -> str | None:
    parser = _project_config(repo)
    if parser.has_option("core", "remote"):
        return parser.get("core", "remote").strip() or None
    try:
        return dvc(repo, "remote", "default").strip() or None
    except CommandError:
        return None


def resolve_remote(repo: Path, remote: str | None) -> str:
    """The remote to use; ConfigError when it is unknown or none is configured."""
    known = remotes(repo)
    if remote:
        if remote not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"DVC remote '{remote}' is not configured (known: {names}); pass one of them to --remote or add it with `dvc remote add`"
            )
        return remote
    chosen = default_remote(repo)
    if not chosen:
        raise ConfigError("no DVC remote is configured; add one with `dvc remote add -d NAME URL` or pass --remote")
    return chosen


def remote_settings(repo: Path, remote: str) -> RemoteSettings:
    """The remote's URL and settings (project config and config.local merged)."""
    section = _remote_sections(_project_config(repo)).get(remote)
    if section is None:
        return RemoteSettings(remote, remotes(repo).get(remote, "?"))
    return RemoteSettings(remote, section.get("url", "?"), dict(section.items()))


def _remote_location(repo: Path, remote: str) -> tuple[str, str | None]:
    """The remote's URL and the server it talks to when the URL does not name it (an S3, Azure or
    GCS endpoint; the AWS variables mean nothing to an SSH, WebDAV, Azure... remote)."""
    settings = remote_settings(repo, remote)
    return settings.url, settings.service_endpoint()


def remote_endpoint(repo: Path, remote: str) -> str:
    """A human description of where a remote lives: its URL, plus its service endpoint when set."""
    url, endpoint = _remote_location(repo, remote)
    return f"DVC remote '{remote}' ({url}" + (f" at {endpoint})" if endpoint else ")")


def _rejected(repo: Path, remote: str, endpoint: str):
    """The ConfigError (exit 2) for `remote` rejecting the credentials, given the rejection's reason."""
    try:
        settings = remote_settings(repo, remote)
    except CommandError:
        settings = RemoteSettings(remote, "?")
    return lambda reason: remote_rejected(
        endpoint, settings.url, settings.service_endpoint(), reason, remote=remote, user=settings.login_user()
    )


def remote_client_environment(repo: Path) -> dict[str, str]:
    """The variables the client libraries of the project's remotes need (remote_types), for the `dvc`
    commands this process starts; never one the user set."""
    try:
        names = list(_remote_sections(_project_config(repo)))
    except configparser.Error:  # DVC reports a broken config in its own words
        return {}
    needed: dict[str, str] = {}
    for name in names:
        needed |= remote_settings(repo, name).client_environment()
    return needed


def use_remote_clients(repo: Path) -> None:
    """Set remote_client_environment for the rest of this process and the commands it starts. For
    the whole process: gcsfs reads its variable once, when it is imported, and DVC imports it from
    wherever it first meets the remote (the project's index, a metrics read, a push check)."""
    for name, value in remote_client_environment(repo).items():
        os.environ.setdefault(name, value)


def _transfer(repo: Path, command: str, args: list[str], remote: str, endpoint: str) -> None:
    """`dvc push|pull ARGS` as a subprocess, showing DVC's own progress: transient failures retried
    (then exit 3), a remote that rejects the credentials (AccessDenied, 403) exit 2 at once."""
    try:
        use_remote_clients(repo)
        run(
            [dvc_executable(), command, *args],
            cwd=repo,
            stream=True,
            retry=True,
            endpoint=endpoint,
            rejected=_rejected(repo, remote, endpoint),
        )
    except CommandError as error:
        # Not transient, not a rejection: name the remote and DVC's own words (a full disk among
        # them is recognised from those words at the command's edge).
        tail = " | ".join(line.strip() for line in error.output.strip().splitlines()[-3:] if line.strip())
        raise InfrastructureError(
            redact(f"`dvc {command}` with {endpoint} failed (dvc exited {error.returncode}): {tail}"),
            endpoint=redact(endpoint),
        ) from error


def pull(repo: Path, targets: list[str], remote: str, endpoint: str) -> None:
    """Pull just `targets` from `remote`, showing DVC's own progress: transient failures retried
    (then exit 3), rejected credentials exit 2 at once. In-process (dvc_transfer) through the Repo
    the project model read, so that no second Python imports DVC and builds the index again."""
    try:
        _pull_in_process(repo, targets, remote, endpoint)
    finally:
        workspace_changed(repo)  # even a failed pull may have checked files out


def _pull_in_process(repo: Path, targets: list[str], remote: str, endpoint: str) -> None:
    from .dvc_transfer import pull_with
    from .runner import _workflow_commands_stopped

    def transfer() -> None:
        with borrowed(repo) as dvc_repo:
            pull_with(dvc_repo, targets, remote)

    with _workflow_commands_stopped():  # DVC's words (file names of a PR) issue no workflow command
        _on_remote(repo, remote, endpoint, "pull from", transfer, doing="the pull from")


# The runner's files through which a step changes the steps after it, and the tokens that act on
# the repository: a PR's own stage code gets neither.
UNTRUSTED_UNSET = (
    "GITHUB_ENV",
    "GITHUB_OUTPUT",
    "GITHUB_PATH",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_STATE",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "CI_HELPERS_GITLAB_TOKEN",
    "GITLAB_TOKEN",
    "CI_JOB_TOKEN",
)


def repro(
    repo: Path,
    targets: list[str],
    flags: list[str],
    env: dict[str, str] | None = None,
    untrusted: bool = False,
) -> str:
    """`dvc repro FLAGS TARGETS`, showing the stages' own output, which it returns; StageFailed
    (exit 4) when it fails. untrusted=True (a PR's code): the stages run without the runner's step
    files and tokens. Any DVC index read before it is stale after it (workspace_changed)."""
    try:
        return _repro(repo, targets, flags, env, UNTRUSTED_UNSET if untrusted else ())
    finally:
        workspace_changed(repo)  # dvc.lock and outputs rewritten, even by a stage that failed half-way


def _repro(repo: Path, targets: list[str], flags: list[str], env: dict[str, str] | None, unset: tuple) -> str:
    try:
        use_remote_clients(repo)
        return run([dvc_executable(), "repro", *flags, *targets], cwd=repo, env=env, stream=True, unset=unset).stdout
    except CommandError as error:
        raise stage_failed(error) from None
    except InfrastructureError as error:
        # "unreachable" words in the output: the remote (exit 3) unless DVC says a stage failed
        cause = error.__cause__
        if isinstance(cause, CommandError) and _FAILED_STAGE.search(cause.output):
            raise stage_failed(cause) from None
        raise


_FAILED_STAGE = re.compile(r"failed to reproduce '(?P<stage>[^']+)'")
_EXIT_STATUS = re.compile(r"exited with (?P<status>-?\d+)")


def stage_failed(error: CommandError) -> StageFailed:
    """The project's pipeline failed: name the stage and its exit status as DVC reported them,
    with the last lines of its output."""
    stage = _FAILED_STAGE.search(error.output)
    status = _EXIT_STATUS.search(error.output)
    name = stage["stage"] if stage else None
    code = int(status["status"]) if status else None
    what = f"stage '{name}'" if name else "`dvc repro`"
    how = f"exited with {code}" if code is not None else f"failed (dvc exited {error.returncode})"
    tail = "\n".join(error.output.strip().splitlines()[-TAIL_LINES:])
    return StageFailed(
        f"{what} {how}; fix the stage (reproduce it with `{error.command}`). Its last lines:\n{tail}", name, code
    )


def push(repo: Path, targets: list[str], remote: str, endpoint: str, run_cache: bool = False) -> None:
    """Push `targets` (and optionally the run cache) to `remote`, with retries."""
    extra = ["--run-cache"] if run_cache else []
    _transfer(repo, "push", ["--remote", remote, *extra, *targets], remote, endpoint)


def update_imports(repo: Path, dvcfiles: list[str]) -> str:
    """`dvc update --no-download` of import `.dvc` files: each records its source's current hash
    (a changed source changes the file), and nothing is downloaded (the stages that need it pull)."""
    try:
        return run(
            [dvc_executable(), "update", "--no-download", *dvcfiles],
            cwd=repo,
            retry=True,
            endpoint="an import's source",
        ).stdout
    except CommandError as error:
        tail = " ".join(error.output.strip().splitlines()[-2:])
        raise ConfigError(
            f"`dvc update` of {', '.join(dvcfiles)} failed: {tail}; fix the import's source or set update_imports=False"
        ) from None
    finally:
        workspace_changed(repo)


def repro_single(repo: Path, stage: str) -> None:
    """Re-run exactly one stage of a PR, unconditionally, on what is in the workspace; its code
    cannot change the steps after it (no GITHUB_ENV, GITHUB_OUTPUT, GITHUB_PATH...)."""
    repro(repo, [stage], ["--force", "--single-item"], untrusted=True)


def check_remote_answers(repo: Path, remote: str, endpoint: str) -> None:
    """Preflight, read-only: the remote answers a look at its root through DVC's filesystem for it.

    InfrastructureError (exit 3) when it stays unreachable after retries; ConfigError (exit 2) when it
    rejects the credentials or DVC cannot use its configuration. An empty or not yet created remote
    answers (the first push creates it).
    """

    def look() -> None:
        from dvc.repo import Repo

        with Repo(str(repo)) as dvc_repo:
            cloud = dvc_repo.cloud.get_remote(remote, "push")
            if not cloud.fs.exists(cloud.path):
                # nothing there yet, or a bucket-level path that `exists` cannot probe: a listing says which
                with contextlib.suppress(FileNotFoundError):
                    cloud.fs.ls(cloud.path)

    _on_remote(repo, remote, endpoint, "reach", look)


@contextlib.contextmanager
def _quiet_client_loggers():
    """Storage libraries that log each failed request with its traceback (gcsfs) say nothing: the
    failure is reported once, in one line, by the caller."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


_CHATTY_LOGGERS = ("gcsfs", "azure", "asyncssh", "webdav4")


def _on_remote(repo: Path, remote: str, endpoint: str, what: str, call, doing: str = "the check of"):
    """`call()` (in-process DVC work on the remote) with bounded retries of transient failures
    (announced as "retrying DOING ENDPOINT"). A rejection of the credentials raises ConfigError at
    once; anything else InfrastructureError."""
    import stamina
    import stamina.instrumentation
    from dvc.config import ConfigError as DvcConfigError

    rejected = _rejected(repo, remote, endpoint)
    try:
        settings = remote_settings(repo, remote)
    except CommandError:
        settings = RemoteSettings(remote, "?")
    unusable = settings.unusable_key_file()
    if unusable:
        raise ConfigError(
            redact(
                f"{endpoint} cannot be used: {unusable}; set GOOGLE_APPLICATION_CREDENTIALS or "
                f"`dvc remote modify --local {remote} credentialpath PATH` to a service-account JSON key file"
            )
        )
    address = probe_address(settings)

    def connected_call():
        if address:  # the Azure and GCS SDKs retry a refused connection for a minute a request
            check_connects(address)
        return call()

    def retryable(error: Exception) -> bool:
        if isinstance(error, (ConfigError, DvcConfigError)) or exception_rejection_reason(error):
            return False
        # a refused or timed-out connection (asyncssh's "Connect call failed" has no transient words)
        return isinstance(error, (ConnectionError, TimeoutError)) or is_transient_text(
            f"{type(error).__name__} {error}"
        )

    stamina.instrumentation.set_on_retry_hooks([])
    wait, attempts = retry_wait_seconds(), retry_attempts()
    try:
        use_remote_clients(repo)
        with _quiet_client_loggers():
            for attempt in stamina.retry_context(
                on=retryable, attempts=attempts, wait_initial=wait, wait_max=8 * wait + 0.1, wait_jitter=wait / 4
            ):
                with attempt:
                    if attempt.num > 1:
                        sys.stderr.write(f"retrying {doing} {redact(endpoint)} (attempt {attempt.num}/{attempts})\n")
                    return connected_call()
    except ConfigError:
        raise
    except DvcConfigError as error:  # an unknown remote, a config DVC refuses
        raise ConfigError(
            redact(
                f"DVC cannot use {endpoint}: {' '.join(str(error).split())[:300]}; fix its configuration (`dvc remote`)"
            )
        ) from None
    except Exception as error:
        reason = exception_rejection_reason(error)
        if reason:
            raise rejected(reason) from None
        raise InfrastructureError(
            redact(f"could not {what} {endpoint}: {type(error).__name__}: {' '.join(str(error).split())[:300]}"),
            endpoint=redact(endpoint),
        ) from None
    raise AssertionError("unreachable")


def metrics_at_revision(repo: Path, rev: str, files: list[str]) -> tuple[dict[str, object], set[str]]:
    """DVC-cached metrics files at git revision `rev`, read as `dvc metrics show --rev` reads them
    (DVC's cache, else the remote): (the parsed content of those DVC could read, those DVC tracks
    at `rev` but could not read: their data is neither in the cache nor on the remote).

    Read inside one switch to `rev` (`brancher`): `metrics.show(revs=[rev])` would also read the
    workspace, building its index again, and a second switch would build `rev`'s again."""
    from dvc.exceptions import DvcException

    read: dict[str, object] = {}
    tracked: set[str] = set()
    try:
        with borrowed(repo) as dvc_repo:
            for _ in dvc_repo.brancher(revs=[rev], workspace=False):
                # absolute targets, named from the revision's root ("/" or "/<subdir>"): DVC
                # resolves relative ones against the cwd, not the project
                targets = [posixpath.join(dvc_repo.root_dir, name) for name in files]
                shown = dvc_repo.metrics.show(targets=targets)
                data = (shown.get("") or {}).get("data") or {}
                read = {
                    name: entry["data"] for name, entry in data.items() if name in files and "data" in (entry or {})
                }
                # a file inside a directory out whose manifest is gone is known by its directory
                tracked = {
                    name
                    for name in files
                    if name not in read
                    and any(
                        dvc_repo.dvcfs.exists(str(path))
                        for path in (PurePosixPath(name), *PurePosixPath(name).parents[:-1])
                    )
                }
    except DvcException:
        return {}, set()
    return read, tracked


ParamsDiff = dict[str, dict[str, dict[str, object]]]


def params_diff(repo: Path, rev: str) -> ParamsDiff:
    """What `dvc params diff REV` shows: params file -> param -> {"old", "new"}, changed params only.

    The params are read by DVC at `rev` (from git) and in the workspace; a project DVC cannot read
    at `rev` raises ConfigError naming it.
    """
    from dvc.exceptions import DvcException
    from dvc.repo.metrics.diff import _diff

    try:
        with borrowed(repo) as dvc_repo:
            if dvc_repo.scm.no_commits:
                return {}
            # the workspace from the index already read, then `rev` inside one switch to it
            # (`params.diff` would build the workspace's index again inside its switch)
            new = dvc_repo.params.show().get("") or {}
            old: dict = {}
            for _ in dvc_repo.brancher(revs=[rev], workspace=False):
                old = dvc_repo.params.show().get("") or {}
            shown = _diff({"old": old, "new": new}, "old", "new")
    except DvcException as error:
        raise ConfigError(
            f"DVC cannot read the params at {rev[:12]} ({' '.join(str(error).split())[:200]}); fix the base ref's params files"
        ) from None
    return {
        path: {param: {"old": change.get("old"), "new": change.get("new")} for param, change in sorted(changes.items())}
        for path, changes in sorted((shown.get("diff") or {}).items())
        if changes
    }
