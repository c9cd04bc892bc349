"""Register a model the training script did not log: pick it from dvc.yaml `artifacts:` or
--model-path, log it into the helper-owned run against a real `mlflow server`, register it."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ci_helpers.adapters.registry import find_run_model, register_version
from ci_helpers.adapters.tracking import TrackedRun
from ci_helpers.errors import ConfigError
from ci_helpers.model_source import (
    FORMAT_PLAIN,
    check_model_source_declared,
    log_model_from_path,
    model_md5,
    resolve_model_path,
)
from ci_helpers.project import load_project
from tests.support.project import sh

pytestmark = pytest.mark.integration

REMOTE = "s3://AKIAEXAMPLE:s3cr3t-value@dvc-bucket/store"


@contextmanager
def _using_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API for one block, then the process-global URI and variables as they were."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    previous = getattr(tracking_utils, "_tracking_uri", None)
    saved_env = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _finished_run(uri: str, status: str = "FINISHED") -> TrackedRun:
    """A run as master-build leaves it before registering: created by the helper, then closed."""
    client = _client(uri)
    name = "model-source-tests"
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=f"ci-build-{uuid.uuid4().hex[:6]}")
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return TrackedRun(uri, experiment_id, run.info.run_id)


def _classifier():
    from sklearn.tree import DecisionTreeClassifier  # a tree: MLflow 3's default (skops) refuses to load it

    return DecisionTreeClassifier(random_state=0).fit([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 0, 1])


# -- logging and registering --------------------------------------------------------------


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_sklearn_pickle_is_logged_as_the_sklearn_flavor_and_loads_back(mlflow_server, tmp_path, dump):
    import joblib
    import mlflow.pyfunc
    import pandas as pd

    uri, name = mlflow_server.url, f"clf-{uuid.uuid4().hex[:8]}"
    run = _finished_run(uri)
    before = _client(uri).get_run(run.run_id).info
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / f"model.{'pkl' if dump == 'pickle' else 'joblib'}"
    if dump == "pickle":
        target.write_bytes(pickle.dumps(_classifier()))
    else:
        joblib.dump(_classifier(), target)
    relative = target.relative_to(tmp_path).as_posix()

    logged = log_model_from_path(run, tmp_path, relative, "0123abcd", REMOTE)

    assert logged.format == "sklearn"
    assert logged.model_id
    assert logged.model_id.startswith("m-")
    assert logged.source == f"models:/{logged.model_id}"
    assert logged.tags == {
        "mlops.model_path": relative,
        "mlops.model_md5": "0123abcd",
        "mlops.model_remote": "s3://***@dvc-bucket/store",
        "mlops.model_format": "sklearn",
    }
    after = _client(uri).get_run(run.run_id)
    assert after.info.status == "FINISHED"  # not left RUNNING, and closed when it was closed
    assert after.info.end_time == before.end_time
    assert after.data.tags["mlops.model_format"] == "sklearn"
    # linked to the run: the registration path that looks for the run's model finds it
    assert find_run_model(uri, run.run_id) == (logged.source, logged.model_id)

    version = register_version(uri, name, logged.source, run.run_id, logged.tags, model_id=logged.model_id)
    stored = _client(uri).get_model_version(name, version.version)
    assert stored.tags["mlops.model_format"] == "sklearn"
    assert stored.tags["mlops.model_remote"] == "s3://***@dvc-bucket/store"
    with _using_tracking_uri(uri):
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        predicted = model.predict(pd.DataFrame([[0.0, 0.0], [1.0, 1.0]]))
    assert list(predicted) == [0, 1]


def test_a_run_still_open_stays_open(mlflow_server, tmp_path, monkeypatch):
    import mlflow

    run = _finished_run(mlflow_server.url, status="RUNNING")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_classifier()))
    # the process's own MLflow settings survive the fluent calls made inside
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/elsewhere")
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123456789abcdef0123456789abcdef")

    logged = log_model_from_path(run, tmp_path, "model.pkl", None, None)

    assert mlflow.active_run() is None
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9/elsewhere"
    assert os.environ["MLFLOW_RUN_ID"] == "0123456789abcdef0123456789abcdef"

    assert logged.format == "sklearn"
    assert "mlops.model_md5" not in logged.tags
    assert "mlops.model_remote" not in logged.tags
    assert _client(mlflow_server.url).get_run(run.run_id).info.status == "RUNNING"
    _client(mlflow_server.url).set_terminated(run.run_id)


def _register_and_download(uri: str, run: TrackedRun, logged, dest: Path) -> Path:
    import mlflow.artifacts

    name = f"plain-{uuid.uuid4().hex[:8]}"
    version = register_version(uri, name, logged.source, run.run_id, logged.tags, model_id=logged.model_id)
    assert _client(uri).get_model_version(name, version.version).tags["mlops.model_format"] == FORMAT_PLAIN
    with _using_tracking_uri(uri):
        return Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version.version}", dst_path=str(dest)))


def _project_python(tmp_path: Path, log: Path, pythonpath: Path | None = None) -> Path:
    """A stand-in for the project's Python: this suite's, recording each call."""
    script = tmp_path / "bin" / "project-python"
    script.parent.mkdir(parents=True, exist_ok=True)
    prefix = f"PYTHONPATH={pythonpath} " if pythonpath else ""
    script.write_text(f'#!/bin/sh\necho "$2" >> {log}\n{prefix}exec {sys.executable} "$@"\n')
    script.chmod(0o755)
    return script


def test_the_check_and_the_sklearn_flavor_run_in_the_projects_python(mlflow_server, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CI_HELPERS_EVAL_PYTHON", str(_project_python(tmp_path, log)))
    run = _finished_run(mlflow_server.url)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_classifier()))

    logged = log_model_from_path(run, tmp_path, "model.pkl", None, None)

    assert logged.format == "sklearn"
    assert log.read_text().split() == ["inspect", "log-sklearn"]
    assert _client(mlflow_server.url).get_run(run.run_id).info.status == "FINISHED"


def test_a_project_python_without_sklearn_logs_plain_artifacts_and_says_why(mlflow_server, tmp_path, monkeypatch):
    bare = tmp_path / "bare-env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, capture_output=True)
    monkeypatch.setenv("CI_HELPERS_EVAL_PYTHON", str(bare / "bin" / "python"))
    run = _finished_run(mlflow_server.url)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_classifier()))

    logged = log_model_from_path(run, tmp_path, "model.pkl", None, None)

    assert logged.format == FORMAT_PLAIN
    assert f"does not unpickle in {bare / 'bin' / 'python'}" in (logged.note or "")
    assert "sklearn" in (logged.note or "")


def test_a_project_python_without_mlflow_logs_plain_artifacts_and_names_the_fix(mlflow_server, tmp_path, monkeypatch):
    hidden = tmp_path / "no-mlflow"
    (hidden / "mlflow").mkdir(parents=True)
    (hidden / "mlflow" / "__init__.py").write_text("raise ImportError(\"No module named 'mlflow'\")\n")
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CI_HELPERS_EVAL_PYTHON", str(_project_python(tmp_path, log, pythonpath=hidden)))
    run = _finished_run(mlflow_server.url)
    before = _client(mlflow_server.url).get_run(run.run_id).info
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(_classifier()))

    logged = log_model_from_path(run, tmp_path, "model.pkl", None, None)

    assert logged.format == FORMAT_PLAIN
    assert "cannot import mlflow" in (logged.note or "")
    assert "`pip install mlflow` in the environment your stages use" in (logged.note or "")
    after = _client(mlflow_server.url).get_run(run.run_id).info
    assert (after.status, after.end_time) == ("FINISHED", before.end_time)


@pytest.mark.parametrize(
    ("filename", "content", "why"),
    [
        ("model.onnx", b"\x08\x07\x12\x07pytorch fake onnx graph", None),
        # a pickle of a class that does not exist here: it cannot be loaded, so it stays a file
        ("model.pkl", b"cnonexistent_module_for_test\nThing\n)\x81.", "does not unpickle"),
        ("model.pkl", pickle.dumps({"weights": [1, 2, 3]}), "not a scikit-learn estimator"),
    ],
    ids=["onnx", "unloadable-pickle", "not-an-estimator"],
)
def test_a_non_model_file_is_logged_as_plain_artifacts(mlflow_server, tmp_path, filename, content, why):
    uri = mlflow_server.url
    run = _finished_run(uri)
    root = tmp_path / "project"
    (root / "out").mkdir(parents=True)
    (root / "out" / filename).write_bytes(content)

    logged = log_model_from_path(run, root, f"out/{filename}", "feedbeef", "s3://bucket/dvc")

    assert logged.format == FORMAT_PLAIN
    assert logged.model_id is None
    assert logged.source.endswith(f"{run.run_id}/artifacts/model")
    assert logged.tags["mlops.model_format"] == FORMAT_PLAIN
    assert logged.tags["mlops.model_remote"] == "s3://bucket/dvc"
    assert (why in (logged.note or "")) if why else logged.note is None
    assert _client(uri).get_run(run.run_id).info.status == "FINISHED"
    files = _register_and_download(uri, run, logged, tmp_path / "download")
    assert (files / filename).read_bytes() == content


def test_a_directory_is_logged_as_plain_artifacts(mlflow_server, tmp_path):
    uri = mlflow_server.url
    run = _finished_run(uri)
    model_dir = tmp_path / "project" / "models" / "bert"
    (model_dir / "tokenizer").mkdir(parents=True)
    (model_dir / "weights.bin").write_bytes(b"\x00\x01\x02")
    (model_dir / "config.json").write_text('{"layers": 2}')
    (model_dir / "tokenizer" / "vocab.txt").write_text("a\nb\n")

    logged = log_model_from_path(run, tmp_path / "project", "models/bert", "abc.dir", None)

    assert logged.format == FORMAT_PLAIN
    assert logged.tags["mlops.model_md5"] == "abc.dir"
    assert _client(uri).get_run(run.run_id).info.status == "FINISHED"
    files = _register_and_download(uri, run, logged, tmp_path / "download")
    assert (files / "weights.bin").read_bytes() == b"\x00\x01\x02"
    assert (files / "config.json").read_text() == '{"layers": 2}'
    assert (files / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"


def test_a_saved_mlflow_model_directory_keeps_its_flavor(mlflow_server, tmp_path):
    import mlflow.pyfunc
    import mlflow.sklearn
    import pandas as pd

    uri = mlflow_server.url
    run = _finished_run(uri)
    mlflow.sklearn.save_model(
        _classifier(), tmp_path / "mlflow_model", serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
    )

    logged = log_model_from_path(run, tmp_path, "mlflow_model", None, None)

    assert logged.format == "sklearn"
    name = f"saved-{uuid.uuid4().hex[:8]}"
    version = register_version(uri, name, logged.source, run.run_id, logged.tags, model_id=logged.model_id)
    with _using_tracking_uri(uri):
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        assert list(model.predict(pd.DataFrame([[1.0, 1.0]]))) == [1]


def test_a_missing_or_empty_path_is_refused(mlflow_server, tmp_path):
    run = _finished_run(mlflow_server.url)
    with pytest.raises(ConfigError, match="does not exist"):
        log_model_from_path(run, tmp_path, "models/none.pkl", None, None)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds no files"):
        log_model_from_path(run, tmp_path, "empty", None, None)


# -- which path to register ------------------------------------------------------------------


def _dvc_project(root: Path, artifacts: str, stages: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    sh(["git", "init", "-q"], root)
    sh(["dvc", "init", "-q"], root)
    text = ""
    if stages:
        text += "stages:\n" + stages
    if artifacts:
        text += "artifacts:\n" + artifacts
    (root / "dvc.yaml").write_text(text)
    return root


TRAIN_STAGE = """\
  train:
    cmd: python train.py
    outs:
      - models/model.pkl
      - models/extra
