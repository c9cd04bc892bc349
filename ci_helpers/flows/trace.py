"""`trace`: from a registered model version back to where it came from, read only.

The version (by alias, number, or the newest) and its run come from MLflow; the commit, branch, CI
run and lock commit from the tags master-build put on them; the pull request from the commit's own
message or the merge commit that brought it into its branch, in the clone (the GitHub API only
when a token is given and no message names one); the data from the DVC outs recorded at the lock
commit, read from git; whether the DVC remote still holds each object from existence calls on it
(never a listing of the whole remote); the alias moves from the registered model's tags.

MLflow that cannot be reached stops the trace (exit 3). A DVC remote that cannot be asked does not:
its objects show as "unknown (...)", never "held", and the command then exits with the remote's
error (3 unreachable, 2 refused or not configured), after the rest is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..adapters import commit_history, dvc, git
from ..adapters.github_api import api_url_from_env
from ..adapters.github_pulls import CommitPullsClient, pull_that_brought, repository_from_origin
from ..adapters.http_api import HostedAPIError
from ..adapters.lineage import VersionRecord, read_version, recorded_moves, version_tags
from ..adapters.recorded_outs import recorded_outs
from ..adapters.redact import redact
from ..adapters.tracking import BRANCH_TAG, COMMIT_TAG, check_tracking_server
from ..errors import CIHelpersError, ConfigError, InfrastructureError
from ..lineage import (
    HELD,
    NOT_HELD,
    AliasMoveRecord,
    DataObject,
    Lineage,
    PullRequest,
    parse_version_spec,
    pull_request_in_message,
)
from ..push_check import verify_pushed

CI_MD5_PREFIX = "mlops.ci_md5."


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
    remote_error: CIHelpersError | None = None  # the remote could not say: the exit code after the output


def _tag(record: VersionRecord, *keys: str) -> str | None:
    """The first of `keys` set on the version, else on its run."""
    for tags in (record.tags, record.run_tags):
        for key in keys:
            if tags.get(key):
                return tags[key]
    return None


class _PullRequests:
    """The request that brought each commit in, asked once per commit."""

    def __init__(self, repo: Path, branch: str | None, token: str | None) -> None:
        self._repo, self._branch, self._token = repo, branch, token
        self._tip = commit_history.branch_ref(repo, branch)
        self._seen: dict[str, tuple[PullRequest | None, str]] = {}

    def of(self, commit: str | None) -> tuple[PullRequest | None, str]:
        if not commit:
            return None, "unknown: the version records no commit"
        if commit not in self._seen:
            self._seen[commit] = self._find(commit)
        return self._seen[commit]

    def _find(self, commit: str) -> tuple[PullRequest | None, str]:
        in_clone = commit_history.holds_commit(self._repo, commit)
        if in_clone:
            candidates = [commit]
            bringing = commit_history.bringing_commit(self._repo, commit, self._tip) if self._tip else None
            if bringing and bringing != commit:
                candidates.append(bringing)
            for candidate in candidates:
                found = pull_request_in_message(commit_history.commit_message(self._repo, candidate) or "", candidate)
                if found:
                    return found, f"from the {found.source} of {candidate[:12]}"
        if self._token:
            return self._from_api(commit)
        where = (
            "no merge or squash commit message names one"
            if in_clone
            else f"commit {commit[:12]} is not in the clone at --repo (fetch it)"
        )
        return None, f"unknown: {where}; a GitHub token (GITHUB_TOKEN) lets trace ask the API"

    def _from_api(self, commit: str) -> tuple[PullRequest | None, str]:
        import os

        repository = os.environ.get("GITHUB_REPOSITORY") or repository_from_origin(git.remote_url(self._repo))
        if not repository:
            return None, "unknown: no GITHUB_REPOSITORY and origin is not a github.com URL, so the API cannot be asked"
        try:
            client = CommitPullsClient(api_url_from_env(), repository, self._token or "")
            pull = pull_that_brought(client.pulls_of_commit(commit), self._branch)
        except HostedAPIError as error:
            return None, f"unknown: the GitHub API could not say ({redact(str(error))})"
        if pull is None:
            return None, f"unknown: the GitHub API knows no merged pull request with {commit[:12]}"
        return (
            PullRequest(pull.number, "pull request", "GitHub API", commit, pull.title, pull.url),
            "from the GitHub API",
        )


def _data(
    repo: Path, record: VersionRecord, commit: str | None, lock_commit: str | None
) -> tuple[list[DataObject], str]:
    """The outs recorded at the lock commit (CI's own dvc.lock), else at the built commit, with the
    hashes the version's tags say CI built and pushed over them."""
    built = {key.removeprefix(CI_MD5_PREFIX): md5 for key, md5 in record.tags.items() if key.startswith(CI_MD5_PREFIX)}
    notes = []
    at = next((c for c in (lock_commit, commit) if c and commit_history.holds_commit(repo, c)), None)
    objects: dict[str, DataObject] = {}
    if at:
        where = f"dvc.lock@{at[:12]}"
        for out in recorded_outs(repo, at):
            objects[out.path] = DataObject(out.path, out.md5, out.produced_by, out.used_by, where)
        notes.append(f"hashes from {where}" + (" (the lock commit CI pushed)" if at == lock_commit else ""))
        if lock_commit and at != lock_commit:
            notes.append(f"lock commit {lock_commit[:12]} is not in the clone")
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


def _check_remote(
    repo: Path, remote_option: str | None, data: list[DataObject]
) -> tuple[list[DataObject], str | None, CIHelpersError | None]:
    """Each object's presence on the remote, asked object by object (a directory: its manifest and
    every file it lists); when the remote cannot say, "unknown (...)" and its error."""
    remote, endpoint = remote_option, None
    try:
        remote = dvc.resolve_remote(repo, remote_option)
        endpoint = dvc.remote_endpoint(repo, remote)
        check = verify_pushed(repo, remote, endpoint, {item.path: item.md5 for item in data}, deep=True)
    except (InfrastructureError, ConfigError) as error:
        why = "remote unreachable" if isinstance(error, InfrastructureError) else "remote could not be asked"
        unknown = [replace(item, held=f"unknown ({why})") for item in data]
        return unknown, redact(endpoint) if endpoint else remote, error
    missing = set(check.missing)
    checked = [replace(item, held=NOT_HELD if item.path in missing else HELD) for item in data]
    return checked, redact(endpoint or remote), None


def _moves(tracking_uri: str, model: str, pulls: _PullRequests, current: VersionRecord) -> list[AliasMoveRecord]:
    moves = recorded_moves(tracking_uri, model)
    tags = version_tags(tracking_uri, model, {str(move.entry.get("version")) for move in moves})
    tags[current.version] = current.tags
    records = []
    for move in moves:
        entry = move.entry
        version = str(entry.get("version") or "")
        commit = (tags.get(version) or {}).get(COMMIT_TAG) or entry.get("commit") or None
        records.append(
            AliasMoveRecord(
                move.alias,
                version,
                str(entry["previous"]) if entry.get("previous") else None,
                entry.get("at"),
                entry.get("by"),
                entry.get("reason"),
                bool(entry.get("rolled_back")),
                commit,
                pulls.of(commit)[0],
            )
        )
    return records


def trace(options: TraceOptions) -> TraceResult:
    """The lineage of the version `options.spec` names; refusals (exit 2) before any remote is asked."""
    spec = parse_version_spec(options.spec)
    repo = options.repo
    git.require_git_repo(repo)
    check_tracking_server(options.tracking_uri)
    record = read_version(options.tracking_uri, spec.model, spec.alias, spec.version)
    commit_tag = _tag(record, COMMIT_TAG, "mlflow.source.git.commit")
    commit = commit_history.full_commit(repo, commit_tag) if commit_tag else None
    commit = commit or commit_tag
    branch = _tag(record, BRANCH_TAG)
    lock_commit = _tag(record, "mlops.lock_commit")
    pulls = _PullRequests(repo, branch, options.github_token)
    pull_request, pull_note = pulls.of(commit)
    data, data_note = _data(repo, record, commit, lock_commit)
    remote, remote_error = None, None
    if options.check_remote and data:
        data, remote, remote_error = _check_remote(repo, options.remote, data)
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
        ci_run_url=redact(url) if (url := _tag(record, "mlops.ci_run_url")) else None,
        pull_request=pull_request,
        pull_request_note=pull_note,
        data=tuple(data),
        data_note=data_note,
        remote=remote,
        moves=tuple(moves),
    )
    return TraceResult(lineage, remote_error)
