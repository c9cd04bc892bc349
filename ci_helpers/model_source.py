"""Register a model the training script did not log to MLflow (main only).

When the project's training stage logs no MLflow model into the helper-owned run, master-build
takes the model from the workspace instead: `--model-path` (a file or directory, project-relative),
else the dvc.yaml `artifacts:` entry named by `--model-artifact`, else the single `type: model`
artifact. The file or directory is logged into the helper-owned run, then registered:

- a pickle/joblib that loads as a scikit-learn estimator is logged as the `sklearn` flavor (an
  MLflow 3 logged model linked to the run; on an MLflow 2.x server, which has no logged models,
  an MLflow model folder under `model/` in the run), so `mlflow.pyfunc.load_model` works on the version.
  Both the check and the logging run in the project's Python (the one its stages use, or
  $CI_HELPERS_EVAL_PYTHON: see evaluation.evaluator_python), through builtin_evaluator_worker.py
  with the run handed over as a training script gets it ($MLFLOW_RUN_ID...): that Python built the
  model, and ci_helpers' own venv has no scikit-learn. When that Python lacks scikit-learn or
  mlflow, the file is logged as plain artifacts, and the note says why;
- a directory that already is an MLflow model (it holds an `MLmodel` file) keeps its own flavor;
- anything else (an unloadable pickle, an ONNX file, a folder of files) is logged as plain
  artifacts under `model/` in the run.

Security: loading a pickle runs code. This module is used by master-build only, on the model the
project's own training code just built in CI, code that master-build already runs; so unpickling it
adds no new trust. Nothing on the PR path may import this module. (The PR path's built-in
evaluator unpickles the PR's model in the same worker, without the runner's tokens.)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .adapters.mlflow_server import supports_logged_models
from .adapters.redact import redact
from .adapters.tracking import (
    TrackedRun,
    _client,
    is_unreachable,
    mlflow_errors,
    run_environment,
    unreachable_error,
)
from .errors import CIHelpersError, ConfigError, StageFailed
from .project import Project

MODEL_ARTIFACT_PATH = "model"  # where the model lands in the run, for either format
FORMAT_PLAIN = "plain-artifacts"
FORMAT_SKLEARN = "sklearn"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".pk")
_TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
_WHAT = "logging the model as the sklearn flavor"  # names the step in the worker's errors


@dataclass(frozen=True)
class LoggedModelSource:
    """What to register after `log_model_from_path`."""

    source: str  # `models:/m-...` (MLflow 3 logged model) or the run's `.../artifacts/model` URI
    model_id: str | None  # the MLflow 3 logged model's id, for register_version(model_id=...)
    format: str  # "sklearn" | "plain-artifacts" | the flavor of a saved MLflow model directory
    tags: dict[str, str] = field(default_factory=dict)  # mlops.model_{path,md5,remote,format}
    note: str | None = None  # why a pickle was logged as plain artifacts, for the log


# -- which path -------------------------------------------------------------------------


def artifact_types(project: Project) -> dict[str, str]:
    """Artifact name -> its `type:` in dvc.yaml ('' when it has none), from the project model."""
    return dict(project.artifact_types)


def _inside_project(project: Project, path: str, option: str) -> str:
    """`path` relative to the project root, POSIX style; ConfigError when it leaves the project."""
    root = project.root.resolve()
    absolute = Path(os.path.normpath(root / path))  # root / an absolute path is that path
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        raise ConfigError(
            f"{option} {path} is outside the project ({root}); pass a path relative to the project root"
        ) from None
    if str(relative) == ".":
        raise ConfigError(f"{option} {path} is the whole project; pass the model's file or directory")
    return PurePosixPath(relative).as_posix()


def _named_path(project: Project, model_path: str | None, model_artifact: str | None) -> tuple[str, str] | None:
    """(project-relative path, how it was named) of the model to register, before any file check."""
    if model_path:
        return _inside_project(project, model_path, "--model-path"), f"--model-path {model_path}"
    artifacts = project.artifacts
    if model_artifact:
        if model_artifact not in artifacts:
            known = ", ".join(sorted(artifacts)) or "none"
            raise ConfigError(
                f"unknown DVC artifact '{model_artifact}' (dvc.yaml `artifacts:` declares: {known}); "
                "pass one of them to --model-artifact, or the file itself to --model-path"
            )
        name = model_artifact
    else:
        models = sorted(name for name, kind in artifact_types(project).items() if kind.lower() == "model")
        if not models:
            return None
        if len(models) > 1:
            raise ConfigError(
                f"dvc.yaml declares several `type: model` artifacts ({', '.join(models)}); "
                "pass the one to register to --model-artifact"
            )
        name = models[0]
    option = f"DVC artifact '{name}' (path {artifacts[name]})"
    return _inside_project(project, artifacts[name], option), option


def _produced_by_a_stage(project: Project, path: str) -> bool:
    """An out is `path`, holds it, or lies inside it (a directory of outs)."""
    if project.out_covering(path) is not None:
        return True
    prefix = path.rstrip("/") + "/"
    return any(out.path.startswith(prefix) for out in project.outs)


def check_model_source_declared(project: Project, model_path: str | None, model_artifact: str | None) -> str | None:
    """Preflight (before the build): the path that will be registered if the script logs no model,
    or None when nothing names one. Checks only what is knowable before the build: the option's
    names, that the path stays inside the project, and that a stage produces it or it exists."""
    named = _named_path(project, model_path, model_artifact)
    if named is None:
        return None
    path, how = named
    if not _produced_by_a_stage(project, path) and not (project.root / path).exists():
        outs = ", ".join(out.path for out in project.outs if out.kind == "out")[:300] or "none"
        raise ConfigError(
            f"{how}: {path} is not produced by any stage (dvc.yaml outs: {outs}) and does not exist; "
            "pass the file or directory the training stage writes"
        )
    return path


def resolve_model_path(project: Project, model_path: str | None, model_artifact: str | None) -> str | None:
    """After the build: the project-relative path to register, or None when nothing names one.

    `--model-path` if given, else the `--model-artifact` entry of dvc.yaml's `artifacts:`, else the
    single `type: model` artifact. ConfigError (exit 2) when the name is unknown, when several
    `type: model` artifacts leave the choice open, or when the path does not exist after the build.
    """
    named = _named_path(project, model_path, model_artifact)
    if named is None:
        return None
    path, how = named
    if not (project.root / path).exists():
        raise ConfigError(
            f"{how}: {path} does not exist after the build; pass the file or directory the training stage writes"
        )
    return path


def model_md5(project: Project, path: str, hashes: Mapping[str, str]) -> str | None:
    """The DVC md5 of `path`: what the lock records (`hashes`, e.g. `read_out_hashes`) when `path`
    is an out; the file's own md5 (DVC 3 hashes a file's bytes) when it lies inside a directory out
    or is tracked by no out; None for a directory that is not itself an out."""
    out = project.out_covering(path)
    if out is not None and out.path == path and hashes.get(path):
        return hashes[path]
    local = project.root / path
    if not local.is_file():
        return None
    digest = hashlib.md5(usedforsecurity=False)
    with local.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- log it into the run ------------------------------------------------------------------


def _looks_pickled(path: Path) -> bool:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(1) == b"\x80"  # the PROTO opcode every pickle since protocol 2 opens with
    except OSError:
        return False


def _sklearn_estimator(path: Path) -> tuple[str | None, str | None]:
    """(the project's Python, None) when the file unpickles there to a scikit-learn estimator, else
    (None, why not). The project's Python (evaluation.evaluator_python) built the model: its
    scikit-learn loads the pickle, ci_helpers' own venv has none (and another version would not do).

    SECURITY: unpickling executes code from the file. Only ever called on main, on the model that
    the project's own training stage has just built in CI (code master-build already runs).
    """
    if not path.is_file() or not _looks_pickled(path):
        return None, None
    from .evaluation import evaluator_python, run_worker

    try:
        python = evaluator_python()
        answer = run_worker(python, ["inspect", "--model", str(path)], what=_WHAT)
    except (ConfigError, StageFailed) as error:  # no such Python, it lacks a library, or it crashed
        return None, f"{path.name} is logged as plain artifacts: {str(error).splitlines()[0]}"
    if answer.get("error"):
        return None, f"{path.name} does not unpickle in {python} ({str(answer.get('message'))[:200]})"
    if answer.get("sklearn_version") is None:
        return None, f"{path.name} is logged as plain artifacts: {python} (the project's Python) has no scikit-learn"
    if answer.get("sklearn_estimator"):
        return python, None
    return None, f"{path.name} unpickles to {answer.get('type')}, not a scikit-learn estimator"


def _restore_status(client, run_id: str, status: str, end_time: int | None) -> None:
    """Put the run back as it was before `mlflow.start_run(run_id=...)` reopened it."""
    if status in _TERMINAL_STATUSES:
        client.set_terminated(run_id, status, end_time=end_time)
    else:  # it was still open (RUNNING/SCHEDULED): its owner closes it
        client.update_run(run_id, status=status)


def _log_sklearn(run: TrackedRun, python: str, path: Path, tags: Mapping[str, str]) -> tuple[str, str | None]:
    """Log the pickle as the sklearn flavor into `run`, which may be FINISHED, from the project's
    Python (it resumes the run through $MLFLOW_RUN_ID, as a training script does); the run keeps
    the status (and end time) it had. (source to register, MLflow 3 logged model id or None).
    ConfigError when that Python cannot (no mlflow there); other failures raise RuntimeError."""
    import json

    from .evaluation import run_worker

    if not supports_logged_models(run.tracking_uri):
        return _save_and_log_sklearn(run, python, path), None
    client = _client(run.tracking_uri)
    before = client.get_run(run.run_id).info
    args = ["log-sklearn", "--model", str(path), "--name", MODEL_ARTIFACT_PATH, "--tags", json.dumps(dict(tags))]
    try:
        answer = run_worker(python, args, env=run_environment(run), what=_WHAT)
    finally:  # the worker's start_run/end_run reopened and closed it
        _restore_status(client, run.run_id, before.status, before.end_time)
    if answer.get("error"):
        raise RuntimeError(str(answer.get("message")))
    model_id = answer.get("model_id")
    if model_id:
        return f"models:/{model_id}", str(model_id)
    return f"{before.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_PATH}", None


def _save_and_log_sklearn(run: TrackedRun, python: str, path: Path) -> str:
    """For a server without logged models (MLflow 2.x), where an MLflow 3 `log_model` fails: the
    project's Python writes the sklearn flavor to a folder, which is uploaded under `model/` in
    the run, as an MLflow 2 `log_model(artifact_path="model")` lays it out."""
    import tempfile

    from .evaluation import run_worker

    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / MODEL_ARTIFACT_PATH
        answer = run_worker(python, ["save-sklearn", "--model", str(path), "--to", str(saved)], what=_WHAT)
        if answer.get("error"):
            raise RuntimeError(str(answer.get("message")))
        return _log_plain(run, saved)


def _mlmodel_flavor(path: Path) -> str | None:
    """The flavor of a directory that already is a saved MLflow model; None otherwise."""
    mlmodel = path / "MLmodel"
    if not path.is_dir() or not mlmodel.is_file():
        return None
    from mlflow.models import Model

    try:
        flavors = Model.load(str(path)).flavors or {}
    except Exception:  # not a readable MLmodel: the directory is logged as plain artifacts
        return None
    if not isinstance(flavors, dict) or not flavors:
        return None
    named = [str(name) for name in flavors if name != "python_function"]
    return named[0] if named else "pyfunc"


def _log_plain(run: TrackedRun, path: Path) -> str:
    """Upload the file or directory under `model/` in the run (allowed on a FINISHED run)."""
    with mlflow_errors(run.tracking_uri):
        client = _client(run.tracking_uri)
        if path.is_dir():
            client.log_artifacts(run.run_id, str(path), artifact_path=MODEL_ARTIFACT_PATH)
        else:
            client.log_artifact(run.run_id, str(path), artifact_path=MODEL_ARTIFACT_PATH)
        artifact_uri = client.get_run(run.run_id).info.artifact_uri
    return f"{artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_PATH}"


def log_model_from_path(
    run: TrackedRun, root: Path, path: str, md5: str | None, remote_url: str | None
) -> LoggedModelSource:
    """Log the project-relative file or directory `path` into `run` (open or already FINISHED; it
    keeps its status) and say what to register: a scikit-learn pickle as the sklearn flavor, an
    MLflow model directory as it is, anything else as plain artifacts under `model/`.

    The returned tags (`mlops.model_path`, `mlops.model_md5`, `mlops.model_remote` with credentials
    redacted, `mlops.model_format`) are also set on the run; put them on the registered version.
    """
    local = root / path
    if not local.exists():
        raise ConfigError(
            f"model {path} does not exist in {root}; pass the file or directory the training stage writes"
        )
    if local.is_dir() and not any(item.is_file() for item in local.rglob("*")):
        raise ConfigError(f"model directory {path} holds no files; nothing to register")
    base = {"mlops.model_path": path}
    if md5:
        base["mlops.model_md5"] = md5
    if remote_url:
        base["mlops.model_remote"] = redact(remote_url)

    python, note = _sklearn_estimator(local)
    if python is not None:
        tags = {**base, "mlops.model_format": FORMAT_SKLEARN}
        try:
            with mlflow_errors(run.tracking_uri):
                source, model_id = _log_sklearn(run, python, local, tags)
        except (ConfigError, StageFailed) as error:  # the project's Python has no mlflow, or crashed
            note = f"{path} is logged as plain artifacts: {str(error).splitlines()[0]}"
        except CIHelpersError:
            raise
        except Exception as error:  # the estimator would not serialize: keep the file as it is
            if is_unreachable(error):
                raise unreachable_error(run.tracking_uri, error) from None
            note = f"logging {path} as the sklearn flavor failed ({type(error).__name__}: {redact(str(error))[:200]})"
        else:
            _tag_run(run, tags)
            return LoggedModelSource(source, model_id, FORMAT_SKLEARN, tags)

    model_format = _mlmodel_flavor(local) or FORMAT_PLAIN
    tags = {**base, "mlops.model_format": model_format}
    source = _log_plain(run, local)
    _tag_run(run, tags)
    return LoggedModelSource(source, None, model_format, tags, note)


def _tag_run(run: TrackedRun, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    with mlflow_errors(run.tracking_uri):
        _client(run.tracking_uri).log_batch(run.run_id, tags=[RunTag(key, value) for key, value in tags.items()])
