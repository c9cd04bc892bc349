"""Airflow DAG for examples/housing: `dvc repro` daily, gate the metrics, then promote or alert.

To point it at your own project, change the settings below (or set the environment variables):
- MLOPS_PROJECT_DIR: a checkout of your DVC project on the worker, used by this DAG alone (update
  it with `git pull && dvc pull` in a task before this DAG; the DAG reproduces what is there);
- MODEL_NAME / ALIAS: the registered model and the alias to move when the gate passes;
- THRESHOLDS / MAX_REGRESSIONS: the same syntax as `ci-helpers --threshold/--max-regression`;
- MLFLOW_TRACKING_URI: your MLflow server (default: sqlite:///<project>/mlflow.db);
- alert: any callable taking (failing_checks, context), e.g. a Slack or PagerDuty call; after it
  the run fails, so Airflow's own alerting (on_failure_callback, e-mail) sees a refused model.
Install on the Airflow workers: pip install 'mlops-actions[airflow]'.

On workers that share no disk (CeleryExecutor, KubernetesExecutor, hosted Airflow), replace
PROJECT_DIR by the repository: every task then checks out the commit the run pinned, afresh, and
hands on through XCom, the DVC remote and MLflow (see docs/airflow.md):

    mlops_pipeline_dag(
        "housing_pipeline",
        repo_url="https://git.example.com/ml/housing.git", branch="main", git_conn_id="git_ml",
        tracking_uri="https://mlflow.example.com", commit_lock=True, update_imports=True,
        force_stages=["train"], max_active_runs=2, ...the same settings as below...
    )
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from ci_helpers.airflow import log_alert, mlops_pipeline_dag

PROJECT_DIR = os.environ.get("MLOPS_PROJECT_DIR", str(Path(__file__).resolve().parents[2] / "housing"))

dag = mlops_pipeline_dag(
    "housing_pipeline",
    PROJECT_DIR,
    model_name="housing",
    alias="production",
    thresholds=["metrics.r2_score>=0.75", "metrics.rmse<=0.45"],
    max_regressions=["metrics.r2_score=0.02"],
    baseline_alias="production",  # the regression baseline: the model behind the alias
    # (else baseline_ref="main" would compare with the metrics committed on main)
    allow_missing_baseline=True,  # the first run has nothing behind `production` to compare with
    schedule="@daily",
    retries=2,  # infrastructure failures only; a failed gate is never retried
    retry_delay=timedelta(minutes=5),
    default_args={"owner": "ml-team"},
    alert=log_alert,
)
