"""A registered model version's files as MLflow serves them, and its provenance statement, stored
as an artifact of the version's run."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError
from .tracking import _client, mlflow_errors, process_default_tracking_uri


@dataclass(frozen=True)
class VersionRecord:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _names_nothing(error) -> bool:
    code = str(getattr(error, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or "INVALID_PARAMETER" in code


def find_version(tracking_uri: str, name: str, alias: str | None = None, version: str | None = None) -> VersionRecord:
    """The version `name/version` or `name@alias`; ConfigError (exit 2) when it does not exist."""
    from mlflow.exceptions import MlflowException

    what = f"{name}@{alias}" if alias else f"{name}/{version}"
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        try:
            found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
        except MlflowException as error:
            if _names_nothing(error):
                raise ConfigError(
                    f"no model version {what} on this tracking server; pass an existing MODEL@ALIAS or MODEL/VERSION"
                ) from None
            raise
        return VersionRecord(name, str(found.version), found.run_id or None, found.source, dict(found.tags or {}))


def _scratch_parent() -> str | None:
    """The runner's temp folder on Actions (cleaned per job), else the system's."""
    import os

    folder = os.environ.get("RUNNER_TEMP")
    return folder if folder and Path(folder).is_dir() else None


@contextlib.contextmanager
def downloaded_version(tracking_uri: str, record: VersionRecord) -> Iterator[Path]:
    """The version's files, downloaded once through the registry (`models:/NAME/VERSION`, what a
    deploy job loads) into a scratch folder removed afterwards: the model's root folder, or the
    single file when the model is one file."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="mlops-model-", dir=_scratch_parent()) as folder:
        with mlflow_errors(tracking_uri), process_default_tracking_uri(tracking_uri):
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=record.uri, dst_path=folder, tracking_uri=tracking_uri
            )
        yield Path(local)


def run_started_on(tracking_uri: str, run_id: str | None) -> datetime | None:
    if not run_id:
        return None
    with mlflow_errors(tracking_uri):
        started = _client(tracking_uri).get_run(run_id).info.start_time
    return datetime.fromtimestamp(started / 1000, tz=timezone.utc) if started else None


def write_run_artifact(tracking_uri: str, run_id: str, artifact: str, data: bytes) -> None:
    """Store `data` at `artifact` (e.g. `provenance/statement.intoto.json`) in the run, replacing
    what was there (allowed on a FINISHED run)."""
    folder, _, name = artifact.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="mlops-statement-", dir=_scratch_parent()) as scratch:
        local = Path(scratch) / name
        local.write_bytes(data)
        with mlflow_errors(tracking_uri), process_default_tracking_uri(tracking_uri):
            _client(tracking_uri).log_artifact(run_id, str(local), artifact_path=folder or None)


def read_run_artifact(tracking_uri: str, run_id: str, artifact: str) -> bytes | None:
    """The bytes of `artifact` in the run; None when the run has no such artifact."""
    import mlflow.artifacts

    folder = artifact.rpartition("/")[0]
    with mlflow_errors(tracking_uri):
        listed = _client(tracking_uri).list_artifacts(run_id, folder or None)
        if not any(item.path == artifact and not item.is_dir for item in listed):
            return None
        with tempfile.TemporaryDirectory(prefix="mlops-statement-", dir=_scratch_parent()) as scratch:
            with process_default_tracking_uri(tracking_uri):
                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=artifact, dst_path=scratch, tracking_uri=tracking_uri
                )
            return Path(local).read_bytes()


def set_version_tag(tracking_uri: str, name: str, version: str, key: str, value: str) -> None:
    with mlflow_errors(tracking_uri):
        _client(tracking_uri).set_model_version_tag(name, version, key, value)
