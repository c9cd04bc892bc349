"""The scheduled pipeline on real Apache Airflow (dag.test()) against an MLflow 2.22 tracking
server, with the example project's stages on MLflow 2: one run reproduces, gates, registers the
model the MLflow 2 way and moves the alias."""

from __future__ import annotations

import shutil

import pytest

from tests.airflow.conftest import _git_project, airflow_env, make_scenario  # noqa: F401 (a fixture)
from tests.support.project import EXAMPLE

from .conftest import on_mlflow2

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def mlflow2_housing(mlflow2_python, tmp_path_factory):
    """The example project on MLflow 2 as a git + DVC repo, never reproduced (Airflow does it)."""
    base = tmp_path_factory.mktemp("airflow-mlflow2")
    example = base / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__"))
    on_mlflow2(example, mlflow2_python)
    return _git_project(example, base / "housing")


def test_a_scheduled_run_registers_and_promotes_on_mlflow_2(airflow_env, mlflow2_housing, mlflow2_server, tmp_path):  # noqa: F811
    scenario = make_scenario(airflow_env, mlflow2_housing, tmp_path, mlflow2_server.url)

    outcome = scenario.run(
        "housing_mlflow2",
        thresholds=["metrics.r2_score>=0.3"],
        baseline_alias="production",
        alias="production",
        allow_missing_baseline=True,
        retries=0,
    )

    assert outcome["state"].endswith("success"), outcome["log"][-5000:]
    assert outcome["tasks"]["promote"].endswith("success")
    assert "unreachable" not in outcome["log"]
    (run,) = scenario.runs()
    assert run.data.params["train.n_estimators"] == "60"  # the MLflow 2 training logged into the run
    client = scenario.client()
    assert scenario.versions() == ["1"]
    version = client.get_model_version_by_alias(scenario.model_name, "production")
    assert version.version == "1"
    assert version.source == f"{run.info.artifact_uri}/model"
    assert version.run_id == run.info.run_id
    assert not version.model_id
    assert version.tags["mlops.kind"] == "airflow"
    assert any(key.startswith("mlops.alias_move.production.") for key in scenario.registry_tags())
