"""`trace`: from a registered model version back to where it came from, read only.

The version (by alias, number, or the newest) and its run come from MLflow; the commit, branch, CI
run and lock commit from the tags master-build put on them; the pull request from the merge commit
that brought the commit into its branch, or the commit's own message when it is on the branch's
first-parent line, in the clone (the GitHub API only when $GITHUB_TOKEN is set and no message names
one); the data from the DVC outs recorded at the lock commit that the version's build used, read
from git; whether the DVC remote still holds each object from existence calls on it (never a
listing); the alias moves from the registered model's tags and its aliases now.

MLflow that cannot be reached stops the trace (exit 3), as do refusals (exit 2) found before
anything is read. A DVC remote or GitHub API that cannot be asked does not: what it would have said
shows as "unknown (...)", and the command then exits with the first such error (3 unreachable, 2
refused or not configured), after the rest is shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..adapters import commit_history, dvc, git
from ..adapters.github_api import api_url_from_env, repository_from_env
from ..adapters.github_pulls import CommitPullsClient, pull_that_brought, repository_from_origin
from ..adapters.http_api import HostedAPIError
from ..adapters.lineage import VersionRecord, read_version, recorded_moves, tags_of_versions
from ..adapters.recorded_outs import RecordedOuts, recorded_outs
from ..adapters.redact import redact
from ..adapters.remote_objects import remote_objects
from ..adapters.tracking import BRANCH_TAG, COMMIT_TAG, _store_exists, check_tracking_server
from ..errors import CIHelpersError, ConfigError, InfrastructureError
from ..lineage import (
    HELD,
    NOT_HELD,
    OUTSIDE_MOVE,
    AliasMoveRecord,
    DataObject,
    Lineage,
    PullRequest,
    parse_version_spec,
    pull_request_in_message,
)

CI_MD5_PREFIX = "mlops.ci_md5."
CI_RUN_TAG = "mlops.ci_run_url"
DIRECTORY_SAMPLE = 20  # files of a directory out asked about, besides its manifest
_BATCH = 500  # objects per presence question: below a listing page (1,000), so existence calls only
_API_ATTEMPTS = 3


@dataclass(frozen=True)
class TraceOptions:
    repo: Path
    spec: str
    tracking_uri: str
    remote: str | None = None
    check_remote: bool = True
    github_token: str | None = None


@dataclass(frozen=True)
class TraceResult:
    lineage: Lineage
    error: CIHelpersError | None = None  # the remote or the API could not say: the exit code after the output


def _tag(record: VersionRecord, *keys: str) -> str | None:
    """The first of `keys` set on the version, else on its run."""
    for tags in (record.tags, record.run_tags):
        for key in keys:
            if tags.get(key):
                return tags[key]
    return None


class _GitHub:
    """The one API client of a trace; after its first failure it is not asked again."""

    def __init__(self, repo: Path, token: str | None) -> None:
        self.client: CommitPullsClient | None = None
        self.error: CIHelpersError | None = None
        self.why_not = "a GitHub token ($GITHUB_TOKEN) lets trace ask the API"
        if not token:
            return
        try:
            api_url = api_url_from_env()
            repository = repository_from_env() if _env("GITHUB_REPOSITORY") else None
        except HostedAPIError as error:
            raise ConfigError(f"{error}; fix it, or unset GITHUB_TOKEN to trace without the API") from None
        repository = repository or repository_from_origin(git.remote_url(repo))
        if not repository:
            self.why_not = "no GITHUB_REPOSITORY and origin is not a github.com URL, so the API cannot be asked"
            return
        self.client = CommitPullsClient(api_url, repository, token)

    def pull(self, commit: str, branch: str | None) -> tuple[PullRequest | None, str]:
        if self.client is None:
            return None, f"unknown: {self.why_not}"
        if self.error is not None:
            return None, "unknown: the GitHub API was not asked again after it failed"
        try:
            pull = pull_that_brought(self._pulls_of(commit), branch)
        except HostedAPIError as error:
            self.error = self._failure(error)
            return None, f"unknown: the GitHub API could not say ({redact(str(error))})"
        if pull is None:
            into = f" into {branch}" if branch else ""
            return None, f"unknown: the GitHub API knows no merged pull request{into} with {commit[:12]}"
        return PullRequest(
            pull.number, "pull request", "GitHub API", commit, pull.title, pull.url
        ), "from the GitHub API"

    def _pulls_of(self, commit: str):
        assert self.client is not None
        for attempt in range(1, _API_ATTEMPTS + 1):
            try:
                return self.client.pulls_of_commit(commit)
            except HostedAPIError as error:
                if not error.transient or attempt == _API_ATTEMPTS:
                    raise
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _failure(self, error: HostedAPIError) -> CIHelpersError:
        assert self.client is not None
        said = redact(str(error))
        if error.forbidden:
            return ConfigError(
                f"GitHub's API refused the token ({said}); set GITHUB_TOKEN to a token that can read the pull "
                f"requests of {self.client.repository}, or unset it to trace without the API"
            )
        return InfrastructureError(
            f"GitHub's API at {self.client.api_url} could not be asked ({said})", self.client.api_url
        )


def _env(name: str) -> str:
    import os

    return os.environ.get(name, "")


class _PullRequests:
    """The request that brought each commit into its branch, found once per (commit, branch); each
    branch's history read once."""

    def __init__(self, repo: Path, github: _GitHub) -> None:
        self._repo, self._github = repo, github
        self._histories: dict[str, commit_history.BranchHistory | None] = {}
        self._seen: dict[tuple[str, str | None], tuple[PullRequest | None, str]] = {}

    def of(self, commit: str | None, branch: str | None) -> tuple[PullRequest | None, str]:
        if not commit:
            return None, "unknown: the version records no commit"
        if (commit, branch) not in self._seen:
            self._seen[commit, branch] = self._find(commit, branch)
        return self._seen[commit, branch]

    def _history(self, branch: str | None) -> commit_history.BranchHistory | None:
        key = branch or ""
        if key not in self._histories:
            tip = commit_history.branch_ref(self._repo, branch)
            self._histories[key] = commit_history.read_branch_history(self._repo, tip) if tip else None
        return self._histories[key]

    def _find(self, commit: str, branch: str | None) -> tuple[PullRequest | None, str]:
        history = self._history(branch)
        in_clone = bool(history and commit in history.brought_by) or git.has_commit(self._repo, commit)
        if in_clone:
            bringing = history.brought_by.get(commit) if history else None
            # the merge commit that brought it in names the request into this branch; the commit's
            # own "(#N)" may name one into a feature branch
            for candidate in dict.fromkeys(c for c in (bringing, commit) if c):
                message = history.messages.get(candidate) if history else None
                if message is None:
                    message = commit_history.commit_message(self._repo, candidate) or ""
                found = pull_request_in_message(message, candidate)
                if found:
                    return found, f"from the {found.source} of {candidate[:12]}"
        if self._github.client is not None:
            return self._github.pull(commit, branch)
        where = (
            "no merge or squash commit message names one"
            if in_clone
            else f"commit {commit[:12]} is not in the clone at --repo (fetch it)"
        )
        return None, f"unknown: {where}; {self._github.why_not}"


