"""master-build registers a model the training script never logged to MLflow: the get-started shape
declares it under dvc.yaml's `artifacts:` (type: model), its train.py knows nothing of MLflow.

Real dvc, git (bare origin), moto S3 and an MLflow server on 127.0.0.1.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support.project import lock_out_md5
from tests.support.run import ci_helpers, read_report

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def test_the_artifacts_model_is_logged_and_registered(shape_project, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    project = shape_project("get_started")
    clone = project.clone("ci")
    name = f"gs-{uuid.uuid4().hex[:8]}"
    args = ["master-build", "--model-name", name, "--tracking-uri", mlflow_server.url]

    result = ci_helpers(
        *args, "--report-json", str(tmp_path / "b.json"), cwd=clone, env={**CI_IDENTITY, **project.env}, timeout=300
    )

    assert result.code == 0, result.output
    assert "Log models/model.json into MLflow run" in result.output
    report = read_report(tmp_path / "b.json")
    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    version = client.get_model_version(name, report["model"]["version"])
    lock_md5 = lock_out_md5(project.git("show", "main:dvc.lock"), "models/model.json")
    assert version.tags["mlops.model_path"] == "models/model.json"
    assert version.tags["mlops.model_format"] == "plain-artifacts"
    assert version.tags["mlops.model_md5"] == lock_md5  # the CI-built file, as the committed lock records it
    assert version.tags["mlops.model_remote"] == project.remote_url
    assert version.run_id == report["mlflow"]["run_id"]
    assert client.get_model_version_by_alias(name, "staging").version == version.version
    # the registered files are the CI-built model itself
    import mlflow.artifacts

    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=version.source, dst_path=str(tmp_path / "dl"), tracking_uri=mlflow_server.url
    )
    from pathlib import Path

    files = {p.name: p.read_text() for p in Path(folder).rglob("*") if p.is_file()}
    assert files.get("model.json") == (clone / "models" / "model.json").read_text()
    assert client.get_run(version.run_id).info.status == "FINISHED"

    # an artifact name the project does not declare is refused before anything is written
    before = project.head("main")
    refused = ci_helpers(
        *args, "--model-artifact", "nope", cwd=project.clone("ci2"), env={**CI_IDENTITY, **project.env}, timeout=300
    )
    assert refused.code == 2, refused.output
    assert "nope" in refused.output
    assert project.head("main") == before
