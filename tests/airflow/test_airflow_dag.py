"""The Airflow DAG factory as Airflow parses it: bad configuration refused at parse time, the
settings Airflow users pass reaching the DAG and its tasks, the example DAG's shape. (The DAG runs
are in test_scheduled_pipeline.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _parse(airflow_env: dict, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=airflow_env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_malformed_threshold_fails_at_parse_time(airflow_env, housing_template):
    result = _parse(
        airflow_env,
        f"""
        from ci_helpers.airflow import mlops_pipeline_dag
        mlops_pipeline_dag("bad", {str(housing_template)!r}, model_name="housing", thresholds=["r2>>0.7"])
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
        "run_dvc_pipeline": ["validate"],
        "validate": ["alert", "promote"],
        "promote": [],
        "alert": [],
    }


def test_the_factory_passes_airflow_settings_to_the_dag_and_its_tasks(airflow_env, housing_template):
    result = _parse(
        airflow_env,
        f"""
        import json, warnings
        from datetime import timedelta
        from ci_helpers.airflow import mlops_pipeline_dag

        def on_fail(context): pass
        def on_ok(context): pass

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dag = mlops_pipeline_dag(
                "settings", {str(housing_template)!r}, model_name="housing",
                default_args={{"owner": "ml-team", "retries": 3}}, retry_delay=timedelta(seconds=7),
                on_success_callback=on_ok, on_failure_callback=on_fail,
                email=["ml@example.invalid"], email_on_failure=True, tags=["ml"], params={{"alias": "x"}},
            )
            shared = mlops_pipeline_dag("shared", {str(housing_template)!r}, model_name="housing", max_active_runs=2)
        task = dag.get_task("promote")
        print(json.dumps({{
            "max_active_runs": dag.max_active_runs, "catchup": dag.catchup, "tags": sorted(dag.tags),
            "params": dag.params.dump(), "on_failure": dag.on_failure_callback is on_fail,
            "on_success": dag.on_success_callback is on_ok, "owner": task.owner, "retries": task.retries,
            "retry_delay": task.retry_delay.total_seconds(), "email": task.email,
            "email_on_failure": task.email_on_failure, "shared_runs": shared.max_active_runs,
            "warnings": [str(w.message) for w in caught if "max_active_runs" in str(w.message)],
        }}))
    """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    settings = json.loads(result.stdout.strip().splitlines()[-1])
    assert settings["max_active_runs"] == 1
    assert settings["catchup"] is False
    assert settings["tags"] == ["ml"]
    assert settings["params"] == {"alias": "x"}
    assert settings["on_failure"]
    assert settings["on_success"]
    assert (settings["owner"], settings["retries"], settings["retry_delay"]) == ("ml-team", 3, 7.0)
    assert settings["email"] == ["ml@example.invalid"]
    assert settings["email_on_failure"] is True
    assert settings["shared_runs"] == 2
    (warning,) = settings["warnings"]
    assert "corrupt its DVC workspace" in warning


def test_repo_url_mode_parses_without_the_network_and_allows_overlapping_runs(airflow_env):
    """repo_url: nothing is fetched at parse time (the URL points nowhere), no max_active_runs
    warning (every run has checkouts of its own), the queues reach their tasks."""
    result = _parse(
        airflow_env,
        """
        import json, warnings
        from ci_helpers.airflow import mlops_pipeline_dag
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dag = mlops_pipeline_dag(
                "repo", repo_url="https://127.0.0.1:9/team/project.git", branch="release", subdir="ml/housing",
                model_name="housing", max_active_runs=3, task_queues={"run_dvc_pipeline": "gpu"},
                tracking_uri="http://127.0.0.1:5000",
            )
        task = dag.get_task("run_dvc_pipeline")
        print(json.dumps({
            "warnings": [str(w.message) for w in caught if "max_active_runs" in str(w.message)],
            "max_active_runs": dag.max_active_runs, "queue": task.queue, "gate_queue": dag.get_task("validate").queue,
            "repo": [task.repo_url, task.branch, task.subdir], "project_dir": task.project_dir,
        }))
        """,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["warnings"] == []
    assert parsed["max_active_runs"] == 3
    assert parsed["queue"] == "gpu"
    assert parsed["gate_queue"] != "gpu"
    assert parsed["repo"] == ["https://127.0.0.1:9/team/project.git", "release", "ml/housing"]
    assert parsed["project_dir"] is None


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("repo_url='https://u:tok3n-s3cret@127.0.0.1/r.git'", "git_conn_id"),
        ("repo_url=''", "repo_url is empty"),
        ("repo_url='/srv/repo.git', subdir='../elsewhere'", "subdir"),
        ("repo_url='/srv/repo.git', branch='bad..name'", "branch"),
        ("'/srv/project', repo_url='/srv/repo.git'", "not both"),
        ("", "pass project_dir"),
        ("repo_url='/srv/repo.git', task_queues={'train': 'gpu'}", "task_queues names no task train"),
    ],
    ids=["secret-in-url", "empty-url", "subdir-outside", "bad-branch", "both", "neither", "unknown-queue-task"],
)
def test_bad_repo_settings_fail_at_parse_time(airflow_env, arguments, expected):
    result = _parse(
        airflow_env,
        f"""
        from ci_helpers.airflow import mlops_pipeline_dag
        mlops_pipeline_dag("bad", {arguments}{", " if arguments else ""}model_name="housing")
        """,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: mlops DAG configuration:"), result.stderr[-2000:]
    assert expected in last
    assert "tok3n-s3cret" not in result.stderr
