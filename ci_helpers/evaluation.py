"""Evaluate a model two ways: the project's own stage, or the built-in evaluator."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import dvc
from .errors import ConfigError
from .metrics import Metrics, read_metrics_files

TASKS = ("regression", "classification")
BUILTIN_METRICS = {
    "regression": ("r2", "rmse", "mae"),
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
}
# Relative difference below which CI's and the PR's committed numbers count as equal.
_MATCH_TOLERANCE = 1e-6


@dataclass(frozen=True)
class MetricMismatch:
    metric: str
    committed: float | None
    ci: float


@dataclass(frozen=True)
class EvalReport:
    """The metrics CI computed, how, and where they differ from what the PR committed."""

    metrics: Metrics
    method: str  # "stage:<name>" or "builtin"
    committed: Metrics = field(default_factory=dict)
    mismatches: tuple[MetricMismatch, ...] = ()


def _differs(a: float, b: float) -> bool:
    if math.isnan(a) and math.isnan(b):
        return False
    return abs(a - b) > _MATCH_TOLERANCE * max(1.0, abs(a), abs(b))


def compare_with_committed(committed: Metrics, ci: Metrics) -> tuple[MetricMismatch, ...]:
    return tuple(
        MetricMismatch(key, committed.get(key), value)
        for key, value in sorted(ci.items())
        if key not in committed or _differs(committed[key], value)
    )


def evaluate_with_stage(repo: Path, stages: tuple[str, ...], metrics_files: list[str]) -> EvalReport:
    """Re-run the project's evaluation stage(s) on the pulled model and read their metrics files."""
    committed = {}
    if all((repo / name).is_file() for name in metrics_files):
        committed = read_metrics_files(repo, metrics_files)
    for stage in stages:
        dvc.repro_single(repo, stage)
    ci = read_metrics_files(repo, metrics_files)
    method = f"stage:{','.join(stages)}"
    return EvalReport(ci, method, committed, compare_with_committed(committed, ci) if committed else ())


def load_model(path: Path):
    """A sklearn-compatible estimator from a pickle/joblib file, or an MLflow model directory."""
    if not path.exists():
        raise ConfigError(f"model {path} does not exist; check --model or push it with `dvc push`")
    try:
        if path.is_dir():
            if not (path / "MLmodel").is_file():
                raise ConfigError(
                    f"model directory {path} has no MLmodel file; pass a pickle/joblib file or an MLflow model directory"
                )
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(str(path))
        try:
            import joblib

            return joblib.load(path)
        except ImportError:
            with path.open("rb") as handle:
                return pickle.load(handle)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(
            f"model {path} cannot be loaded ({type(error).__name__}: {str(error)[:200]}); pass a pickle/joblib estimator or an MLflow model directory"
        ) from None


def load_test_data(path: Path, target: str):
    """Features and target from a CSV or Parquet file."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"test data {path} does not exist; check --test-data or push it with `dvc push`")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise ConfigError(
                f"test data {path} is neither CSV nor Parquet; pass a .csv or .parquet file to --test-data"
            )
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"test data {path} cannot be read ({type(error).__name__}: {str(error)[:200]})") from None
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise ConfigError(f"test data {path} has no target column '{target}' (columns: {columns}); fix --target")
    return frame.drop(columns=[target]), frame[target]


def regression_metrics(y_true, y_pred) -> Metrics:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "r2": float(r2_score(y_true, y_pred)),
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
    }


def classification_metrics(y_true, y_pred, probabilities=None) -> Metrics:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, roc_auc_score

    labels = sorted(set(y_true) | set(y_pred))
    average = "binary" if len(labels) == 2 else "weighted"
    pos_label = labels[-1] if average == "binary" else 1
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, average=average, pos_label=pos_label, zero_division=0
    )
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1_score(y_true, y_pred, average=average, pos_label=pos_label, zero_division=0)),
    }
    if probabilities is not None:
        try:
            if probabilities.shape[1] == 2:
                metrics["roc_auc"] = float(roc_auc_score(y_true, probabilities[:, 1]))
            else:
                metrics["roc_auc"] = float(roc_auc_score(y_true, probabilities, multi_class="ovr"))
        except ValueError:
            pass  # one class only in the test set: AUC is undefined, leave it out
    return metrics


def evaluate_builtin(model_path: Path, test_data: Path, target: str, task: str) -> EvalReport:
    """Standard metrics of a sklearn-compatible or pyfunc model on a CSV/Parquet test set."""
    if task not in TASKS:
        raise ConfigError(f"unsupported task '{task}'; pass --task regression or --task classification")
    features, y_true = load_test_data(test_data, target)
    model = load_model(model_path)
    if not hasattr(model, "predict"):
        raise ConfigError(
            f"model {model_path} has no predict(); pass a sklearn-compatible estimator or an MLflow model"
        )
    try:
        y_pred = model.predict(features)
    except Exception as error:
        raise ConfigError(
            f"model {model_path} failed to predict on {test_data} ({type(error).__name__}: {str(error)[:200]}); check the test set's columns"
        ) from None
    if task == "regression":
        metrics = regression_metrics(y_true, y_pred)
    else:
        probabilities = model.predict_proba(features) if hasattr(model, "predict_proba") else None
        metrics = classification_metrics(list(y_true), list(y_pred), probabilities)
    return EvalReport(metrics, "builtin")
