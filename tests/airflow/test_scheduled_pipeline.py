"""The scheduled pipeline on real Apache Airflow (dag.test()), the session's mlflow server and
moto S3 on 127.0.0.1: promote, skip when unchanged, refuse and alert on a worse model, fail the run."""

from __future__ import annotations

import pytest

from tests.shapes.builders import _set_scale
from tests.support.project import set_train_params

from .conftest import make_scenario

pytestmark = pytest.mark.integration

SHAPES = {
    # the example project: its training logs the model to the run it is handed; r2 higher is better
    "housing": {
        "template": "housing_template",
        "metric": "metrics.r2_score",
        "settings": {
            "thresholds": ["metrics.r2_score>=0.3"],
            "max_regressions": ["metrics.r2_score=0.02"],
            "baseline_alias": "production",
            "alias": "production",
            "allow_missing_baseline": True,  # the first run has nothing behind the alias
        },
        "worsen": lambda project: set_train_params(project, n_estimators=8, max_depth=1),
    },
    # DVC's get-started shape: no MLflow in its training (the `artifacts:` model is registered),
    # metrics in a cached directory; the first baseline is main's, read through DVC
    "get_started": {
        "template": "get_started_template",
        "metric": "avg_prec.test",
        "settings": {
            "thresholds": ["avg_prec.test>=0"],
            "max_regressions": ["avg_prec.test=0.01"],
            "baseline_alias": "production",
            "baseline_ref": "main",
            "alias": "production",
        },
        "worsen": lambda project: _set_scale(project / "params.yaml", 1),
    },
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_promote_skip_unchanged_then_a_worse_model_alerts_and_fails(
    shape, request, airflow_env, mlflow_server, tmp_path, capsys
):
    spec = SHAPES[shape]
    scenario = make_scenario(airflow_env, request.getfixturevalue(spec["template"]), tmp_path, mlflow_server.url)
    metric, settings = spec["metric"], {**spec["settings"], "retries": 1}

    first = scenario.run(f"{shape}_pipeline", **settings)

    assert first["state"].endswith("success"), first["log"][-5000:]
    assert first["tasks"]["promote"].endswith("success")
    assert first["tasks"]["alert"].endswith("skipped")
    assert scenario.versions() == ["1"]
    assert scenario.alias("production") == "1"
    (run,) = scenario.runs()
    assert metric in run.data.metrics, run.data.metrics  # the pipeline's metrics are on its run
    gate = first["gate"]
    assert gate["passed"]
    assert gate["metrics"][metric] == pytest.approx(run.data.metrics[metric])
    assert "| metric | baseline | this run | delta | threshold | status |" in gate["report"]
    assert gate["report"] in first["log"]  # the task log shows the same table
    assert len(scenario.records_of("success_callbacks.jsonl")) == 1

    # unchanged: no stage, no MLflow run, no registry call
    moves_before = scenario.registry_tags()
    second = scenario.run(f"{shape}_pipeline", **settings)

    assert second["state"].endswith("success"), second["log"][-5000:]
    assert second["tasks"]["promote"].endswith("skipped")
    assert second["tasks"]["alert"].endswith("skipped")
    assert "nothing changed since v1" in second["log"]
    assert len(scenario.runs()) == 1
    assert scenario.versions() == ["1"]
    assert scenario.registry_tags() == moves_before
    with capsys.disabled():  # a fresh process per run: dag.test()'s ~5 s start-up is in both (bench/bench_airflow.py)
        print(
            f"\n{shape}: first run {first['seconds']:.1f}s, unchanged {second['seconds']:.1f}s "
            f"({second['seconds'] / first['seconds']:.2f}x)"
        )

    # a params change that clearly worsens the model: no promotion, the hook, a failed run
    spec["worsen"](scenario.project)
    worse = scenario.run(f"{shape}_pipeline", **settings)

    assert worse["state"].endswith("failed"), worse["log"][-5000:]
    assert worse["tasks"]["promote"].endswith("skipped")
    assert worse["tasks"]["alert"].endswith("failed")
    assert worse["tries"]["alert"] == 1  # a failed gate is not retried, although retries=1
    (alert,) = scenario.records_of("alerts.jsonl")
    regression = [check for check in alert["failing"] if check["kind"] == "regression"]
    assert regression
    assert regression[0]["metric"] == metric
    assert regression[0]["baseline"] == pytest.approx(gate["metrics"][metric])
    assert "v1 (alias 'production')" in alert["baseline_source"]
    assert len(scenario.records_of("failure_callbacks.jsonl")) == 1
    assert "the model failed its gate" in worse["log"]
    assert scenario.versions() == ["1"]
    assert scenario.alias("production") == "1"
    assert len(scenario.runs()) == 2  # the worse model's run holds its metrics

    # the same, with fail_on_alert=False: the hook runs and the run succeeds
    tolerant = scenario.run(f"{shape}_tolerant", **settings, fail_on_alert=False)

    assert tolerant["state"].endswith("success"), tolerant["log"][-5000:]
    assert tolerant["tasks"]["alert"].endswith("success")
    assert tolerant["tasks"]["promote"].endswith("skipped")
    assert len(scenario.records_of("alerts.jsonl")) == 2
    assert len(scenario.records_of("failure_callbacks.jsonl")) == 1
    assert scenario.alias("production") == "1"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_missing_baseline_fails_unless_allowed(shape, request, airflow_env, mlflow_server, tmp_path):
    spec = SHAPES[shape]
    scenario = make_scenario(airflow_env, request.getfixturevalue(spec["template"]), tmp_path, mlflow_server.url)
    metric = spec["metric"]
    settings = {"max_regressions": [f"{metric}=0.02"], "baseline_alias": "production", "alias": "production"}

    strict = scenario.run(f"{shape}_strict", **settings)

    assert strict["state"].endswith("failed"), strict["log"][-5000:]
    assert strict["tasks"]["alert"].endswith("failed")
    assert strict["tasks"]["promote"].endswith("skipped")
    (alert,) = scenario.records_of("alerts.jsonl")
    (check,) = alert["failing"]
    assert check["metric"] == metric
    assert check["baseline"] is None
    assert "no baseline to check the regression rule against" in alert["report"]
    assert "nothing behind alias 'production'" in alert["report"]
    assert scenario.versions() == []
    (first_run,) = scenario.runs()

    allowed = scenario.run(f"{shape}_allowed", **settings, allow_missing_baseline=True)

    assert allowed["state"].endswith("success"), allowed["log"][-5000:]
    assert scenario.alias("production") == "1"
    version = scenario.client().get_model_version(scenario.model_name, "1")
    if shape == "housing":
        # nothing retrained this time: the version is the model the first run's training logged
        assert version.run_id == first_run.info.run_id
    else:
        # its training logs nothing: dvc.yaml's `artifacts:` model, logged into this run
        assert version.tags["mlops.model_path"] == "models/model.json"
        assert version.run_id == scenario.runs()[0].info.run_id


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_an_unreachable_tracking_server_is_retried_then_fails(shape, request, airflow_env, tmp_path):
    from tests.support.servers import refused_port

    down = f"http://127.0.0.1:{refused_port()}"
    spec = SHAPES[shape]
    scenario = make_scenario(airflow_env, request.getfixturevalue(spec["template"]), tmp_path, down)
    lock = scenario.project / "dvc.lock"
    before = lock.read_text() if lock.exists() else None

    result = scenario.run(f"{shape}_mlflow_down", thresholds=[f"{spec['metric']}>=0"], retries=1)

    assert result["state"].endswith("failed"), result["log"][-5000:]
    assert result["tasks"]["run_dvc_pipeline"].endswith("failed")
    assert result["tries"]["run_dvc_pipeline"] == 2  # an infrastructure failure is retried
    assert "MlopsInfrastructureError" in result["log"]
    assert down in result["log"]
    assert len(scenario.records_of("failure_callbacks.jsonl")) == 1
    assert (lock.read_text() if lock.exists() else None) == before  # refused before any stage ran


OPERATORS_DAG = """
import os
from ci_helpers.airflow import DvcReproOperator, GateMetricsOperator, PromoteModelOperator
from airflow.sdk import DAG

with DAG("{dag_id}", schedule=None, params={{"alias": "{alias}", "min_r2": "{min_r2}"}},
         default_args={{"retries": 1}}) as dag:
    repro = DvcReproOperator(task_id="repro", project_dir="{project}", model_name="{model}",
                             alias="{{{{ params.alias }}}}", experiment="{experiment}")
    gate = GateMetricsOperator(task_id="gate", pipeline_task_id="repro",
                               thresholds=["metrics.r2_score>={{{{ params.min_r2 }}}}"])
    promote = PromoteModelOperator(task_id="promote", pipeline_task_id="repro", gate_task_id="gate",
                                   model_name="{model}", alias="{{{{ params.alias }}}}")
    repro >> gate >> promote
"""


def test_the_operators_on_their_own_with_templated_fields(airflow_env, housing_template, tmp_path):
    """On the embedded default store, sqlite:///<project>/mlflow.db, with Airflow's cwd elsewhere."""
    from .conftest import run_dag

    scenario = make_scenario(airflow_env, housing_template, tmp_path, "")
    scenario.tracking_uri = f"sqlite:///{scenario.project / 'mlflow.db'}"

    def run(dag_id: str, alias: str, min_r2: str) -> dict:
        source = OPERATORS_DAG.format(
            dag_id=dag_id,
            alias=alias,
            min_r2=min_r2,
            project=scenario.project,
            model=scenario.model_name,
            experiment=scenario.experiment,
        )
        return run_dag(airflow_env, source, dag_id)

    passing = run("ops_candidate", "candidate", "0.3")

    assert passing["state"].endswith("success"), passing["log"][-5000:]
    assert scenario.alias("candidate") == "1"  # the alias came from the rendered template
    (mlflow_run,) = scenario.runs()  # its artifacts beside the project's database, not in Airflow's cwd
    assert mlflow_run.info.artifact_uri.startswith((scenario.project / "mlruns").as_uri())

    failing = run("ops_strict", "strict", "0.99")

    assert failing["state"].endswith("failed"), failing["log"][-5000:]
    assert failing["tasks"]["gate"].endswith("failed")
    assert failing["tries"]["gate"] == 1
    assert failing["tasks"]["promote"].endswith("upstream_failed")
    assert "MlopsGateFailed" in failing["log"]
    assert "metrics.r2_score" in failing["log"]
    assert scenario.alias("strict") is None
    assert scenario.versions() == ["1"]


def test_airflow_lists_the_provider(airflow_env):
    import json
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "providers", "list", "--output", "json"],
        env=airflow_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    providers = {entry["package_name"]: entry for entry in json.loads(result.stdout)}
    from importlib.metadata import version

    assert providers["mlops-actions"]["version"] == version("mlops-actions")
