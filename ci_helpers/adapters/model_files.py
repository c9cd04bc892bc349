"""A registered model version's files as MLflow serves them, and its provenance statement, stored
as an artifact of the version's run."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError, InfrastructureError
from .auth import exception_rejection_reason
from .redact import redact
from .tracking import _client, is_unreachable, mlflow_errors, process_default_tracking_uri

# Artifact URIs whose bytes travel through the tracking server: its errors are the server's.
_SERVED_BY_TRACKING = ("", "mlflow-artifacts", "http", "https", "models", "runs", "dbfs", "databricks")


def artifact_store(artifact_uri: str) -> str:
    """The artifact store an artifact URI lives in, as an error names it: its endpoint (S3's
    MLFLOW_S3_ENDPOINT_URL when set) and its bucket or host, credentials stripped."""
    import os
    from urllib.parse import urlsplit

    parts = urlsplit(artifact_uri)
    scheme = parts.scheme.lower()
    location = f"{scheme}://{parts.hostname or ''}" if parts.hostname else artifact_uri
    if scheme in ("s3", "s3a"):
        endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL") or "AWS S3"
        return redact(f"{location} at {endpoint}")
    return redact(location)


@contextlib.contextmanager
def artifact_errors(tracking_uri: str, artifact_uri: str) -> Iterator[None]:
    """mlflow_errors for a block that reads or writes `artifact_uri`, naming what failed: the
    tracking server when it serves the artifacts, else the artifact store itself (credentials
    rejected: exit 2; unreachable after the client's retries: exit 3)."""
    from urllib.parse import urlsplit

    if urlsplit(artifact_uri).scheme.lower() in _SERVED_BY_TRACKING:
        with mlflow_errors(tracking_uri):
            yield
        return
    where = artifact_store(artifact_uri)
    try:
        yield
    except (ConfigError, InfrastructureError):
        raise
    except Exception as error:
        reason = exception_rejection_reason(error)
        if reason:
            raise ConfigError(
                f"the artifact store {where} rejected the credentials ({reason}); set the store's credentials "
                "(for S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and MLFLOW_S3_ENDPOINT_URL for another "
                "endpoint) where ci-helpers runs: MLflow's client reads and writes this store directly"
            ) from None
        if is_unreachable(error):
            text = str(error).strip()
            first = redact(text.splitlines()[0] if text else type(error).__name__)
            raise InfrastructureError(
                f"the artifact store {where} is unreachable after retries: {first[:300]}", endpoint=where
            ) from None
        raise


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
    """The version's files, downloaded once from where the registry says they are (its download
    URI: what `models:/NAME/VERSION` resolves to, without MLflow 3's logged-model search that an
    MLflow 2 server lacks) into a scratch folder removed afterwards: the model's root folder, or
    the single file when the model is one file."""
    import mlflow.artifacts

    with mlflow_errors(tracking_uri):
        location = _client(tracking_uri).get_model_version_download_uri(record.name, record.version)
    location = _in_the_store(tracking_uri, location)
    with tempfile.TemporaryDirectory(prefix="mlops-model-", dir=_scratch_parent()) as folder:
        with artifact_errors(tracking_uri, location), process_default_tracking_uri(tracking_uri):
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=folder, tracking_uri=tracking_uri
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
        location = _run_artifact_uri(tracking_uri, run_id)
        with artifact_errors(tracking_uri, location), process_default_tracking_uri(tracking_uri):
            _client(tracking_uri).log_artifact(run_id, str(local), artifact_path=folder or None)


def _in_the_store(tracking_uri: str, uri: str) -> str:
    """`runs:/RUN/PATH` as the artifact store's own URI: MLflow 3's client resolves a runs:/ URI by
    searching logged models first, a call an MLflow 2 server answers with 404."""
    if not uri.startswith("runs:/"):
        return uri
    run_id, _, path = uri[len("runs:/") :].lstrip("/").partition("/")
    return (
        f"{_run_artifact_uri(tracking_uri, run_id).rstrip('/')}/{path}"
        if path
        else _run_artifact_uri(tracking_uri, run_id)
    )


def _run_artifact_uri(tracking_uri: str, run_id: str) -> str:
    with mlflow_errors(tracking_uri):
        return _client(tracking_uri).get_run(run_id).info.artifact_uri or ""


def read_run_artifact(tracking_uri: str, run_id: str, artifact: str) -> bytes | None:
    """The bytes of `artifact` in the run; None when the run has no such artifact."""
    import mlflow.artifacts
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    folder = artifact.rpartition("/")[0]
    location = _run_artifact_uri(tracking_uri, run_id)
    with artifact_errors(tracking_uri, location):
        # the run's store itself: MlflowClient.list_artifacts goes through runs:/ (see _in_the_store)
        with process_default_tracking_uri(tracking_uri):
            listed = get_artifact_repository(location).list_artifacts(folder or None)
        if not any(item.path == artifact and not item.is_dir for item in listed):
            return None
        with tempfile.TemporaryDirectory(prefix="mlops-statement-", dir=_scratch_parent()) as scratch:
            with process_default_tracking_uri(tracking_uri):
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{location.rstrip('/')}/{artifact}", dst_path=scratch, tracking_uri=tracking_uri
                )
            return Path(local).read_bytes()


def set_version_tag(tracking_uri: str, name: str, version: str, key: str, value: str) -> None:
    with mlflow_errors(tracking_uri):
        _client(tracking_uri).set_model_version_tag(name, version, key, value)