"""


def test_model_path_must_exist_after_the_build_and_stay_in_the_project(tmp_path):
    project = load_project(_dvc_project(tmp_path / "p", "", TRAIN_STAGE))

    with pytest.raises(ConfigError, match=r"models/model\.pkl does not exist after the build") as missing:
        resolve_model_path(project, "models/model.pkl", None)
    assert missing.value.exit_code == 2
    with pytest.raises(ConfigError, match="outside the project"):
        resolve_model_path(project, "../elsewhere/model.pkl", None)
    with pytest.raises(ConfigError, match="outside the project"):
        check_model_source_declared(project, "/etc/passwd", None)

    # before the build, an out that does not exist yet is fine; a path nothing produces is not
    assert check_model_source_declared(project, "./models/model.pkl", None) == "models/model.pkl"
    assert check_model_source_declared(project, "models/extra/part.bin", None) == "models/extra/part.bin"
    assert check_model_source_declared(project, "models", None) == "models"
    with pytest.raises(ConfigError, match=r"models/typo\.pkl is not produced by any stage"):
        check_model_source_declared(project, "models/typo.pkl", None)

    (project.root / "models").mkdir()
    (project.root / "models" / "model.pkl").write_bytes(b"x")
    assert resolve_model_path(project, "./models/model.pkl", None) == "models/model.pkl"
    assert resolve_model_path(project, str(project.root / "models" / "model.pkl"), None) == "models/model.pkl"
    # --model-path wins over the artifacts
    assert resolve_model_path(project, "models/model.pkl", "anything") == "models/model.pkl"


def test_an_unknown_artifact_name_lists_the_known_ones(tmp_path):
    project = load_project(
        _dvc_project(
            tmp_path / "p",
            "  classifier:\n    path: models/model.pkl\n    type: model\n"
            "  features:\n    path: data/features.csv\n    type: dataset\n",
            TRAIN_STAGE,
        )
    )
    for check in (resolve_model_path, check_model_source_declared):
        with pytest.raises(ConfigError, match=r"unknown DVC artifact 'clasifier'.*classifier, features") as error:
            check(project, None, "clasifier")
        assert error.value.exit_code == 2


def test_two_model_artifacts_need_model_artifact(tmp_path):
    root = _dvc_project(
        tmp_path / "p",
        "  classifier:\n    path: models/model.pkl\n    type: model\n"
        "  embedder:\n    path: models/extra\n    type: model\n",
        TRAIN_STAGE,
    )
    project = load_project(root)
    for check in (resolve_model_path, check_model_source_declared):
        with pytest.raises(
            ConfigError, match=r"several `type: model` artifacts \(classifier, embedder\).*--model-artifact"
        ):
            check(project, None, None)

    assert check_model_source_declared(project, None, "embedder") == "models/extra"
    (root / "models" / "extra").mkdir(parents=True)
    (root / "models" / "extra" / "w.bin").write_bytes(b"w")
    assert resolve_model_path(project, None, "embedder") == "models/extra"


def test_the_single_model_artifact_is_chosen(tmp_path):
    root = _dvc_project(
        tmp_path / "p",
        "  features:\n    path: data/features.csv\n    type: dataset\n"
        "  classifier:\n    path: models/model.pkl\n    type: model\n    desc: the CI-built classifier\n",
        TRAIN_STAGE,
    )
    project = load_project(root)
    assert project.artifacts["classifier"] == "models/model.pkl"

    assert check_model_source_declared(project, None, None) == "models/model.pkl"
    with pytest.raises(ConfigError, match=r"DVC artifact 'classifier'.*does not exist after the build"):
        resolve_model_path(project, None, None)
    (root / "models").mkdir()
    (root / "models" / "model.pkl").write_bytes(b"model bytes")
    assert resolve_model_path(project, None, None) == "models/model.pkl"

    # the md5 the lock would record for it, and the file's own md5 when no lock entry exists yet
    assert model_md5(project, "models/model.pkl", {"models/model.pkl": "recorded"}) == "recorded"
    assert model_md5(project, "models/model.pkl", {}) == hashlib.md5(b"model bytes").hexdigest()
    assert model_md5(project, "models", {}) is None  # a directory that is no out: no single hash


def test_artifacts_in_a_nested_dvc_yaml_and_no_model_artifact(tmp_path):
    root = _dvc_project(tmp_path / "p", "  features:\n    path: data/features.csv\n    type: dataset\n")
    project = load_project(root)
    assert resolve_model_path(project, None, None) is None
    assert check_model_source_declared(project, None, None) is None

    (root / "sub").mkdir()
    (root / "sub" / "dvc.yaml").write_text("artifacts:\n  onnx:\n    path: export/model.onnx\n    type: model\n")
    (root / "sub" / "export").mkdir()
    (root / "sub" / "export" / "model.onnx").write_bytes(b"onnx")
    project = load_project(root)
    assert resolve_model_path(project, None, None) == "sub/export/model.onnx"
    assert resolve_model_path(project, None, "onnx") == "sub/export/model.onnx"
