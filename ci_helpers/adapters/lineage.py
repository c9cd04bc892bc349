"""What the MLflow registry records about a version's origin, read only: the version a spec names,
its tags and run, and every recorded move of the model's aliases, in the order they were made."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

from ..errors import ConfigError
from .registry import HISTORY_TAG, MOVE_TAG_PREFIX
from .tracking import _client, mlflow_errors

_MOVE_PREFIX = MOVE_TAG_PREFIX.split("{", 1)[0]  # "mlops.alias_move."
_HISTORY_PREFIX, _HISTORY_SUFFIX = HISTORY_TAG.split("{alias}")


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    aliases: tuple[str, ...]
    source: str | None
    run_id: str | None
    tags: dict[str, str]
    run_tags: dict[str, str]
    experiment_id: str | None


@dataclass(frozen=True)
class RecordedMove:
    """One alias move as recorded in the registered model's tags (see adapters/registry._move)."""

    alias: str
    order: tuple[int, str]  # legacy list entries first, then the per-move tags by their time key
    entry: dict


def _names_nothing(error: BaseException) -> bool:
    code = str(getattr(error, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or "INVALID_PARAMETER" in code


def read_version(tracking_uri: str, model: str, alias: str | None, version: str | None) -> VersionRecord:
    """The version `alias` points at (or `version`, or the newest one), with its tags and its run's
    tags; ConfigError naming what does not exist."""
    from mlflow.exceptions import MlflowException

    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        try:
            registered = client.get_registered_model(model)
        except MlflowException as error:
            if _names_nothing(error):
                raise ConfigError(
                    f"model '{model}' is not registered on {_shown(tracking_uri)}; check the name, or pass the "
                    "registry that holds it with --tracking-uri"
                ) from None
            raise
        aliases = {name: str(number) for name, number in (registered.aliases or {}).items()}
        if alias:
            if alias not in aliases:
                known = ", ".join(sorted(aliases)) or "none"
                raise ConfigError(f"model '{model}' has no alias '{alias}' (its aliases: {known}); pass one of them")
            version = aliases[alias]
        elif version is None:
            numbers = [int(v.version) for v in client.search_model_versions(f"name = '{model}'")]
            if not numbers:
                raise ConfigError(f"model '{model}' has no versions; register one first or pass another model")
            version = str(max(numbers))
        try:
            found = client.get_model_version(model, version)
        except MlflowException as error:
            if _names_nothing(error):
                raise ConfigError(
                    f"model '{model}' has no version {version}; pass an existing one (MODEL/VERSION) or an alias"
                ) from None
            raise
        run_tags: dict[str, str] = {}
        experiment_id = None
        if found.run_id:
            with contextlib.suppress(MlflowException):  # a deleted run: the version's own tags remain
                run = client.get_run(found.run_id)
                run_tags, experiment_id = dict(run.data.tags or {}), run.info.experiment_id
        return VersionRecord(
            model,
            str(found.version),
            tuple(sorted(name for name, number in aliases.items() if number == str(found.version))),
            found.source,
            found.run_id,
            dict(found.tags or {}),
            run_tags,
            experiment_id,
        )


def _shown(tracking_uri: str) -> str:
    from .redact import redact

    return redact(tracking_uri)


def recorded_moves(tracking_uri: str, model: str) -> list[RecordedMove]:
    """Every move of every alias of `model` that mlops-actions recorded, oldest first."""
    with mlflow_errors(tracking_uri):
        tags = dict(_client(tracking_uri).get_registered_model(model).tags or {})
    moves: list[RecordedMove] = []
    for key, value in tags.items():
        if key.startswith(_HISTORY_PREFIX) and key.endswith(_HISTORY_SUFFIX):
            alias = key[len(_HISTORY_PREFIX) : len(key) - len(_HISTORY_SUFFIX)]
            with contextlib.suppress(ValueError, TypeError):
                for index, entry in enumerate(json.loads(value) or []):
                    if isinstance(entry, dict):
                        moves.append(RecordedMove(alias, (0, f"{entry.get('at') or ''}.{index:06d}"), entry))
        elif key.startswith(_MOVE_PREFIX):
            alias, _, stamp = key[len(_MOVE_PREFIX) :].partition(".")
            with contextlib.suppress(ValueError):
                entry = json.loads(value)
                if isinstance(entry, dict) and alias and stamp:
                    moves.append(RecordedMove(alias, (1, stamp), entry))
    return sorted(moves, key=lambda move: move.order)


def version_tags(tracking_uri: str, model: str, versions: set[str]) -> dict[str, dict[str, str]]:
    """The tags of each of `versions` that still exists (a deleted one is left out)."""
    with mlflow_errors(tracking_uri):
        found = _client(tracking_uri).search_model_versions(f"name = '{model}'")
    return {str(v.version): dict(v.tags or {}) for v in found if str(v.version) in versions}
