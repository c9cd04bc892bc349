"""Real Apache Airflow: a metadata DB in a temp AIRFLOW_HOME, DAGs run with dag.test() in a fresh
process each; the session's mlflow server (artifacts on the moto S3 server) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.airflow_repos import RegistryView
from tests.support.project import EXAMPLE, sh

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# The DAG file every scenario runs: the factory with its settings from the environment, and hooks
# that record what Airflow called (the alert hook, the DAG run's callbacks) in files.
FACTORY_DAG = textwrap.dedent("""
    import json, os
    from datetime import timedelta
    from ci_helpers.airflow import mlops_pipeline_dag

    CONFIG = json.loads(os.environ["MLOPS_DAG_CONFIG"])
    RECORDS = CONFIG.pop("records")

    def _record(name, payload):
        with open(os.path.join(RECORDS, name), "a") as handle:
            handle.write(json.dumps(payload) + "\\n")

    def record_alert(failing_checks, context):
        _record("alerts.jsonl", {"failing": failing_checks, "dag_id": context["dag_id"],
                                 "baseline_source": context["baseline_source"], "report": context["report"]})

    def record_failure(context):
        _record("failure_callbacks.jsonl", {"reason": str(context.get("reason"))})

    def record_success(context):
        _record("success_callbacks.jsonl", {"reason": str(context.get("reason"))})

    dag = mlops_pipeline_dag(
        CONFIG.pop("dag_id"), CONFIG.pop("project_dir"), alert=record_alert,
        on_failure_callback=record_failure, on_success_callback=record_success,
        retry_delay=timedelta(seconds=1), schedule=None, **CONFIG,
    )
""")


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    pytest.importorskip("airflow", reason="the airflow extra is installed by scripts/setup.sh")
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    # the workers' own environment: no MLflow run or store an earlier test of this process left set
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT"))
    }
    env = {
        **inherited,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "true",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return env


def _git_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__"))
    sh(["git", "init", "-q", "-b", "main"], target)
    sh(["dvc", "init", "-q"], target)
    sh(["git", "add", "-A"], target)
    sh(["git", "commit", "-qm", target.name], target)
    return target


@pytest.fixture(scope="session")
def housing_template(tmp_path_factory) -> Path:
    """The example project as a git + DVC repo, never reproduced (Airflow reproduces in place)."""
    return _git_project(EXAMPLE, tmp_path_factory.mktemp("airflow-housing") / "housing")


@pytest.fixture(scope="session")
def get_started_template(tmp_path_factory) -> Path:
    """DVC's get-started shape (tests/shapes): `.dvc` data, directory outs, metrics inside the
    cached eval/ directory, top-level metrics and an `artifacts:` model; its training logs nothing
    to MLflow. main is reproduced and committed, its cache is in the checkout."""
    from tests.shapes.builders import build_shape

    return build_shape("get_started", tmp_path_factory.mktemp("airflow-get-started") / "get_started")


class MlflowView:
    """What a scenario's DAG runs left on the MLflow server and in its records folder."""

    tracking_uri: str
    experiment: str
    model_name: str
    records: Path

    def records_of(self, name: str) -> list[dict]:
        path = self.records / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    @property
    def registry(self) -> RegistryView:
        return RegistryView(self.tracking_uri, self.experiment, self.model_name)

    def client(self):
        return self.registry.client()

    def runs(self) -> list:
        return self.registry.runs()

    def versions(self) -> list[str]:
        return self.registry.versions()

    def alias(self, alias: str) -> str | None:
        return self.registry.alias(alias)

    def registry_tags(self) -> dict[str, str]:
        return dict(self.client().get_registered_model(self.model_name).tags or {})


@dataclass
class Scenario(MlflowView):
    """One test's copy of a project, its own experiment and model name on the shared mlflow server."""

    airflow_env: dict[str, str]
    project: Path
    tracking_uri: str
    records: Path
    model_name: str = field(default_factory=lambda: f"model-{uuid.uuid4().hex[:8]}")
    experiment: str = field(default_factory=lambda: f"airflow-{uuid.uuid4().hex[:8]}")

    def run(self, dag_id: str, **config: object) -> dict:
        """Run the factory's DAG with these settings (the scenario's project, model name, experiment
        and tracking URI unless given), once, with dag.test()."""
        settings = {
            "dag_id": dag_id,
            "project_dir": str(self.project),
            "model_name": self.model_name,
            "experiment": self.experiment,
            "tracking_uri": self.tracking_uri,
            "records": str(self.records),
            **config,
        }
        return run_dag(self.airflow_env, FACTORY_DAG, dag_id, {"MLOPS_DAG_CONFIG": json.dumps(settings)})


def make_scenario(airflow_env, template: Path, tmp_path: Path, tracking_uri: str) -> Scenario:
    project = tmp_path / template.name
    shutil.copytree(template, project, symlinks=True)
    records = tmp_path / "records"
    records.mkdir()
    return Scenario(airflow_env, project, tracking_uri, records)


def run_dag(
    airflow_env: dict, dag_source: str, dag_id: str, extra_env: dict | None = None, expect_result: bool = True
) -> dict:
    """Put the DAG file in the dags folder (dag.test() parses from there) and run it.
    expect_result=False: the DAG file may fail to parse; the result is then just the log."""
    target = Path(airflow_env["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    target.write_text(dag_source)
    try:
        result = subprocess.run(
            [sys.executable, str(HERE / "run_dag.py"), str(target), dag_id],
            env={**airflow_env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        target.unlink()
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines and not expect_result:
        return {"log": result.stdout + result.stderr, "returncode": result.returncode}
    assert lines, result.stdout[-4000:] + result.stderr[-4000:]
    return {**json.loads(lines[-1][7:]), "log": result.stdout + result.stderr}
