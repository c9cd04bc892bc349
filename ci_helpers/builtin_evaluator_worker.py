"""The built-in evaluator's worker: runs in the USER's Python, not in ci_helpers' own venv.

ci_helpers runs this file by path (`python3 /path/to/builtin_evaluator_worker.py evaluate --model M
--test-data D --target T --task regression`) with the interpreter the project's dvc.yaml stages use,
so that a pickled model is loaded by the scikit-learn (and pandas, numpy...) it was built with:
sklearn pickles do not load across versions. This file imports nothing of ci_helpers and only the
standard library at import time; pandas, scikit-learn, joblib and mlflow are imported where used.

Sub-commands, each printing ONE JSON object on stdout and exiting 0:

- `evaluate`: {"metrics": {...}} (the names of evaluation.BUILTIN_METRICS), or
  {"error": KIND, "message": ..., "module": ...} with KIND one of `missing-library` (an import
  failed: `module` names it), `config` (a bad input, with its one-line message) or `crash`;
- `inspect --model M`: {"sklearn_estimator": bool, "sklearn_version": str|null, "type": "mod.Name"}
  or an error object as above (`unpickle` when the file does not load);
- `log-sklearn --model M --name model --tags JSON` (master-build): log the pickle as MLflow's
  sklearn flavor into the run of $MLFLOW_RUN_ID on $MLFLOW_TRACKING_URI: {"model_id": str|null}.

Security: loading a pickle runs code. The caller runs this worker without the runner's step files
and tokens (adapters.dvc.UNTRUSTED_UNSET), as it runs a PR's own stages.
"""

from __future__ import annotations

import os
import sys

# Run by path, Python puts this file's folder (ci_helpers/) first on sys.path: its modules
# (metrics, settings, airflow...) must not shadow the project's own, which a pickle may import.
if __name__ == "__main__":
    _here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or ".") != _here]

import argparse
import json
import math
import pickle
from pathlib import Path
from typing import Any

TASKS = ("regression", "classification")


class WorkerConfigError(Exception):
    """Raised when an input is unusable; its message is the one-line fix shown to the user."""


class MissingLibrary(Exception):
    """Raised when a library the evaluator needs cannot be imported in this Python."""

    def __init__(self, module: str, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.module = module


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingLibrary(module.split(".", 1)[0], error) from None


# -- loading ------------------------------------------------------------------------------


def load_model(path: Path):
    """A sklearn-compatible estimator from a pickle/joblib file, or an MLflow model directory."""
    if not path.exists():
        raise WorkerConfigError(f"model {path} does not exist; check --model or push it with `dvc push`")
    if path.is_dir():
        if not (path / "MLmodel").is_file():
            raise WorkerConfigError(
                f"model directory {path} has no MLmodel file; pass a pickle/joblib file or an MLflow model directory"
            )
        pyfunc = _require("mlflow.pyfunc")
        return _loaded(path, lambda: pyfunc.load_model(str(path)))
    try:
        import joblib
    except ImportError:
        joblib = None

    def unpickle():
        if joblib is not None:
            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)

    return _loaded(path, unpickle)


def _loaded(path: Path, load):
    try:
        return load()
    except MissingLibrary:
        raise
    except ModuleNotFoundError as error:
        # the pickle names a module this Python lacks: sklearn itself, or the project's own code
        name = (error.name or "").split(".", 1)[0]
        if name in ("sklearn", "pandas", "numpy", "scipy", "joblib", "mlflow", "cloudpickle", "skops"):
            raise MissingLibrary(name, error) from None
        raise _unloadable(path, error) from None
    except Exception as error:
        raise _unloadable(path, error) from None


def _unloadable(path: Path, error: BaseException) -> WorkerConfigError:
    return WorkerConfigError(
        f"model {path} cannot be loaded ({type(error).__name__}: {str(error)[:200]}); pass a pickle/joblib estimator or an MLflow model directory"
    )