def _used_by_build(recorded: RecordedOuts, built: set[str]) -> set[str] | None:
    """The stages whose outs this build used: those that made its outs (the version's
    `mlops.ci_md5.*` paths) and every stage upstream of them; None when no such out is recorded."""
    makers = {out.produced_by for out in recorded.outs if out.path in built}
    if not makers:
        return None
    return makers | {stage for maker in makers for stage in recorded.upstream.get(maker, ())}


def _data(
    git_root: Path, project: str, record: VersionRecord, commit: str | None, lock_commit: str | None
) -> tuple[list[DataObject], str]:
    """The outs the build used, recorded at the lock commit (CI's own dvc.lock), else at the built
    commit, with the hashes the version's tags say CI built and pushed over them."""
    built = {key.removeprefix(CI_MD5_PREFIX): md5 for key, md5 in record.tags.items() if key.startswith(CI_MD5_PREFIX)}
    notes = []
    at = next((c for c in (lock_commit, commit) if c and git.has_commit(git_root, c)), None)
    objects: dict[str, DataObject] = {}
    if at:
        if lock_commit and at != lock_commit:
            notes.append(f"lock commit {lock_commit[:12]} is not in the clone")
        try:
            recorded: RecordedOuts | None = recorded_outs(git_root, project, at)
        except ConfigError as error:
            recorded = None
            notes.append(f"{error}: only the hashes the version's tags record")
        if recorded is not None:
            used = _used_by_build(recorded, set(built))
            outs = [out for out in recorded.outs if used is None or out.produced_by in used]
            for out in outs:
                objects[out.path] = DataObject(
                    out.path, out.md5, out.produced_by, out.used_by, f"{out.recorded_in}@{at[:12]}"
                )
            notes.insert(
                0, f"hashes recorded at {at[:12]}" + (" (the lock commit CI pushed)" if at == lock_commit else "")
            )
            if used is None:
                notes.append("the version names no out it built (mlops.ci_md5.*): every cached out of the project")
            elif len(outs) < len(recorded.outs):
                others = len(recorded.outs) - len(outs)
                notes.append(
                    f"{others} other cached out{'s' if others > 1 else ''} of the project, not used by this build, left out"
                )
    elif commit:
        notes.append(f"commit {commit[:12]} is not in the clone at --repo: only the hashes the version's tags record")
    for path, md5 in built.items():
        known = objects.get(path)
        if known is None or known.md5 != md5:
            objects[path] = DataObject(
                path,
                md5,
                known.produced_by if known else "CI build",
                known.used_by if known else (),
                f"tag {CI_MD5_PREFIX}{path}",
            )
    return sorted(objects.values(), key=lambda item: item.path), "; ".join(notes)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _check_remote(
    project_root: Path, remote: str, data: list[DataObject]
) -> tuple[list[DataObject], str, CIHelpersError | None]:
    """Each object's presence on the remote, by existence calls only: a file's object; a
    directory's manifest and a bounded sample of the files it lists (every file when it lists no
    more than DIRECTORY_SAMPLE). When the remote cannot say, "unknown (...)" and its error."""
    endpoint = dvc.remote_endpoint(project_root, remote)
    try:
        with remote_objects(project_root, remote, endpoint) as store:
            manifests = store.manifests([item.md5 for item in data if item.md5.endswith(".dir")])
            wanted: dict[str, set[str]] = {}
            sampled: dict[str, str] = {}
            for item in data:
                manifest = manifests.get(item.md5)
                if manifest is None:  # a file, or a manifest neither the cache nor the remote holds
                    wanted[item.path] = {item.md5}
                    continue
                sample = sorted(manifest.files)[:DIRECTORY_SAMPLE]  # by hash: no part of the tree favoured
                wanted[item.path] = set(sample) | (set() if manifest.read_from_remote else {item.md5})
                if len(sample) < len(manifest.files):
                    sampled[item.path] = (
                        f"{HELD} (manifest and {len(sample)} of {_count(len(manifest.files), 'file')} asked)"
                    )
            asked = sorted(set().union(*wanted.values()))
            present: set[str] = set()
            for start in range(0, len(asked), _BATCH):
                present |= store.present(asked[start : start + _BATCH]).present
    except (InfrastructureError, ConfigError) as error:
        why = "remote unreachable" if isinstance(error, InfrastructureError) else "remote could not be asked"
        return [replace(item, held=f"unknown ({why})") for item in data], redact(endpoint), error
    checked = [
        replace(item, held=sampled.get(item.path, HELD) if wanted[item.path] <= present else NOT_HELD) for item in data
    ]
    return checked, redact(endpoint), None


