"""The reports' trend of gated metrics over main builds, read back from the real MLflow server, and
their links to the run and the model version: real dvc, git, moto S3 and `mlflow server`."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from dataclasses import replace

import pytest

from ci_helpers.adapters.tracking import finish_run, open_run, recent_build_runs
from ci_helpers.provenance import GitContext, provenance_tags
from ci_helpers.report.common import fmt
from tests.integration import test_mermaid_render as mermaid_render
from tests.support.run import ci_helpers, github_env, read_outputs, read_report

pytestmark = pytest.mark.integration


def _build(uri: str, experiment: str, branch: str, metrics: dict, status: str = "FINISHED") -> str:
    """A main build's run as master-build leaves it: its provenance tags, its metrics, finished."""
    commit = uuid.uuid4().hex + "0" * 8
    run = open_run(uri, experiment, f"ci-build-{commit[:8]}", provenance_tags(GitContext(commit, branch, None), {}, {}))
    finish_run(run, metrics=metrics, status=status)
    return run.run_id


def _register(uri: str, name: str, run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    from ci_helpers.adapters.registry import register_version

    source = f"{MlflowClient(uri).get_run(run_id).info.artifact_uri}/model"  # the server takes sources of the run
    return register_version(uri, name, source, run_id, {}).version


def _credentialed(url: str, secret: str) -> str:
    return url.replace("http://", f"http://ci-user:{secret}@")


def test_the_pr_report_shows_the_trend_of_main_builds_and_links_to_mlflow(project, mlflow_server, tmp_path):
    name = f"housing-{uuid.uuid4().hex[:8]}"  # GITHUB_REPOSITORY names the project: builds in '<name>'
    url = mlflow_server.url
    r2 = [0.91, 0.915, 0.92, 0.925]
    runs = [_build(url, name, "main", {"metrics.r2_score": v, "metrics.rmse": 0.4 - v / 10}) for v in r2]
    _build(url, name, "feature", {"metrics.r2_score": 0.1})  # another branch
    _build(url, name, "main", {"metrics.r2_score": 0.2}, status="FAILED")  # not a finished build
    version = _register(url, name, runs[-1])
    secret = "s3cret-pw-for-the-link-test"
    checkout = project.checkout("pr-better")
    settings = checkout / "mlops.yaml"  # gate the metrics as the PR recorded them: no stage to re-run
    settings.write_text(settings.read_text().replace("eval_stage: evaluate", ""))
    gh = github_env(
        tmp_path / "gh",
        GITHUB_REF="refs/pull/21/merge",
        GITHUB_BASE_REF="main",
        GITHUB_HEAD_REF="pr-better",
        GITHUB_REPOSITORY=f"acme/{name}",
    )

    result = ci_helpers(
        "pr-validate",
        "--tracking-uri",
        _credentialed(url, secret),
        "--trend-builds",
        "3",
        "--report-json",
        str(tmp_path / "report.json"),
        cwd=checkout,
        env=gh,
    )

    assert result.code == 0, result.output
    data = read_report(tmp_path / "report.json")
    summary = (tmp_path / "gh" / "summary").read_text()
    trend = data["trend"]
    assert trend["builds"] == 3  # the last 3 finished main builds, oldest first
    r2_trend = trend["metrics"]["metrics.r2_score"]
    assert [b["value"] for b in r2_trend["builds"]] == r2[1:]
    assert [b["run_id"] for b in r2_trend["builds"]] == runs[1:]
    pr_r2 = data["metrics"]["metrics.r2_score"]
    assert r2_trend["current"] == pr_r2
    assert set(trend["metrics"]) == {"metrics.r2_score", "metrics.rmse"}  # the gated ones
    assert "### Trend over the last 3 main builds" in summary
    values = ", ".join(fmt(v) for v in r2[1:])
    assert f"main builds: {values} → this PR **{fmt(pr_r2)}**" in summary
    assert re.search(r'x-axis "[^"]*" \["1", "2", "3", "PR"\]', summary)

    run_url = f"{url}/#/experiments/{data['mlflow']['experiment_id']}/runs/{data['mlflow']['run_id']}"
    assert f"({run_url})" in summary
    assert data["mlflow"]["run_url"] == run_url
    newest = trend["newest_build"]
    assert f"({url}/#/experiments/{newest['experiment_id']}/runs/{runs[-1]})" in summary
    assert f"[models:/{name}/{version}]({url}/#/models/{name}/versions/{version})" in summary
    assert newest["model"]["url"] == f"{url}/#/models/{name}/versions/{version}"
    for channel in (
        summary,
        result.stdout,
        result.stderr,
        (tmp_path / "report.json").read_text(),
        str(read_outputs(tmp_path / "gh" / "output")),
    ):
        assert secret not in channel


def test_the_master_build_report_reads_the_previous_builds_of_its_branch(mlflow_server):
    """The build flow's read, on a build as master-build leaves it (the rebuild itself is
    test_master_build's): the previous builds of its branch, then this build as the last point."""
    from mlflow.tracking import MlflowClient

    from ci_helpers.adapters.registry import RegisteredVersion
    from ci_helpers.adapters.tracking import TrackedRun
    from ci_helpers.flows.build import read_build_trend
    from ci_helpers.gate import evaluate_gate, parse_threshold
    from ci_helpers.rebuild_plan import RebuildPlan
    from ci_helpers.report.build import render_build_markdown
    from ci_helpers.results import BuildResult

    experiment, url = f"housing-{uuid.uuid4().hex[:8]}", mlflow_server.url
    earlier = [0.90, 0.93]
    for value in earlier:
        _build(url, experiment, "dev-model", {"metrics.r2_score": value})
    _build(url, f"{experiment}-other", "dev-model", {"metrics.r2_score": 0.1})
    this_build = _build(url, experiment, "dev-model", {"metrics.r2_score": 0.95})
    version = _register(url, experiment, this_build)
    experiment_id = MlflowClient(url).get_experiment_by_name(experiment).experiment_id
    metrics = {"metrics.r2_score": 0.95}
    result = BuildResult(
        True,
        "passed",
        GitContext("f" * 40, "dev-model", None),
        RebuildPlan(("train",), ("evaluate",), (), (), (), ()),
        metrics,
        TrackedRun(url, experiment_id, this_build),
        experiment,
        {},
        evaluate_gate(metrics, [parse_threshold("metrics.r2_score>=0.8")], [], None),
        registered=RegisteredVersion(experiment, version, "models:/m-x", this_build, False),
    )

    trend = read_build_trend(result, 10)
    summary = render_build_markdown(replace(result, trend=trend))

    assert trend is not None
    assert trend.builds == 2  # neither this build nor another project's
    assert [p.value for p in trend.metrics[0].points] == earlier
    assert "dev-model builds: 0.9, 0.93 → this build **0.95**" in summary
    assert f"({url}/#/experiments/{experiment_id}/runs/{this_build})" in summary
    assert f"Model: [models:/{experiment}/{version}]({url}/#/models/{experiment}/versions/{version})" in summary


def test_build_runs_are_read_under_the_projects_own_metric_names(mlflow_server):
    experiment = f"keys-{uuid.uuid4().hex[:8]}"
    odd = "feature_importance.ocean_proximity_<1H OCEAN"  # MLflow refuses this key: logged sanitised
    run_id = _build(mlflow_server.url, experiment, "main", {odd: 0.3, "metrics.r2_score": 0.9})
    _build(mlflow_server.url, experiment, "main", {"metrics.r2_score": 0.5}, status="RUNNING")

    (build,) = recent_build_runs(mlflow_server.url, (experiment,), "main", 10)

    assert build.run_id == run_id
    assert dict(build.metrics) == {odd: 0.3, "metrics.r2_score": 0.9}


def test_reading_builds_creates_no_store_and_a_silent_server_gets_one_bounded_attempt(tmp_path, monkeypatch):
    missing = tmp_path / "mlflow.db"
    assert recent_build_runs(f"sqlite:///{missing}", ("p",), "main", 10) == ()
    assert not missing.exists()

    accepted = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def accept_and_never_answer():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=accept_and_never_answer, daemon=True).start()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")  # the user's retries: not for a report
    uri = f"http://127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    from ci_helpers.trend import read_trend

    trend = read_trend(uri, ["p"], "main", ["m"], {"m": 1.0})

    elapsed = time.monotonic() - started
    server.close()
    assert trend is not None
    assert trend.reason
    assert uri in trend.reason
    assert len(accepted) == 1  # one attempt, no retry
    assert elapsed < 5


render = mermaid_render.render  # the real mermaid-cli fixture, shared with the plots' check


def test_the_trend_charts_render_in_real_mermaid(render):
    from ci_helpers.report.trend import trend_section
    from ci_helpers.trend import MetricTrend, Trend, TrendPoint

    def points(values):
        return tuple(TrendPoint(f"r{i}", f"{i:040x}", v) for i, v in enumerate(values))

    metrics = (
        MetricTrend("metrics.r2_score", points([0.90 + i / 1000 for i in range(10)]), 0.93),
        MetricTrend('evil"`\n```<img src=x>', points([-1.5, -1.5, -1.2]), -1.0),
    )
    markdown = "\n".join(trend_section(Trend("main", ("p",), 10, 10, metrics), "this PR", "PR"))

    result, svgs = render(markdown, "trend")

    assert result.returncode == 0, result.stderr[-3000:]
    assert len(svgs) == 2
    for svg in svgs:
        assert len(re.findall(r'class="line-plot-\d+"', svg)) == 1
        assert ">PR</text>" in svg  # this PR is the last, labelled point
    assert ">metrics.r2_score over the last 10 main builds, then this PR</text>" in svgs[0]
    assert "<img" not in svgs[1]
