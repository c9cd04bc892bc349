"""Evaluate a model two ways: the project's own stage, or the built-in evaluator."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .adapters import dvc
from .adapters.runner import TAIL_LINES
from .errors import ConfigError, StageFailed
from .metrics import Metrics, MetricValue, read_metrics_files

TASKS = ("regression", "classification")
BUILTIN_METRICS = {
    "regression": ("r2", "rmse", "mae"),
    "classification": ("accuracy", "precision", "recall", "f1", "roc_auc"),
}
# The worker runs by path in the project's Python: it needs nothing of ci_helpers installed there.
WORKER = Path(__file__).with_name("builtin_evaluator_worker.py")
EVAL_PYTHON_ENV = "CI_HELPERS_EVAL_PYTHON"
# actions/setup/setup.sh writes it last into the private venv it builds
PRIVATE_VENV_STAMP = ".mlops-actions-key"
# Relative difference below which CI's and the PR's committed numbers count as equal.
_MATCH_TOLERANCE = 1e-6


@dataclass(frozen=True)
class MetricMismatch:
    metric: str
    committed: MetricValue  # None also when the PR committed no such metric
    ci: MetricValue


@dataclass(frozen=True)
class EvalReport:
    """The metrics CI computed, how, and where they differ from what the PR committed."""

    metrics: Metrics
    method: str  # "stage:<name>" or "builtin"
    committed: Metrics = field(default_factory=dict)
    mismatches: tuple[MetricMismatch, ...] = ()


def _differs(a: MetricValue, b: MetricValue) -> bool:
    if not (isinstance(a, float) and isinstance(b, float)):
        return type(a) is not type(b) or a != b  # null, strings, booleans: the same or not
    if math.isnan(a) and math.isnan(b):
        return False
    if math.isinf(a) or math.isinf(b):
        return a != b
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


def evaluator_python() -> str:
    """The Python the built-in evaluator runs in: the project's, the one its dvc.yaml stages run with.

    $CI_HELPERS_EVAL_PYTHON (a path or a command name) when set; else the first `python3`, then
    `python`, on PATH, skipping the bin folder of the actions' private ci_helpers venv (the one
    actions/setup/setup.sh builds and stamps): that venv holds no pandas or scikit-learn, and
    unpickling a model with another scikit-learn than it was built with is unreliable anyway.
    Installed in the project's own environment, ci_helpers is found there and that is right.
    """
    chosen = os.environ.get(EVAL_PYTHON_ENV, "").strip()
    if chosen:
        found = shutil.which(chosen)
        if not found:
            raise ConfigError(
                f"{EVAL_PYTHON_ENV}={chosen} is not an executable Python; point it at the interpreter your dvc.yaml stages use"
            )
        return found
    private = Path(sys.prefix) / PRIVATE_VENV_STAMP
    skipped = {os.path.realpath(Path(sys.prefix) / "bin")} if private.is_file() else set()
    folders = [
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and os.path.realpath(folder) not in skipped
    ]
    for name in ("python3", "python"):
        found = shutil.which(name, path=os.pathsep.join(folders))
        if found:
            return found
    raise ConfigError(
        "the built-in evaluator found no python3 on PATH to run in; put the Python your dvc.yaml stages use "
        f"on PATH (actions/setup-python) or set {EVAL_PYTHON_ENV}"
    )


# What to install for a module the worker could not import; pandas and scikit-learn otherwise.
_INSTALL_FOR = {"mlflow": "mlflow", "pyarrow": "pyarrow", "skops": "skops", "cloudpickle": "cloudpickle"}


def _missing_library(python: str, module: str, what: str) -> ConfigError:
    fix = _INSTALL_FOR.get(module, "pandas scikit-learn")
    return ConfigError(
        f"{what} runs in {python} (the Python on PATH your stages use), which cannot import {module}; "
        f"run `pip install {fix}` in the environment your stages use, or set {EVAL_PYTHON_ENV}"
    )


def run_worker(
    python: str, args: list[str], env: dict[str, str] | None = None, what: str = "the built-in evaluator"
) -> dict:
    """Run builtin_evaluator_worker.py in `python` and return its JSON answer. It unpickles files a
    PR supplied, so it gets none of the runner's step files and tokens, like a PR's own stages.
    ConfigError (exit 2) for a missing library or a bad input; StageFailed (exit 4) when the
    project's Python itself fails (killed, crashed); RuntimeError (exit 70) for a bug in the worker."""
    from .adapters.dvc import UNTRUSTED_UNSET
    from .adapters.runner import CommandError, run

    command = [python, str(WORKER), *args]
    try:
        result = run(command, env=env, unset=UNTRUSTED_UNSET)
    except CommandError as error:  # killed, crashed, or an interpreter that is not one
        tail = "\n".join(error.output.strip().splitlines()[-TAIL_LINES:])
        raise StageFailed(
            f"{what} exited {error.returncode} in {python} (the project's Python); its last lines:\n{tail}",
            None,
            error.returncode,
        ) from None
    except OSError as error:
        raise ConfigError(
            f"{what} cannot start {python} ({error.strerror or error}); fix PATH or {EVAL_PYTHON_ENV}"
        ) from None
    lines = result.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        tail = "\n".join((result.stderr + result.stdout).strip().splitlines()[-TAIL_LINES:])
        raise StageFailed(f"{what} printed no result in {python}; its last lines:\n{tail}")
    kind = answer.get("error")
    if kind == "missing-library":
        raise _missing_library(python, str(answer.get("module") or "a library it needs"), what)
    if kind == "config":
        raise ConfigError(str(answer.get("message")))
    if kind == "crash":  # a bug in the worker, not in the user's input
        raise RuntimeError(f"{what} failed in {python}: {answer.get('message')}")
    return answer


def evaluate_builtin(model_path: Path, test_data: Path, target: str, task: str) -> EvalReport:
    """Standard metrics of a sklearn-compatible or pyfunc model on a CSV/Parquet test set, computed
    in the project's Python (see `evaluator_python`), which loads the model with its own libraries."""
    if task not in TASKS:
        raise ConfigError(f"unsupported task '{task}'; pass --task regression or --task classification")
    python = evaluator_python()
    args = ["evaluate", "--model", str(model_path), "--test-data", str(test_data), "--target", target, "--task", task]
    answer = run_worker(python, args)
    metrics: Metrics = {str(name): float(value) for name, value in (answer.get("metrics") or {}).items()}
    return EvalReport(metrics, "builtin")
