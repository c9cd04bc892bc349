"""The Airflow integration with real Apache Airflow (dag.test()) on a copy of the example project,
MLflow on the embedded sqlite default."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import run_dag

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = textwrap.dedent("""
    import json, os
    from ci_helpers.airflow import mlops_pipeline_dag

    def record_alert(failing_checks, context):
        with open(os.environ["ALERT_FILE"], "w") as handle:
            json.dump({"failing": failing_checks, "dag_id": context["dag_id"]}, handle)

    dag = mlops_pipeline_dag(
        "{dag_id}", os.environ["MLOPS_PROJECT_DIR"], model_name="housing", alias="production",
        thresholds={thresholds!r}, force_stages={force!r}, tracking_uri=os.environ["MLFLOW_TRACKING_URI"], schedule=None,
        retries=0, alert=record_alert,
    )
""")


def _write_dag(tmp_path: Path, dag_id: str, thresholds: list[str], force: list[str] | None = None) -> Path:
    path = tmp_path / f"{dag_id}.py"
    path.write_text(
        DAG_FILE.replace("{dag_id}", dag_id)
        .replace("{thresholds!r}", repr(thresholds))
        .replace("{force!r}", repr(force or []))
    )
    return path


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _stages_ran(uri: str) -> list[str]:
    client = _client(uri)
    experiment = client.get_experiment_by_name("housing")
    runs = client.search_runs([experiment.experiment_id], "tags.`mlops.kind` = 'airflow'", order_by=["start_time DESC"])
    return runs[0].data.tags["mlops.stages_ran"].split(",")


def test_good_model_promotes_and_an_unchanged_rerun_skips_every_stage(airflow_env, housing_project, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLOPS_PROJECT_DIR": str(housing_project), "MLFLOW_TRACKING_URI": uri, "ALERT_FILE": str(tmp_path / "a")}
    dag_file = _write_dag(tmp_path, "housing_good", ["metrics.r2_score>=0.75"])

    first = run_dag(airflow_env, dag_file, "housing_good", env)

    assert first["state"].endswith("success"), first["log"][-4000:]
    assert first["tasks"]["promote"].endswith("success")
    assert first["tasks"]["alert"].endswith("skipped")
    assert _stages_ran(uri) == ["generate", "featurize", "train", "evaluate"]
    client = _client(uri)
    assert str(client.get_model_version_by_alias("housing", "production").version) == "1"
    assert not (tmp_path / "a").exists()

    second = run_dag(airflow_env, dag_file, "housing_good", env)

    assert second["state"].endswith("success"), second["log"][-4000:]
    assert _stages_ran(uri) == ["none"]  # DVC's cache: no stage ran
    assert [str(v.version) for v in client.search_model_versions("name = 'housing'")] == [
        "1"
    ]  # same model, same version
    # forcing the training stage, as master-build does: train and its downstream run, upstream does not
    forced = run_dag(
        airflow_env,
        _write_dag(tmp_path, "housing_forced", ["metrics.r2_score>=0.75"], ["train"]),
        "housing_forced",
        env,
    )
    assert forced["state"].endswith("success"), forced["log"][-4000:]
    assert _stages_ran(uri) == ["train", "evaluate"]

    with capsys.disabled():
        print(
            f"\nairflow DAG: first run {first['seconds']:.1f}s, unchanged re-run {second['seconds']:.1f}s "
            f"(ratio {second['seconds'] / first['seconds']:.2f})"
        )


def test_failing_threshold_takes_the_alert_path(airflow_env, housing_project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    alert_file = tmp_path / "alert.json"
    env = {"MLOPS_PROJECT_DIR": str(housing_project), "MLFLOW_TRACKING_URI": uri, "ALERT_FILE": str(alert_file)}

    result = run_dag(
        airflow_env, _write_dag(tmp_path, "housing_strict", ["metrics.r2_score>=0.99"]), "housing_strict", env
    )

    assert result["tasks"]["alert"].endswith("success"), result["log"][-4000:]
    assert result["tasks"]["promote"].endswith("skipped")
    alert = json.loads(alert_file.read_text())
    assert alert["dag_id"] == "housing_strict"
    assert [(c["metric"], c["op"], c["threshold"]) for c in alert["failing"]] == [("metrics.r2_score", ">=", 0.99)]
    assert alert["failing"][0]["value"] < 0.99
    assert not [m for m in _client(uri).search_registered_models() if m.aliases]  # no alias moved


def _parse(airflow_env: dict, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=airflow_env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_malformed_threshold_fails_at_parse_time(airflow_env, housing_project):
    result = _parse(
        airflow_env,
        f"""
        from ci_helpers.airflow import mlops_pipeline_dag
        mlops_pipeline_dag("bad", {str(housing_project)!r}, model_name="housing", thresholds=["r2>>0.7"])
    """,
    )
    assert result.returncode != 0
    assert "mlops DAG configuration: malformed threshold 'r2>>0.7'" in result.stderr


def test_missing_project_fails_at_parse_time(airflow_env, tmp_path):
    result = _parse(
        airflow_env,
        f"""
        from ci_helpers.airflow import mlops_pipeline_dag
        mlops_pipeline_dag("bad", {str(tmp_path / "nowhere")!r}, model_name="housing")
    """,
    )
    assert result.returncode != 0
    assert "has no dvc.yaml; point project_dir at your DVC project" in result.stderr


def test_the_example_dag_has_the_standard_shape(airflow_env):
    result = _parse(
        airflow_env,
        """
        import json, runpy
        dag = runpy.run_path("examples/airflow/dags/housing_pipeline.py")["dag"]
        print(json.dumps({t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}))
    """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shape = json.loads(result.stdout.strip().splitlines()[-1])
    assert shape == {
        "run_dvc_pipeline": ["promote", "validate"],
        "validate": ["alert", "promote"],
        "promote": [],
        "alert": [],
    }