def load_test_data(path: Path, target: str):
    """Features and target from a CSV or Parquet file."""
    if not path.is_file():
        raise WorkerConfigError(f"test data {path} does not exist; check --test-data or push it with `dvc push`")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".tsv", ".txt"):
        raise WorkerConfigError(
            f"test data {path} is neither CSV nor Parquet; pass a .csv or .parquet file to --test-data"
        )
    pd = _require("pandas")
    try:
        parquet = suffix in (".parquet", ".pq")
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except ImportError as error:  # pandas found no Parquet engine (pyarrow or fastparquet)
        raise MissingLibrary("pyarrow", error) from None
    except Exception as error:
        raise WorkerConfigError(
            f"test data {path} cannot be read ({type(error).__name__}: {str(error)[:200]})"
        ) from None
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise WorkerConfigError(f"test data {path} has no target column '{target}' (columns: {columns}); fix --target")
    return frame.drop(columns=[target]), frame[target]


# -- metrics --------------------------------------------------------------------------------


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    metrics = _require("sklearn.metrics")
    return {
        "r2": float(metrics.r2_score(y_true, y_pred)),
        "rmse": float(math.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
    }


def classification_metrics(y_true, y_pred, probabilities=None) -> dict[str, float]:
    sk = _require("sklearn.metrics")
    labels = sorted(set(y_true) | set(y_pred))
    average = "binary" if len(labels) == 2 else "weighted"
    pos_label = labels[-1] if average == "binary" else 1
    precision, recall, _, _ = sk.precision_recall_fscore_support(
        y_true, y_pred, average=average, pos_label=pos_label, zero_division=0
    )
    metrics = {
        "accuracy": float(sk.accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(sk.f1_score(y_true, y_pred, average=average, pos_label=pos_label, zero_division=0)),
    }
    if probabilities is not None:
        try:
            if probabilities.shape[1] == 2:
                metrics["roc_auc"] = float(sk.roc_auc_score(y_true, probabilities[:, 1]))
            else:
                metrics["roc_auc"] = float(sk.roc_auc_score(y_true, probabilities, multi_class="ovr"))
        except ValueError:
            pass  # one class only in the test set: AUC is undefined, leave it out
    return metrics


def evaluate(model_path: Path, test_data: Path, target: str, task: str) -> dict[str, float]:
    """The standard metrics of the model on the test set."""
    if task not in TASKS:
        raise WorkerConfigError(f"unsupported task '{task}'; pass --task regression or --task classification")
    features, y_true = load_test_data(test_data, target)
    model = load_model(model_path)
    if not hasattr(model, "predict"):
        raise WorkerConfigError(
            f"model {model_path} has no predict(); pass a sklearn-compatible estimator or an MLflow model"
        )
    try:
        y_pred = model.predict(features)
    except Exception as error:
        raise WorkerConfigError(
            f"model {model_path} failed to predict on {test_data} ({type(error).__name__}: {str(error)[:200]}); check the test set's columns"
        ) from None
    if task == "regression":
        return regression_metrics(y_true, y_pred)
    probabilities = model.predict_proba(features) if hasattr(model, "predict_proba") else None
    return classification_metrics(list(y_true), list(y_pred), probabilities)


def inspect_pickle(path: Path) -> dict[str, object]:
    """Whether the file unpickles to a scikit-learn estimator, and this Python's sklearn version."""
    loaded = _unpickle(path)
    try:
        import sklearn
        from sklearn.base import BaseEstimator
    except ImportError:
        version, is_estimator = None, False
    else:
        version, is_estimator = str(sklearn.__version__), isinstance(loaded, BaseEstimator)
    kind = type(loaded)
    return {"sklearn_estimator": is_estimator, "sklearn_version": version, "type": f"{kind.__module__}.{kind.__name__}"}


def _unpickle(path: Path):
    try:
        import joblib  # reads plain pickles as well as joblib dumps
    except ImportError:
        with path.open("rb") as handle:
            return pickle.load(handle)
    return joblib.load(path)


def _sklearn_flavor_kwargs(path: Path) -> tuple[Any, str, dict[str, object]]:
    """(mlflow, scikit-learn's version, the save/log_model arguments both ways of writing the
    flavor share)."""
    mlflow = _require("mlflow")
    _require("mlflow.sklearn")
    sklearn = _require("sklearn")
    cloudpickle = _require("cloudpickle")
    estimator = _unpickle(path)
    kwargs: dict[str, object] = {
        "sk_model": estimator,
        # cloudpickle, as MLflow 2 did: MLflow 3's default (skops) refuses tree models on load
        "serialization_format": "cloudpickle",
        # explicit requirements skip ~6 s of inference, which would import the model's code again
        "pip_requirements": [f"scikit-learn=={sklearn.__version__}", f"cloudpickle=={cloudpickle.__version__}"],
    }
    return mlflow, str(sklearn.__version__), kwargs


def log_sklearn(path: Path, name: str, tags: dict[str, str]) -> dict[str, object]:
    """Log the pickled estimator as MLflow's sklearn flavor into the run $MLFLOW_RUN_ID names (on
    $MLFLOW_TRACKING_URI), with this Python's scikit-learn: the one the model was built with."""
    mlflow, sklearn_version, kwargs = _sklearn_flavor_kwargs(path)
    if int(str(mlflow.__version__).split(".", 1)[0]) >= 3:
        kwargs.update(name=name, tags=tags)
    else:
        kwargs["artifact_path"] = name
    with mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"], log_system_metrics=False):
        info = mlflow.sklearn.log_model(**kwargs)
    model_id = getattr(info, "model_id", None)
    return {"model_id": str(model_id) if model_id else None, "sklearn_version": sklearn_version}


def save_sklearn(path: Path, target: Path) -> dict[str, object]:
    """Write the pickled estimator as an MLflow sklearn model directory at `target`, talking to no
    server: for a server without logged models (MLflow 2.x), which an MLflow 3 log_model needs."""
    mlflow, sklearn_version, kwargs = _sklearn_flavor_kwargs(path)
    mlflow.sklearn.save_model(path=str(target), **kwargs)
    return {"saved": str(target), "sklearn_version": sklearn_version}


# -- entry point ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="ci_helpers' built-in evaluator, run in the project's Python")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("evaluate", help="print the standard metrics of a model on a test set")
    run.add_argument("--model", required=True, type=Path)
    run.add_argument("--test-data", required=True, type=Path)
    run.add_argument("--target", required=True)
    run.add_argument("--task", required=True)
    look = commands.add_parser("inspect", help="say whether a pickle is a scikit-learn estimator")
    look.add_argument("--model", required=True, type=Path)
    log = commands.add_parser("log-sklearn", help="log a pickled estimator as the sklearn flavor into $MLFLOW_RUN_ID")
    log.add_argument("--model", required=True, type=Path)
    log.add_argument("--name", required=True, help="the logged model's name (artifact path in MLflow 2)")
    log.add_argument("--tags", default="{}", help="a JSON object of the logged model's tags")
    save = commands.add_parser("save-sklearn", help="save a pickled estimator as an MLflow sklearn model directory")
    save.add_argument("--model", required=True, type=Path)
    save.add_argument("--to", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            result: dict[str, object] = {"metrics": evaluate(args.model, args.test_data, args.target, args.task)}
        elif args.command == "log-sklearn":
            result = log_sklearn(args.model, args.name, json.loads(args.tags))
        elif args.command == "save-sklearn":
            result = save_sklearn(args.model, args.to)
        else:
            try:
                result = inspect_pickle(args.model)
            except MissingLibrary:
                raise
            except Exception as error:  # a pickle can raise anything while loading
                result = {"error": "unpickle", "message": f"{type(error).__name__}: {str(error)[:200]}"}
    except MissingLibrary as error:
        result = {"error": "missing-library", "module": error.module, "message": str(error)[:300]}
    except WorkerConfigError as error:
        result = {"error": "config", "message": str(error)}
    except Exception as error:
        result = {"error": "crash", "message": f"{type(error).__name__}: {str(error)[:300]}"}
    sys.stdout.flush()
    # the model's own prints may have gone to stdout: the last line is ours
    print("\n" + json.dumps(result, allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
