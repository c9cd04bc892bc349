"""pr-validate against an MLflow 2.22 tracking server, on the example project whose stages run on
MLflow 2: the PR's run is logged there, the report's trend reads the main builds back and links
the newest one's registered version; the registry is never written."""

from __future__ import annotations

import uuid

import pytest

from ci_helpers.adapters.registry import register_version
from ci_helpers.adapters.tracking import finish_run, open_run
from ci_helpers.provenance import GitContext, provenance_tags
from tests.support.run import ci_helpers, github_env, read_report

pytestmark = pytest.mark.integration


def _main_build(url: str, experiment: str, r2: float) -> str:
    """A main build's run as master-build leaves it: provenance tags, metrics, finished."""
    commit = uuid.uuid4().hex + "0" * 8
    run = open_run(url, experiment, f"ci-build-{commit[:8]}", provenance_tags(GitContext(commit, "main", None), {}, {}))
    finish_run(run, metrics={"metrics.r2_score": r2, "metrics.rmse": 0.4 - r2 / 10})
    return run.run_id


def test_a_pr_is_validated_logged_and_shown_against_the_main_builds(mlflow2_project, mlflow2_server, tmp_path):
    from mlflow.tracking import MlflowClient

    url = mlflow2_server.url
    name = f"housing2-{uuid.uuid4().hex[:8]}"  # GITHUB_REPOSITORY names the project: builds in '<name>'
    builds = [_main_build(url, name, r2) for r2 in (0.8, 0.81, 0.82)]
    source = f"{MlflowClient(url).get_run(builds[-1]).info.artifact_uri}/model"
    version = register_version(url, name, source, builds[-1], {}).version
    client = MlflowClient(url, registry_uri=url)
    versions_before = [v.version for v in client.search_model_versions(f"name = '{name}'")]
    gh = github_env(
        tmp_path / "gh",
        GITHUB_REF="refs/pull/22/merge",
        GITHUB_BASE_REF="main",
        GITHUB_HEAD_REF="pr-better",
        GITHUB_REPOSITORY=f"acme/{name}",
    )

    result = ci_helpers(
        "pr-validate",
        "--tracking-uri",
        url,
        "--trend-builds",
        "2",
        "--report-json",
        str(tmp_path / "report.json"),
        cwd=mlflow2_project.checkout("pr-better"),
        env=gh,
    )

    assert result.code == 0, result.output
    data = read_report(tmp_path / "report.json")
    assert data["passed"] is True
    run = client.get_run(data["mlflow"]["run_id"])  # the PR's run, on the 2.22 server
    assert run.data.metrics["metrics.r2_score"] == pytest.approx(data["metrics"]["metrics.r2_score"])
    trend = data["trend"]
    assert [b["run_id"] for b in trend["metrics"]["metrics.r2_score"]["builds"]] == builds[1:]
    assert trend["newest_build"]["model"]["url"] == f"{url}/#/models/{name}/versions/{version}"
    summary = (tmp_path / "gh" / "summary").read_text()
    assert f"[models:/{name}/{version}]({url}/#/models/{name}/versions/{version})" in summary
    assert f"({url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id})" in summary
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == versions_before
