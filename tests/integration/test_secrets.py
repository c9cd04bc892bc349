"""A password planted in the tracking URI appears in no channel a user or a log reader sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.run import github_env, tracked_pr_validate

pytestmark = pytest.mark.integration

PASSWORD = "PLANTED-pass-7788"


def test_a_password_in_the_tracking_uri_is_printed_nowhere(project, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    checkout = project.checkout("pr-better")
    gh = github_env(tmp_path / "gh", GITHUB_REF="refs/pull/5/merge", GITHUB_BASE_REF="main")
    uri = mlflow_server.url.replace("http://", f"http://ci-user:{PASSWORD}@")
    report = tmp_path / "report.json"

    result = tracked_pr_validate(checkout, uri, "secrets-pr", report, env=gh)

    assert result.code == 0, result.output
    channels = {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "summary": (tmp_path / "gh" / "summary").read_text(),
        "outputs": (tmp_path / "gh" / "output").read_text(),
        "report.json": report.read_text(),
    }
    client = MlflowClient(mlflow_server.url)
    (run,) = client.search_runs([client.get_experiment_by_name("secrets-pr").experiment_id])
    channels["mlflow tags"] = json.dumps(run.data.tags)
    channels["mlflow params"] = json.dumps(run.data.params)
    artifact = client.download_artifacts(run.info.run_id, "pr-validation-report.json", str(tmp_path))
    channels["mlflow report artifact"] = Path(artifact).read_text()

    leaks = [name for name, text in channels.items() if PASSWORD in text]
    assert leaks == []
    assert "http://***@127.0.0.1" in channels["report.json"]  # the URI is still there, its credentials masked
