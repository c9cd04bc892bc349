"""Airflow DAG for examples/housing: `dvc repro` daily, gate the metrics, then promote or alert.

To point it at your own project, change the settings below (or set the environment variables):
- MLOPS_PROJECT_DIR: a checkout of your DVC project on the worker (pull it first, or run
  `git pull && dvc pull` in a task before this DAG; the DAG reproduces what is there);
- MODEL_NAME / ALIAS: the registered model and the alias to move when the gate passes;
- THRESHOLDS / MAX_REGRESSIONS: the same syntax as `ci-helpers --threshold/--max-regression`;
- MLFLOW_TRACKING_URI: your MLflow server (default: sqlite:///<project>/mlflow.db);
- alert: any callable taking (failing_checks, context), e.g. a Slack or PagerDuty call.
Install on the Airflow workers: pip install 'mlops-actions[airflow]'.
"""

from __future__ import annotations

import os
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
    baseline_alias="production",
    allow_missing_baseline=True,  # the first run has nothing behind `production` to compare with
    schedule="@daily",
    retries=2,
    alert=log_alert,
)
