"""The MLflow Model Registry: register CI-built models, move aliases with an auditable history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import ConfigError
from .tracking import _client, mlflow_errors

HISTORY_TAG = "mlops.alias_history.{alias}"
HISTORY_KEEP = 25


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
class AliasMove:
    name: str
    alias: str
    version: str
    previous: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}@{self.alias}"


def find_run_model(tracking_uri: str, run_id: str, artifact_path: str = "model") -> tuple[str, str | None]:
    """(source, model_id) of the model a run logged: its MLflow 3 logged model, else `<artifact_path>`
    under the run's artifacts (MLflow 2 scripts). ConfigError when the run logged no model."""
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        run = client.get_run(run_id)
        try:
            logged = list(
                client.search_logged_models(
                    experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
                )
            )
        except Exception:  # older servers have no logged models
            logged = []
        if logged:
            newest = max(logged, key=lambda model: model.creation_timestamp or 0)
            return f"models:/{newest.model_id}", newest.model_id
        names = {item.path for item in client.list_artifacts(run_id, artifact_path)}
        if f"{artifact_path}/MLmodel" in names:
            return f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}", None
    raise ConfigError(
        f"run {run_id} logged no model (no MLflow logged model, no '{artifact_path}/MLmodel' artifact); "
        "log one with mlflow.<flavor>.log_model in the training stage or pass --model-artifact-path"
    )


def _versions(client, name: str) -> list:
    return list(client.search_model_versions(f"name = '{name}'"))


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if "RESOURCE_DOES_NOT_EXIST" not in str(error.error_code):
            raise
        try:
            client.create_registered_model(name, tags={"mlops.managed_by": "mlops-actions"})
        except MlflowException as race:
            if "ALREADY_EXISTS" not in str(race.error_code):
                raise


def register_version(
    tracking_uri: str,
    name: str,
    source: str,
    run_id: str | None,
    tags: dict[str, str],
    model_id: str | None = None,
    reuse_key: tuple[str, str] | None = None,
    reuse_only: bool = False,
) -> RegisteredVersion:
    """Create a model version with all its tags in one call (never half-registered).

    With reuse_key=(tag, value), an existing version carrying that tag is returned instead, so a
    re-run for the same commit creates no duplicate.
    """
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        _ensure_registered_model(client, name)
        if reuse_key:
            for version in sorted(_versions(client, name), key=lambda v: int(v.version)):
                if version.tags.get(reuse_key[0]) == reuse_key[1]:
                    return RegisteredVersion(name, str(version.version), version.source, version.run_id, True)
        if reuse_only:
            raise ConfigError(
                f"no version of '{name}' matches {reuse_key[0] if reuse_key else 'the outputs'} and this run logged no model; "
                "force the training stage to run once"
            )
        version = client.create_model_version(
            name, source, run_id=run_id, tags=tags, model_id=model_id, await_creation_for=120
        )
        return RegisteredVersion(name, str(version.version), source, run_id, False)


def _actor() -> str:
    """Who moved the alias: the GitHub actor on Actions, else the local user."""
    import getpass
    import os

    try:
        return os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


def _history(client, name: str, alias: str) -> list[dict]:
    model = client.get_registered_model(name)
    raw = (model.tags or {}).get(HISTORY_TAG.format(alias=alias))
    try:
        return json.loads(raw) if raw else []
    except ValueError:
        return []


def _alias_holder(client, name: str, alias: str) -> str | None:
    model = client.get_registered_model(name)
    return (model.aliases or {}).get(alias)


def set_alias(tracking_uri: str, name: str, alias: str, version: str, commit: str | None, reason: str) -> AliasMove:
    """Point `alias` at `version` and append the move to the alias history tag."""
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        previous = _alias_holder(client, name, alias)
        previous = str(previous) if previous is not None else None
        client.set_registered_model_alias(name, alias, version)
        if previous != str(version):
            history = _history(client, name, alias)
            history.append(
                {
                    "version": str(version),
                    "previous": previous,
                    "commit": commit,
                    "reason": reason,
                    "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "by": _actor(),
                }
            )
            client.set_registered_model_tag(name, HISTORY_TAG.format(alias=alias), json.dumps(history[-HISTORY_KEEP:]))
        return AliasMove(name, alias, str(version), previous)


def version_metrics(tracking_uri: str, name: str, version: str) -> dict[str, float]:
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        model_version = client.get_model_version(name, version)
        if not model_version.run_id:
            return {}
        return dict(client.get_run(model_version.run_id).data.metrics)


def resolve_alias(tracking_uri: str, name: str, alias: str) -> str:
    from mlflow.exceptions import MlflowException

    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        try:
            return str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error.error_code) or "INVALID_PARAMETER" in str(error.error_code):
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
        history = _history(client, name, alias)
        stack = _undo_stack(history)
        if not stack or not stack[-1].get("previous"):
            raise ConfigError(f"alias '{alias}' of model '{name}' has no earlier holder to roll back to")
        target = stack[-1]["previous"]
        client.set_registered_model_alias(name, alias, target)
        history.append(
            {
                "version": target,
                "previous": current,
                "commit": None,
                "reason": "rollback",
                "rolled_back": True,
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "by": _actor(),
            }
        )
        client.set_registered_model_tag(name, HISTORY_TAG.format(alias=alias), json.dumps(history[-HISTORY_KEEP:]))
        return AliasMove(name, alias, target, current)


def transition_stage(tracking_uri: str, name: str, version: str, stage: str) -> None:
    """Legacy stages (deprecated by MLflow since 2.9); only when asked for."""
    import warnings

    with mlflow_errors(tracking_uri), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _client(tracking_uri).transition_model_version_stage(name, version, stage)
