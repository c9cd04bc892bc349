"""Real Apache Airflow: a metadata DB in a temp AIRFLOW_HOME, DAGs run with dag.test()."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.project import EXAMPLE, sh

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    pytest.importorskip("airflow", reason="the airflow extra is installed by scripts/setup.sh")
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    env = {
        **os.environ,
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


@pytest.fixture
def housing_project(tmp_path) -> Path:
    """The example project as a fresh git + DVC repo (no remote: Airflow reproduces in place)."""
    project = tmp_path / "housing"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__"))
    sh(["git", "init", "-q", "-b", "main"], project)
    sh(["dvc", "init", "-q"], project)
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-qm", "housing"], project)
    return project


def run_dag(airflow_env: dict, dag_file: Path, dag_id: str, extra_env: dict | None = None) -> dict:
    """Put the DAG file in the dags folder (dag.test() parses from there) and run it."""
    target = Path(airflow_env["AIRFLOW__CORE__DAGS_FOLDER"]) / dag_file.name
    shutil.copy(dag_file, target)
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
    assert lines, result.stdout[-4000:] + result.stderr[-4000:]
    return {**json.loads(lines[-1][7:]), "log": result.stdout + result.stderr}