def _moves(tracking_uri: str, model: str, pulls: _PullRequests, current: VersionRecord) -> list[AliasMoveRecord]:
    """Every recorded move, oldest first, then a row for each alias whose holder now is not where
    its last recorded move put it (moved or deleted by hand, or by another tool)."""
    moves = recorded_moves(tracking_uri, model)
    last: dict[str, str] = {}
    for entry in moves:
        last[str(entry.get("alias"))] = str(entry.get("version") or "")
    outside = {
        alias: current.holders.get(alias, "")
        for alias in sorted(set(last) | set(current.holders))
        if current.holders.get(alias, "") != last.get(alias, "")
    }
    versions = {str(entry.get("version")) for entry in moves} | {v for v in outside.values() if v}
    tags = tags_of_versions(tracking_uri, model, versions)
    tags[current.version] = current.tags

    def row(alias: str, version: str, previous: str | None, entry: dict, recorded: bool) -> AliasMoveRecord:
        version_tags = tags.get(version) or {}
        commit = version_tags.get(COMMIT_TAG) or entry.get("commit") or None
        return AliasMoveRecord(
            alias,
            version,
            previous,
            entry.get("at"),
            entry.get("by"),
            entry.get("reason") if recorded else OUTSIDE_MOVE,
            bool(entry.get("rolled_back")),
            commit,
            pulls.of(commit, version_tags.get(BRANCH_TAG))[0] if commit else None,
            redact(url) if (url := version_tags.get(CI_RUN_TAG)) else None,
            recorded,
        )

    records = [
        row(
            str(entry.get("alias")),
            str(entry.get("version") or ""),
            str(entry["previous"]) if entry.get("previous") else None,
            entry,
            True,
        )
        for entry in moves
    ]
    records += [row(alias, version, last.get(alias) or None, {}, False) for alias, version in outside.items()]
    return records


