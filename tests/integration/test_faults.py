"""Infrastructure faults: bounded retries, then exit 3 naming the endpoint, never a secret."""

from __future__ import annotations

import json

import pytest

from tests.support.project import write_local_remote
from tests.support.run import ci_helpers, github_env, read_outputs
from tests.support.servers import copy_bucket, restartable_port, start_moto

pytestmark = pytest.mark.integration


def test_s3_server_stopped_before_the_pull(project, tmp_path):
    # A second, real moto server holding the PR's data, stopped before CI runs; its port stays held,
    # so no other server (another xdist worker's) answers there meanwhile.
    server, endpoint = start_moto(restartable_port())
    copy_bucket(project.s3_endpoint, project.bucket, endpoint, "doomed")
    checkout = project.checkout("pr-better")
    write_local_remote(checkout, "s3://doomed/dvc", endpoint=endpoint)
    server.stop()

    result = ci_helpers(
        "pr-validate", "--no-track", cwd=checkout, env={"CI_HELPERS_RETRY_ATTEMPTS": "2", "AWS_MAX_ATTEMPTS": "2"}
    )

    assert result.code == 3, result.output
    assert endpoint in result.output  # the endpoint is named
    assert "attempt 2/2" in result.output  # and it was retried first
    assert "testing-secret-key" not in result.output
    assert not (checkout / "models" / "model.pkl").exists()


def test_mlflow_server_unreachable(project, tmp_path):
    from tests.support.servers import refused_port

    checkout = project.checkout("pr-better")
    uri = f"http://ci-user:s3cr3t-token@127.0.0.1:{refused_port()}"

    gh = github_env(tmp_path / "gh")
    result = ci_helpers(
        "pr-validate",
        "--tracking-uri",
        uri,
        "--report-json",
        str(tmp_path / "pr.json"),
        cwd=checkout,
        env={**gh, "MLFLOW_TRACKING_PASSWORD": "s3cr3t-token"},
    )

    assert result.code == 3, result.output
    # the verdict is not lost with the tracking server: report, summary and outputs still say it
    report = json.loads((tmp_path / "pr.json").read_text())
    assert report["passed"] is True
    assert "unreachable" in report["mlflow"]["error"]
    assert read_outputs(tmp_path / "gh" / "output")["passed"] == "true"
    assert "Not logged to MLflow" in (tmp_path / "gh" / "summary").read_text()
    assert "PR verdict (passed) was reported but not logged to MLflow" in result.output
    assert "MLflow tracking server" in result.output
    assert "unreachable" in result.output
    assert uri.rsplit("@", 1)[1] in result.output
    # only the runner is told the secret (so that it masks it), nobody else
    assert all(line == "::add-mask::s3cr3t-token" for line in result.output.splitlines() if "s3cr3t-token" in line)
