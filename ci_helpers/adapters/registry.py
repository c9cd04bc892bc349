"""The MLflow Model Registry: register CI-built models, move aliases with an auditable history."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import ConfigError
from .mlflow_server import require_logged_models, supports_logged_models
from .registry_rest import alias_version_tags_over_rest, answers_over_rest
from .tracking import (
    COMMIT_TAG,
    _client,
    metric_names,
    mlflow_errors,
    one_bounded_attempt,
    process_default_tracking_uri,
)

HISTORY_TAG = "mlops.alias_history.{alias}"  # the legacy single-tag history, still read
MOVE_TAG_PREFIX = "mlops.alias_move.{alias}."  # one tag per move: concurrent moves all kept
_HISTORY_PREFIX, _HISTORY_SUFFIX = HISTORY_TAG.split("{alias}")
_MOVE_PREFIX = MOVE_TAG_PREFIX.split("{alias}", maxsplit=1)[0]
_CONVERGE_ROUNDS = 5
_CONSIDERED_MOVES = 20  # recent build moves that take part in "the newest commit wins"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    source: str
    run_id: str | None
    reused: bool

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelVersionRef:
    name: str
    version: str


@dataclass(frozen=True)
class AliasMove:
    name: str
    alias: str
    version: str
    previous: str | None
    superseded_by: str | None = None  # the newer commit whose version keeps the alias

    @property
    def moved(self) -> bool:
        return self.superseded_by is None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


def run_model(tracking_uri: str, run_id: str, artifact_path: str = "model") -> tuple[str, str | None] | None:
    """(source, model_id) of the model a run logged: its MLflow 3 logged model, else `<artifact_path>`
    under the run's artifacts (MLflow 2 scripts, `log_model(artifact_path=...)`); None when the run
    logged no model. On an MLflow 2.x server only the run's artifacts are asked (it has no logged
    models), by their own URI: MLflow 3's `runs:/` listing would search logged models."""
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        run = _get_run(client, run_id)
        if supports_logged_models(tracking_uri):
            try:
                logged = list(
                    client.search_logged_models(
                        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
                    )
                )
            except Exception:  # a server that says no version may still lack them
                logged = []
            if logged:
                newest = max(logged, key=lambda model: model.creation_timestamp or 0)
                return f"models:/{newest.model_id}", newest.model_id
        source = f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}"
        if _holds_mlmodel(tracking_uri, source):
            return source, None
    return None


