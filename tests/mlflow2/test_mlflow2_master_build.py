"""master-build against an MLflow 2.22 tracking server, with a training script on MLflow 2
(`log_model(artifact_path="model")`): the build registers the CI-built model the MLflow 2 way (the
run's artifact URI, no logged model), a re-run of the commit reuses the version, and a model that
only dvc.yaml's `artifacts:` names is logged and registered too. Real dvc, git, moto S3 and the
2.22 `mlflow server` on 127.0.0.1; ci-helpers is the main venv's (an MLflow 3 client)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from tests.support.project import sh, write_local_remote
from tests.support.run import ci_helpers, github_env, read_report

from .conftest import without_model_logging

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _master_build(cwd, name: str, uri: str, report, env: dict | None = None):
    return ci_helpers(
        "master-build",
        "--model-name",
        name,
        "--tracking-uri",
        uri,
        "--report-json",
        str(report),
        cwd=cwd,
        env={**(env or {}), **CI_IDENTITY},
    )


def _flavors_of(uri: str, model_uri: str, tmp_path, monkeypatch) -> str:
    """What a deploy job does: fetch `model_uri` from the registry; the flavors its MLmodel names."""
    import mlflow.artifacts
    import yaml

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # models:/ resolves through the default registry
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    folder = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(tmp_path))
    mlmodel = yaml.safe_load((Path(folder) / "MLmodel").read_text())
    return ",".join(sorted(mlmodel["flavors"]))


def test_a_build_registers_the_mlflow2_model_and_a_rerun_reuses_it(
    mlflow2_project, mlflow2_server, tmp_path, monkeypatch
):
    project, url = mlflow2_project, mlflow2_server.url
    name = f"housing2-{uuid.uuid4().hex[:8]}"
    built = project.head("main")
    gh = github_env(tmp_path / "gh", GITHUB_REPOSITORY="acme/housing", GITHUB_REF="refs/heads/main")

    result = _master_build(project.checkout("main"), name, url, tmp_path / "build.json", env=gh)

    assert result.code == 0, result.output
    assert "unreachable" not in result.output
    report = read_report(tmp_path / "build.json")
    client = _client(url)
    run = client.get_run(report["mlflow"]["run_id"])
    assert run.data.params["train.n_estimators"] == "60"  # logged by the MLflow 2 training script
    assert run.info.status == "FINISHED"
    version = client.get_model_version(name, report["model"]["version"])
    # the MLflow 2 way: the model under the run's own artifacts, no logged model
    assert version.source == f"{run.info.artifact_uri}/model"
    assert not version.model_id
    assert version.run_id == run.info.run_id
    assert version.tags["mlops.git_commit"] == built
    assert version.tags["mlops.verdict"] == "passed"
    assert version.tags["mlops.run_id"] == run.info.run_id
    assert client.get_model_version_by_alias(name, "staging").version == version.version
    moves = {k: json.loads(v) for k, v in client.get_registered_model(name).tags.items() if "alias_move.staging" in k}
    assert [move["version"] for move in moves.values()] == [version.version]
    assert _flavors_of(url, f"models:/{name}@staging", tmp_path / "dl", monkeypatch) == "python_function,sklearn"
    # the report links the run and the version on the 2.22 server's UI
    summary = (tmp_path / "gh" / "summary").read_text()
    assert f"{url}/#/models/{name}/versions/{version.version}" in summary
    assert f"{url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}" in summary

    # re-running the build of the same commit reuses the version: no duplicate
    again = project.root / "again"
    sh(["git", "clone", "-q", str(project.origin), str(again)], project.root)
    sh(["git", "checkout", "-q", "-B", "main", built], again)
    write_local_remote(again, project.remote_url)
    rerun = _master_build(again, name, url, tmp_path / "again.json")

    assert rerun.code == 0, rerun.output
    assert read_report(tmp_path / "again.json")["model"]["reused"] is True
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [version.version]
    assert client.get_model_version_by_alias(name, "staging").version == version.version


def test_a_model_only_dvc_yaml_artifacts_names_is_logged_and_registered(
    mlflow2_project, mlflow2_server, tmp_path, monkeypatch
):
    """The training logs no model; the pickle dvc.yaml declares (type: model) is saved as the
    sklearn flavor by the project's Python and uploaded into the run: no logged model on 2.x."""
    project, url = mlflow2_project, mlflow2_server.url
    name = f"housing2-art-{uuid.uuid4().hex[:8]}"
    dev = project.dev
    without_model_logging(dev)
    sh(["git", "commit", "-qam", "train.py logs no model; dvc.yaml declares it"], dev)
    sh(["git", "push", "-q", "origin", "main"], dev)

    result = _master_build(project.checkout("main"), name, url, tmp_path / "build.json")

    assert result.code == 0, result.output
    assert "Log models/model.pkl into MLflow run" in result.output
    report = read_report(tmp_path / "build.json")
    client = _client(url)
    run = client.get_run(report["mlflow"]["run_id"])
    version = client.get_model_version(name, report["model"]["version"])
    assert version.source == f"{run.info.artifact_uri}/model"
    assert not version.model_id
    assert version.tags["mlops.model_path"] == "models/model.pkl"
    assert version.tags["mlops.model_format"] == "sklearn"
    assert run.info.status == "FINISHED"
    assert client.get_model_version_by_alias(name, "staging").version == version.version
    assert _flavors_of(url, f"models:/{name}@staging", tmp_path / "dl", monkeypatch) == "python_function,sklearn"


def test_a_training_script_on_mlflow3_is_told_it_cannot_log_to_a_2x_server(mlflow2_project, mlflow2_server, tmp_path):
    """The stage's MLflow 3 `log_model(name=...)` meets the 2.22 server's 404 on logged models: the
    build fails as the stage failing (exit 4), and its one line says why and what to do, not just "404"."""
    import sys

    project, url = mlflow2_project, mlflow2_server.url
    dev = project.dev
    dvc_yaml = dev / "dvc.yaml"
    lines = dvc_yaml.read_text().splitlines(keepends=True)
    train = next(i for i, line in enumerate(lines) if "src/train.py" in line)
    lines[train] = re.sub(r"cmd: \S+ ", f"cmd: {sys.executable} ", lines[train])  # the MLflow 3 Python
    dvc_yaml.write_text("".join(lines))
    script = dev / "src" / "train.py"
    script.write_text(script.read_text().replace('artifact_path="model",', 'name="model",'))
    sh(["git", "commit", "-qam", "train on MLflow 3"], dev)
    sh(["git", "push", "-q", "origin", "main"], dev)
    name = f"housing2-m3-{uuid.uuid4().hex[:8]}"

    result = _master_build(project.checkout("main"), name, url, tmp_path / "build.json")

    assert result.code == 4, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("error:") and "MLflow 3" in line)
    assert "MLflow 2.22" in line
    assert "artifact_path=" in line
    assert "stage 'train'" in line
    assert "unreachable" not in result.output
    assert not _client(url).search_model_versions(f"name = '{name}'")
