"""What a build could have changed, read from the services themselves: the S3 objects, the git
remote's refs, the registry and the MLflow runs. Tests compare it before and after a refusal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .project import sh
from .servers import s3_client


@dataclass(frozen=True)
class WorldState:
    s3_keys: tuple[str, ...]
    origin_refs: tuple[str, ...]
    versions: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    runs: tuple[tuple[str, str], ...]  # (run id, status)


def s3_keys(endpoint: str, bucket: str) -> tuple[str, ...]:
    client, keys = s3_client(endpoint), []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return tuple(sorted(keys))


def origin_refs(origin: Path) -> tuple[str, ...]:
    return tuple(sh(["git", "for-each-ref", "--format=%(refname) %(objectname)"], origin).stdout.split("\n"))


def runs_of(tracking_uri: str, experiment: str) -> tuple[tuple[str, str], ...]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return tuple(sorted((run.info.run_id, run.info.status) for run in runs))


def registry_of(tracking_uri: str, name: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    if not [model for model in client.search_registered_models() if model.name == name]:
        return (), ()
    versions = tuple(sorted(str(v.version) for v in client.search_model_versions(f"name = '{name}'")))
    aliases = tuple(
        sorted((alias, str(version)) for alias, version in client.get_registered_model(name).aliases.items())
    )
    return versions, aliases


def world_state(project, tracking_uri: str, name: str, experiment: str) -> WorldState:
    versions, aliases = registry_of(tracking_uri, name)
    return WorldState(
        s3_keys(project.s3_endpoint, project.bucket),
        origin_refs(project.origin),
        versions,
        aliases,
        runs_of(tracking_uri, experiment),
    )