def _holds_mlmodel(tracking_uri: str, artifact_uri: str) -> bool:
    """An `MLmodel` file lies directly under `artifact_uri` (a run's artifact folder)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    with process_default_tracking_uri(tracking_uri):  # mlflow-artifacts:/ resolves against the default
        listed = get_artifact_repository(artifact_uri).list_artifacts()
    return any(item.path.rsplit("/", 1)[-1] == "MLmodel" and not item.is_dir for item in listed)


def _names_nothing(error) -> bool:
    """MLflow's answer to an id or name that does not exist (or cannot: a malformed one)."""
    code = str(getattr(error, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or "INVALID_PARAMETER" in code


def _get_run(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if _names_nothing(error):
            raise ConfigError(
                f"MLflow run '{run_id}' does not exist on this tracking server; pass the id of an existing run to --run-id"
            ) from None
        raise


def find_run_model(tracking_uri: str, run_id: str, artifact_path: str = "model") -> tuple[str, str | None]:
    """run_model(), or a ConfigError when the run logged no model."""
    found = run_model(tracking_uri, run_id, artifact_path)
    if found is None:
        raise ConfigError(
            f"run {run_id} logged no model (no MLflow logged model, no '{artifact_path}/MLmodel' artifact); "
            "log one with mlflow.<flavor>.log_model in the training stage or pass --model-artifact-path"
        )
    return found


_URI_SCHEMES = (
    "models:/",
    "runs:/",
    "mlflow-artifacts:/",
    "s3://",
    "gs://",
    "wasbs://",
    "abfss://",
    "file://",
    "dbfs:/",
    "hdfs://",
    "http://",
    "https://",
)


def check_model_uri(tracking_uri: str, uri: str) -> tuple[str, str | None, str | None]:
    """(source, model_id, run_id) for --model-uri, refused unless what it names exists. On an
    MLflow 2.x server a `runs:/<id>/<path>` is registered as MLflow 2 does: the run's own artifact
    URI, with the run; a logged model (models:/m-...) is refused there, before any write."""
    from mlflow.exceptions import MlflowException

    if not uri.startswith(_URI_SCHEMES) or uri.rstrip("/").endswith((":", ":/")):
        raise ConfigError(
            f"invalid --model-uri '{uri}': use models:/m-<id>, runs:/<run_id>/<path> or a storage URI such as s3://bucket/path"
        )
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        if uri.startswith("models:/m-"):
            require_logged_models(
                tracking_uri, f"--model-uri {uri}", "pass runs:/<run_id>/<path> or the model's storage URI instead"
            )
            model_id = uri.removeprefix("models:/").split("/")[0]
            try:
                client.get_logged_model(model_id)
            except MlflowException:
                raise ConfigError(f"--model-uri {uri}: no logged model '{model_id}' on this tracking server") from None
            return uri, model_id, None
        if uri.startswith("models:/"):
            raise ConfigError(
                f"--model-uri {uri}: already a registry URI; pass the logged model (models:/m-<id>) or its run"
            )
        if uri.startswith("runs:/"):
            run_id = uri.removeprefix("runs:/").split("/")[0]
            if not run_id:
                raise ConfigError(f"invalid --model-uri '{uri}': runs:/ needs a run id, e.g. runs:/<run_id>/model")
            run = _get_run(client, run_id)
            if not supports_logged_models(tracking_uri):
                path = uri.removeprefix("runs:/").partition("/")[2].strip("/")
                source = f"{run.info.artifact_uri.rstrip('/')}/{path}".rstrip("/")
                if not _holds_mlmodel(tracking_uri, source):
                    raise ConfigError(
                        f"--model-uri {uri}: run {run_id} has no model at '{path or '(its root)'}' (no MLmodel "
                        "there); pass the artifact path its training logged the model under, e.g. runs:/<run_id>/model"
                    )
                return source, None, run_id
    return uri, None, None


def _versions(client, name: str) -> list:
    return list(client.search_model_versions(f"name = '{name}'"))


def _ensure_registered_model(client, name: str) -> bool:
    """Create the registered model unless it exists; True when this call created it."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return False
    except MlflowException as error:
        if "RESOURCE_DOES_NOT_EXIST" not in str(error.error_code):
            raise
        try:
            client.create_registered_model(name, tags={"mlops.managed_by": "mlops-actions"})
            return True
        except MlflowException as race:
            if "ALREADY_EXISTS" not in str(race.error_code):
                raise
            return False


def _drop_if_empty(client, name: str) -> None:
    """Remove a registered model this call created when no version could be added to it."""
    try:
        if not _versions(client, name):
            client.delete_registered_model(name)
    except Exception:  # best effort: the original error is the one to report
        pass


def register_version(
    tracking_uri: str,
    name: str,
    source: str,
    run_id: str | None,
    tags: dict[str, str],
    model_id: str | None = None,
    reuse_key: tuple[str, str] | None = None,
) -> RegisteredVersion:
    """Create a model version with all its tags in one call (never half-registered).

    With reuse_key=(tag, value), an existing version carrying that tag is returned instead, so a
    re-run for the same commit creates no duplicate.
    """
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        created = _ensure_registered_model(client, name)
        try:
            if reuse_key and (existing := _version_with_tag(client, name, *reuse_key)):
                return existing
            if model_id and not supports_logged_models(tracking_uri):
                model_id = None  # an MLflow 2.x server has no logged models to link
            with process_default_tracking_uri(tracking_uri):
                version = client.create_model_version(
                    name, source, run_id=run_id, tags=tags, model_id=model_id, await_creation_for=120
                )
        except BaseException:
            if created:
                with contextlib.suppress(Exception):  # a cleanup failure never hides the cause
                    _drop_if_empty(client, name)
            raise
        return RegisteredVersion(name, str(version.version), source, run_id, False)


def _version_with_tag(client, name: str, key: str, value: str) -> RegisteredVersion | None:
    """The oldest version of `name` whose tag `key` is `value`."""
    for version in sorted(_versions(client, name), key=lambda v: int(v.version)):
        if version.tags.get(key) == value:
            return RegisteredVersion(name, str(version.version), version.source, version.run_id, True)
    return None


def version_with_tag(tracking_uri: str, name: str, key: str, value: str) -> RegisteredVersion | None:
    """The version of `name` already registered for `value` (a commit, an outputs fingerprint), if any."""
    from mlflow.exceptions import MlflowException

    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        try:
            return _version_with_tag(client, name, key, value)
        except MlflowException as error:
            if _names_nothing(error):
                return None
            raise


def version_tags(tracking_uri: str, name: str, version: str) -> dict[str, str]:
    with mlflow_errors(tracking_uri):
        return dict(_client(tracking_uri).get_model_version(name, version).tags or {})


def tag_version(tracking_uri: str, name: str, version: str, tags: dict[str, str]) -> None:
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)


def _actor() -> str:
    """Who moved the alias: the GitHub actor on Actions, else the local user."""
    import getpass
    import os

    try:
        return os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


def _move_key(alias: str) -> str:
    """A tag key of its own per move, ordered by time: concurrent moves never overwrite each other."""
    return f"{MOVE_TAG_PREFIX.format(alias=alias)}{time.time_ns():020d}.{secrets.token_hex(3)}"


def _history(client, name: str, alias: str | None = None) -> list[dict]:
    """Every recorded move of `alias`, oldest first: the legacy JSON list, then one tag per move.
    Without an alias, the moves of every alias, each entry naming its `alias`, in the order they
    were made (the legacy lists by their time, then the per-move tags by their time key)."""
    tags = client.get_registered_model(name).tags or {}
    legacy: list[tuple[tuple, dict]] = []
    moves: list[tuple[str, dict]] = []
    for key, value in tags.items():
        if key.startswith(_HISTORY_PREFIX) and key.endswith(_HISTORY_SUFFIX):
            owner = key[len(_HISTORY_PREFIX) : len(key) - len(_HISTORY_SUFFIX)]
            if alias not in (None, owner):
                continue
            with contextlib.suppress(ValueError, TypeError):
                for index, entry in enumerate(json.loads(value) if value else []):
                    if alias is None and isinstance(entry, dict):
                        legacy.append(((entry.get("at") or "", index), {**entry, "alias": owner}))
                    elif alias is not None:
                        legacy.append(((index,), entry))
        elif key.startswith(_MOVE_PREFIX):
            owner, _, stamp = key[len(_MOVE_PREFIX) :].partition(".")
            if alias not in (None, owner) or not stamp:
                continue
            try:
                entry = json.loads(value)
            except ValueError:
                continue
            if alias is None and isinstance(entry, dict):
                moves.append((stamp, {**entry, "alias": owner}))
            elif alias is not None:
                moves.append((stamp, entry))
    return [entry for _, entry in sorted(legacy, key=lambda item: item[0])] + [
        entry for _, entry in sorted(moves, key=lambda item: item[0])
    ]


def alias_history(tracking_uri: str, name: str, alias: str) -> list[dict]:
    """The moves of `alias` as recorded by mlops-actions, oldest first."""
    with mlflow_errors(tracking_uri):
        return _history(_client(tracking_uri), name, alias)


def _record_move(client, name: str, alias: str, entry: dict) -> None:
    entry = {**entry, "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "by": _actor()}
    client.set_registered_model_tag(name, _move_key(alias), json.dumps(entry))


def _alias_holder(client, name: str, alias: str) -> str | None:
    holder = (client.get_registered_model(name).aliases or {}).get(alias)
    return str(holder) if holder is not None else None


def _move(client, name: str, alias: str, version: str, commit: str | None, reason: str) -> str | None:
    """Record the move, then make it; returns the previous holder."""
    previous = _alias_holder(client, name, alias)
    if previous != str(version):
        _record_move(
            client, name, alias, {"version": str(version), "previous": previous, "commit": commit, "reason": reason}
        )
    client.set_registered_model_alias(name, alias, version)
    return previous


def alias_version_tags(tracking_uri: str, name: str, alias: str) -> tuple[str, dict[str, str]] | None:
    """(version, its tags) of the version behind `alias`, in one registry call; None when the
    model or the alias does not exist yet. An http(s) server is asked without importing MLflow
    (registry_rest): this is all an unchanged scheduled run does."""
    if answers_over_rest(tracking_uri):
        return alias_version_tags_over_rest(tracking_uri, name, alias)
    from mlflow.exceptions import MlflowException

    with mlflow_errors(tracking_uri):
        try:
            found = _client(tracking_uri).get_model_version_by_alias(name, alias)
        except MlflowException as error:
            if _names_nothing(error):
                return None
            raise
        return str(found.version), dict(found.tags or {})


def set_alias(tracking_uri: str, name: str, alias: str, version: str, commit: str | None, reason: str) -> AliasMove:
    """Point `alias` at `version` unconditionally, recording the move."""
    with mlflow_errors(tracking_uri):
        previous = _move(_client(tracking_uri), name, alias, version, commit, reason)
        return AliasMove(name, alias, str(version), previous)


def _version_commit(client, name: str, version: str) -> str | None:
    return (client.get_model_version(name, version).tags or {}).get(COMMIT_TAG)


def alias_holder(tracking_uri: str, name: str, alias: str) -> tuple[str, str | None] | None:
    """(version, the commit it was built from) of the version `alias` is on; None when the model
    or the alias does not exist yet."""
    from mlflow.exceptions import MlflowException

    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        try:
            holder = _alias_holder(client, name, alias)
        except MlflowException as error:
            if _names_nothing(error):
                return None
            raise
        return (holder, _version_commit(client, name, holder)) if holder else None


def _newest(commits: list[str], is_ancestor: Callable[[str, str], bool]) -> str | None:
    """The commit that every other one is an ancestor of, or None when the history diverges."""
    for candidate in commits:
        if all(other == candidate or is_ancestor(other, candidate) for other in commits):
            return candidate
    return None


def _build_moves_in_effect(history: list[dict]) -> list[dict]:
    """Moves made by builds (they carry a commit) since the latest rollback."""
    since: list[dict] = []
    for entry in history:
        if entry.get("rolled_back"):
            since = []
        elif entry.get("commit"):
            since.append(entry)
    return since


def move_alias_in_commit_order(
    tracking_uri: str,
    name: str,
    alias: str,
    version: str,
    commit: str,
    reason: str,
    is_ancestor: Callable[[str, str], bool],
) -> AliasMove:
    """Move `alias` to the version built from `commit` only if the holder was built from an ancestor
    of `commit` (or carries no commit); else leave it and say which newer commit holds it.

    Concurrent builds each record their move, then converge: the alias ends on the version of the
    newest commit among the recorded build moves, whatever order the builds finish in.
    """
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        holder = _alias_holder(client, name, alias)
        holder_commit = _version_commit(client, name, holder) if holder else None
        if holder and holder_commit and holder_commit != commit and not is_ancestor(holder_commit, commit):
            return AliasMove(name, alias, holder, holder, superseded_by=holder_commit)
        previous = _move(client, name, alias, version, commit, reason)
        for _ in range(_CONVERGE_ROUNDS):
            moves = _build_moves_in_effect(_history(client, name, alias))[-_CONSIDERED_MOVES:]
            newest = _newest(list(dict.fromkeys(entry["commit"] for entry in reversed(moves))), is_ancestor)
            if newest is None:
                break
            winner = next(entry["version"] for entry in reversed(moves) if entry["commit"] == newest)
            current = _alias_holder(client, name, alias)
            if current == winner:
                break
            _move(client, name, alias, winner, newest, f"newest build wins over {commit[:12]}")
        final = _alias_holder(client, name, alias)
        if final != str(version):
            final_commit = _version_commit(client, name, final) if final else None
            return AliasMove(name, alias, final or "", previous, superseded_by=final_commit)
        return AliasMove(name, alias, str(version), previous)


def version_metrics(tracking_uri: str, name: str, version: str) -> dict[str, float]:
    """The metrics of the run behind a model version, under the project's own names (the keys
    MLflow could not take as they were are mapped back through the run's `mlops.metric_keys`)."""
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        model_version = client.get_model_version(name, version)
        if not model_version.run_id:
            return {}
        data = client.get_run(model_version.run_id).data
        names = metric_names(data.tags)
        return {names.get(key, key): value for key, value in data.metrics.items()}


def resolve_alias(tracking_uri: str, name: str, alias: str) -> str:
    from mlflow.exceptions import MlflowException

    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        try:
            return str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException as error:
            if _names_nothing(error):
                raise ConfigError(
                    f"model '{name}' has no alias '{alias}' (or does not exist); register it first or pick an existing alias"
                ) from None
            raise


def _undo_stack(history: list[dict]) -> list[dict]:
    """The moves still in effect: each rollback cancels the latest move before it."""
    stack: list[dict] = []
    for entry in history:
        if entry.get("rolled_back"):
            if stack:
                stack.pop()
        else:
            stack.append(entry)
    return stack


def rollback_alias(tracking_uri: str, name: str, alias: str) -> AliasMove:
    """Move `alias` back to the version that held it before its latest move still in effect."""
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        current = resolve_alias(tracking_uri, name, alias)
        stack = _undo_stack(_history(client, name, alias))
        if not stack or not stack[-1].get("previous"):
            raise ConfigError(f"alias '{alias}' of model '{name}' has no earlier holder to roll back to")
        target = stack[-1]["previous"]
        _record_move(
            client,
            name,
            alias,
            {"version": target, "previous": current, "commit": None, "reason": "rollback", "rolled_back": True},
        )
        client.set_registered_model_alias(name, alias, target)
        return AliasMove(name, alias, target, current)


def transition_stage(tracking_uri: str, name: str, version: str, stage: str) -> None:
    """Legacy stages (deprecated by MLflow since 2.9); only when asked for."""
    import warnings

    with mlflow_errors(tracking_uri), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _client(tracking_uri).transition_model_version_stage(name, version, stage)


def registered_version_of_run(tracking_uri: str, run_id: str) -> ModelVersionRef | None:
    """The newest registry version created from `run_id`, in one bounded attempt; None when there
    is none or the registry cannot say (a link for the report, never a verdict)."""
    try:
        with one_bounded_attempt(), mlflow_errors(tracking_uri):
            versions = list(_client(tracking_uri).search_model_versions(f"run_id = '{run_id}'"))
    except Exception:  # the registry may be off, older, or unreachable: no link then
        return None
    if not versions:
        return None
    newest = max(versions, key=lambda v: (int(v.version) if str(v.version).isdigit() else 0, v.name))
    return ModelVersionRef(newest.name, str(newest.version))