def _preflight(options: TraceOptions) -> tuple[Path, Path, str | None]:
    """(git root, project root, the remote to ask); refusals (exit 2) before anything is read."""
    git_root = git.require_git_repo(options.repo).resolve()
    if options.remote and not options.check_remote:
        raise ConfigError(
            f"--remote {options.remote} names the DVC remote to check, and --no-remote-check checks none; drop one of them"
        )
    if not _store_exists(options.tracking_uri):
        raise ConfigError(f"no MLflow registry at {redact(options.tracking_uri)}; pass --tracking-uri")
    check_tracking_server(options.tracking_uri)
    project_root = options.repo.resolve()
    remote = dvc.resolve_remote(project_root, options.remote) if options.remote else None
    return git_root, project_root, remote


def trace(options: TraceOptions) -> TraceResult:
    """The lineage of the version `options.spec` names; refusals (exit 2) before any remote is asked."""
    spec = parse_version_spec(options.spec)
    git_root, project_root, remote = _preflight(options)
    github = _GitHub(git_root, options.github_token)
    record = read_version(options.tracking_uri, spec.model, spec.alias, spec.version)
    commit_tag = _tag(record, COMMIT_TAG, "mlflow.source.git.commit")
    commit = (commit_history.full_commit(git_root, commit_tag) if commit_tag else None) or commit_tag
    branch = _tag(record, BRANCH_TAG)
    lock_commit = _tag(record, "mlops.lock_commit")
    pulls = _PullRequests(git_root, github)
    pull_request, pull_note = pulls.of(commit, branch)
    project = "" if project_root == git_root else project_root.relative_to(git_root).as_posix()
    data, data_note = _data(git_root, project, record, commit, lock_commit)
    shown_remote: str | None = None
    error: CIHelpersError | None = None
    if options.check_remote and data:
        try:
            remote = remote or dvc.resolve_remote(project_root, None)
        except ConfigError as refused:  # none configured: said after the rest
            data = [replace(item, held="unknown (remote could not be asked)") for item in data]
            error = refused
        else:
            data, shown_remote, error = _check_remote(project_root, remote, data)
    moves = _moves(options.tracking_uri, spec.model, pulls, record)
    lineage = Lineage(
        model=spec.model,
        version=record.version,
        asked=str(spec),
        aliases=record.aliases,
        run_id=record.run_id,
        experiment_id=record.experiment_id,
        source=redact(record.source) if record.source else None,
        commit=commit,
        branch=branch,
        lock_commit=lock_commit,
        ci_run_url=redact(url) if (url := _tag(record, CI_RUN_TAG)) else None,
        pull_request=pull_request,
        pull_request_note=pull_note,
        data=tuple(data),
        data_note=data_note,
        remote=shown_remote,
        moves=tuple(moves),
    )
    return TraceResult(lineage, error or github.error)
