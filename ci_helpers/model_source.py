"""Register a model the training script did not log to MLflow (main only).

When the project's training stage logs no MLflow model into the helper-owned run, master-build
takes the model from the workspace instead: `--model-path` (a file or directory, project-relative),
else the dvc.yaml `artifacts:` entry named by `--model-artifact`, else the single `type: model`
artifact. The file or directory is logged into the helper-owned run, then registered:

- a pickle/joblib that loads as a scikit-learn estimator is logged as the `sklearn` flavor (an
  MLflow 3 logged model linked to the run), so `mlflow.pyfunc.load_model` works on the version;
- a directory that already is an MLflow model (it holds an `MLmodel` file) keeps its own flavor;
- anything else (an unloadable pickle, an ONNX file, a folder of files) is logged as plain
  artifacts under `model/` in the run.

Security: loading a pickle runs code. This module is used by master-build only, on the model the
project's own training code just built in CI, code that master-build already runs; so unpickling it
adds no new trust. Nothing on the PR path may import this module or unpickle anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .adapters.redact import redact
from .adapters.tracking import TrackedRun, _client, is_unreachable, mlflow_errors, unreachable_error
from .errors import CIHelpersError, ConfigError
from .project import Project

MODEL_ARTIFACT_PATH = "model"  # where the model lands in the run, for either format
FORMAT_PLAIN = "plain-artifacts"
FORMAT_SKLEARN = "sklearn"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".pk")
_TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")


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


def _load_estimator(path: Path) -> tuple[object | None, str | None]:
    """(the scikit-learn estimator the file unpickles to, None) or (None, why not).

    SECURITY: unpickling executes code from the file. Only ever called on main, on the model that
    the project's own training stage has just built in CI (code master-build already runs).
    """
    if not path.is_file() or not _looks_pickled(path):
        return None, None
    try:
        import joblib  # a dependency of scikit-learn; reads plain pickles as well as joblib dumps

        loaded = joblib.load(path)
    except Exception as error:  # a pickle can raise anything while loading
        return None, f"{path.name} does not unpickle here ({type(error).__name__}: {str(error)[:200]})"
    from sklearn.base import BaseEstimator

    if isinstance(loaded, BaseEstimator):
        return loaded, None
    return (
        None,
        f"{path.name} unpickles to {type(loaded).__module__}.{type(loaded).__name__}, not a scikit-learn estimator",
    )


def _mlflow_major() -> int:
    import mlflow

    return int(str(mlflow.__version__).split(".", 1)[0])


@contextmanager
def _using_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API (log_model) reads a process-global tracking URI. `set_tracking_uri` also
    rewrites $MLFLOW_TRACKING_URI and `end_run` deletes $MLFLOW_RUN_ID: use `uri` for the call, then
    put the global and both variables back as they were."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    previous = getattr(tracking_utils, "_tracking_uri", None)
    saved_env = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None: "not set", as before
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _restore_status(client, run_id: str, status: str, end_time: int | None) -> None:
    """Put the run back as it was before `mlflow.start_run(run_id=...)` reopened it."""
    if status in _TERMINAL_STATUSES:
        client.set_terminated(run_id, status, end_time=end_time)
    else:  # it was still open (RUNNING/SCHEDULED): its owner closes it
        client.update_run(run_id, status=status)


def _log_sklearn(run: TrackedRun, estimator: object, tags: Mapping[str, str]) -> tuple[str, str | None]:
    """Log `estimator` as the sklearn flavor into `run`, which may be FINISHED; the run keeps the
    status (and end time) it had. (source to register, MLflow 3 logged model id or None)."""
    import cloudpickle
    import mlflow
    import mlflow.sklearn
    import sklearn

    client = _client(run.tracking_uri)
    before = client.get_run(run.run_id).info
    kwargs: dict[str, object] = {
        "sk_model": estimator,
        # cloudpickle, as MLflow 2 did: MLflow 3's default (skops) refuses tree models on load
        "serialization_format": "cloudpickle",
        # explicit requirements skip ~6 s of inference, which would import the model's code again
        "pip_requirements": [f"scikit-learn=={sklearn.__version__}", f"cloudpickle=={cloudpickle.__version__}"],
    }
    if _mlflow_major() >= 3:
        kwargs.update(name=MODEL_ARTIFACT_PATH, tags=dict(tags))
    else:
        kwargs["artifact_path"] = MODEL_ARTIFACT_PATH
    with _using_tracking_uri(run.tracking_uri):
        active = mlflow.active_run()
        reopened = active is None or active.info.run_id != run.run_id
        if reopened:  # resume the run so that the logged model is linked to it (source_run_id)
            mlflow.start_run(run_id=run.run_id, nested=active is not None, log_system_metrics=False)
        try:
            info = mlflow.sklearn.log_model(**kwargs)
        finally:
            if reopened:
                try:
                    mlflow.end_run()
                finally:
                    _restore_status(client, run.run_id, before.status, before.end_time)
    model_id = getattr(info, "model_id", None)
    if model_id:
        return f"models:/{model_id}", str(model_id)
    return f"{before.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT_PATH}", None


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

    estimator, note = _load_estimator(local)
    if estimator is not None:
        tags = {**base, "mlops.model_format": FORMAT_SKLEARN}
        try:
            with mlflow_errors(run.tracking_uri):
                source, model_id = _log_sklearn(run, estimator, tags)
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
