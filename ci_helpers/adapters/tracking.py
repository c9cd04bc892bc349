"""MLflow tracking through MlflowClient, with bounded retries and clear failures."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InfrastructureError
from .redact import redact

# MLflow's own HTTP retries default to 7 attempts with a factor-2 back-off (minutes); keep them
# bounded unless the user chose otherwise.
_BOUNDED_HTTP_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
_UNREACHABLE_MARKERS = (
    "max retries exceeded",
    "connection refused",
    "failed to establish a new connection",
    "connectionerror",
    "read timed out",
    "name or service not known",
    "api request to",
)


@dataclass(frozen=True)
class TrackedRun:
    tracking_uri: str
    experiment_id: str
    run_id: str


def resolve_tracking_uri(option: str | None, repo: Path) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the embedded sqlite:///<repo>/mlflow.db."""
    return option or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo.resolve() / 'mlflow.db'}"


def _client(tracking_uri: str):
    for name, value in _BOUNDED_HTTP_RETRIES.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def is_unreachable(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return any(marker in text for marker in _UNREACHABLE_MARKERS)


def unreachable_error(tracking_uri: str, error: BaseException) -> InfrastructureError:
    first_line = redact(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    return InfrastructureError(
        f"MLflow tracking server {redact(tracking_uri)} is unreachable after retries: {first_line[:300]}",
        endpoint=redact(tracking_uri),
    )


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        from mlflow.exceptions import MlflowException

        try:
            return client.create_experiment(name)
        except MlflowException as error:  # another job created it since: use theirs
            experiment = client.get_experiment_by_name(name)
            if experiment is None or "ALREADY_EXISTS" not in str(getattr(error, "error_code", "")):
                raise
    if experiment.lifecycle_stage == "deleted":
        raise ConfigError(
            f"MLflow experiment '{name}' is deleted; restore it (`mlflow experiments restore`) or pass another --experiment"
        )
    return experiment.experiment_id


@contextmanager
def mlflow_errors(tracking_uri: str) -> Iterator[None]:
    """Turn "cannot reach the server" into InfrastructureError naming the endpoint."""
    try:
        yield
    except (ConfigError, InfrastructureError):
        raise
    except Exception as error:  # MLflow raises many types; sort them by what they mean
        if is_unreachable(error):
            raise unreachable_error(tracking_uri, error) from None
        raise


def log_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    artifacts: Mapping[str, str],
) -> TrackedRun:
    """Create a finished run holding params, metrics, tags and small text artifacts."""
    run = open_run(tracking_uri, experiment, run_name, tags)
    finish_run(run, metrics=metrics, params=params, artifacts=artifacts)
    return run


def open_run(tracking_uri: str, experiment: str, run_name: str, tags: Mapping[str, str]) -> TrackedRun:
    """Create a run (status RUNNING) that this process owns and can hand to a training script."""
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        experiment_id = _experiment_id(client, experiment)
        run = client.create_run(experiment_id, run_name=run_name, tags={k: redact(v) for k, v in tags.items()})
        return TrackedRun(tracking_uri, experiment_id, run.info.run_id)


def run_environment(run: TrackedRun) -> dict[str, str]:
    """The variables that make `mlflow.start_run()` in a child process resume this run."""
    return {
        "MLFLOW_TRACKING_URI": run.tracking_uri,
        "MLFLOW_RUN_ID": run.run_id,
        "MLFLOW_EXPERIMENT_ID": run.experiment_id,
    }


def finish_run(
    run: TrackedRun,
    *,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, str] | None = None,
    artifacts: Mapping[str, str] | None = None,
    status: str = "FINISHED",
) -> None:
    """Add metrics, params, tags and small text artifacts, then close the run."""
    import time

    from mlflow.entities import Metric, Param, RunTag

    metrics, params, tags, artifacts = metrics or {}, params or {}, tags or {}, artifacts or {}

    with mlflow_errors(run.tracking_uri):
        client = _client(run.tracking_uri)
        existing = client.get_run(run.run_id).data.params
        now = int(time.time() * 1000)
        client.log_batch(
            run.run_id,
            metrics=[Metric(key, value, now, 0) for key, value in metrics.items() if math.isfinite(value)],
            params=[
                Param(key[:250], redact(str(value))[:6000])
                for key, value in params.items()
                if key[:250] not in existing
            ],
            tags=[RunTag(key, redact(str(value))) for key, value in tags.items()],
        )
        with tempfile.TemporaryDirectory() as folder:
            for name, text in artifacts.items():
                path = Path(folder) / name
                path.write_text(redact(text))
                client.log_artifact(run.run_id, str(path))
        client.set_terminated(run.run_id, status)


def flatten_params(data: object, prefix: str = "") -> dict[str, object]:
    if isinstance(data, Mapping):
        flat: dict[str, object] = {}
        for key, value in data.items():
            flat.update(flatten_params(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): json.dumps(data) if isinstance(data, (list, tuple)) else data}
