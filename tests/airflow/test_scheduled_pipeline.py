"""The scheduled pipeline on real Apache Airflow (dag.test()), the session's mlflow server and
moto S3 on 127.0.0.1: promote, skip when unchanged, refuse and alert on a worse model, fail the run."""

from __future__ import annotations

import pytest

from tests.support.project import set_train_params
from tests.shapes.builders import _set_scale

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
    assert gate["passed"] and gate["metrics"][metric] == pytest.approx(run.data.metrics[metric])
    assert f"| metric | baseline | this run | delta | threshold | status |" in gate["report"]
    assert gate["report"] in first["log"]  # the task log shows the same table
    assert len(scenario.records_of("success_callbacks.jsonl")) == 1

    # unchanged: no stage, no MLflow run, no registry call
    moves_before = scenario.registry_tags()
    second = scenario.run(f"{shape}_pipeline", **settings)

    assert second["state"].endswith("success"), second["log"][-5000:]
    assert second["tasks"]["promote"].endswith("skipped") and second["tasks"]["alert"].endswith("skipped")
    assert "nothing changed since v1" in second["log"]
    assert len(scenario.runs()) == 1
    assert scenario.versions() == ["1"] and scenario.registry_tags() == moves_before
    with capsys.disabled():
        print(f"\n{shape}: first run {first['seconds']:.1f}s, unchanged {second['seconds']:.1f}s "
              f"({second['seconds'] / first['seconds']:.2f}x)")

    # a params change that clearly worsens the model: no promotion, the hook, a failed run
    spec["worsen"](scenario.project)
    worse = scenario.run(f"{shape}_pipeline", **settings)

    assert worse["state"].endswith("failed"), worse["log"][-5000:]
    assert worse["tasks"]["promote"].endswith("skipped")
    assert worse["tasks"]["alert"].endswith("failed")
    assert worse["tries"]["alert"] == 1  # a failed gate is not retried, although retries=1
    (alert,) = scenario.records_of("alerts.jsonl")
    regression = [check for check in alert["failing"] if check["kind"] == "regression"]
    assert regression and regression[0]["metric"] == metric
    assert regression[0]["baseline"] == pytest.approx(gate["metrics"][metric])
    assert "v1 (alias 'production')" in alert["baseline_source"]
    assert len(scenario.records_of("failure_callbacks.jsonl")) == 1
    assert "the model failed its gate" in worse["log"]
    assert scenario.versions() == ["1"] and scenario.alias("production") == "1"
    assert len(scenario.runs()) == 2  # the worse model's run holds its metrics

    # the same, with fail_on_alert=False: the hook runs and the run succeeds
    tolerant = scenario.run(f"{shape}_tolerant", **settings, fail_on_alert=False)

    assert tolerant["state"].endswith("success"), tolerant["log"][-5000:]
    assert tolerant["tasks"]["alert"].endswith("success") and tolerant["tasks"]["promote"].endswith("skipped")
    assert len(scenario.records_of("alerts.jsonl")) == 2
    assert len(scenario.records_of("failure_callbacks.jsonl")) == 1
    assert scenario.alias("production") == "1"
