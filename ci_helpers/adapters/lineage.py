"""What the MLflow registry records about a version's origin, read only: the version a spec names,
its tags and run, and every recorded move of the model's aliases, in the order they were made."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from .registry import _history, _names_nothing
from .tracking import _client, mlflow_errors


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: str
    aliases: tuple[str, ...]  # the aliases on this version
    source: str | None
    run_id: str | None
    tags: dict[str, str]
    run_tags: dict[str, str]
    experiment_id: str | None
    holders: dict[str, str] = field(default_factory=dict)  # every alias of the model -> its version now


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
            try:
                run = client.get_run(found.run_id)
            except MlflowException as error:
                if not _names_nothing(error):
                    raise
            else:  # a run deleted for good names nothing: the version's own tags remain
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
            aliases,
        )


def _shown(tracking_uri: str) -> str:
    from .redact import redact

    return redact(tracking_uri)


def recorded_moves(tracking_uri: str, model: str) -> list[dict]:
    """Every move of every alias of `model` that mlops-actions recorded, oldest first, each naming
    its `alias` (adapters/registry's history)."""
    with mlflow_errors(tracking_uri):
        return _history(_client(tracking_uri), model)


def tags_of_versions(tracking_uri: str, model: str, versions: set[str]) -> dict[str, dict[str, str]]:
    """The tags of each of `versions` that still exists (a deleted one is left out), in one search."""
    with mlflow_errors(tracking_uri):
        found = _client(tracking_uri).search_model_versions(f"name = '{model}'")
    return {str(v.version): dict(v.tags or {}) for v in found if str(v.version) in versions}
