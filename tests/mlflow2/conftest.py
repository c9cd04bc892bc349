"""An MLflow 2.22 tracking server (sqlite backend, artifacts proxied to the moto S3 server) on
127.0.0.1, and the example project with its training on MLflow 2 (`log_model(artifact_path=...)`),
run by the MLflow 2 venv's Python. ci-helpers itself stays on the main venv (an MLflow 3 client).

The venv is scripts/setup-mlflow2.sh's: <repo root>/.cache/venvs/mlflow2.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import MLFLOW_BUCKET
from tests.support import project as support_project
from tests.support.servers import MlflowServer, s3_client

MLFLOW2_VENV = Path(__file__).resolve().parents[2] / ".cache" / "venvs" / "mlflow2"
TEMPLATE_BUCKET = "mlflow2-template"


@pytest.fixture(scope="session")
def mlflow2_python() -> Path:
    python = MLFLOW2_VENV / "bin" / "python"
    if not (python.is_file() and (MLFLOW2_VENV / "bin" / "mlflow").is_file()):
        pytest.skip(f"no MLflow 2 venv at {MLFLOW2_VENV}: run scripts/setup-mlflow2.sh")
    return python


@pytest.fixture(scope="session")
def mlflow2_server(mlflow2_python, moto_endpoint, tmp_path_factory):
    """`mlflow server` of MLflow 2.22, once per session (per xdist worker)."""
    server = MlflowServer(
        tmp_path_factory.mktemp("mlflow2-server"),
        moto_endpoint,
        MLFLOW_BUCKET,
        mlflow=str(mlflow2_python.parent / "mlflow"),
    )
    server.wait_ready()
    yield server
    server.stop()


def on_mlflow2(example: Path, python: Path) -> None:
    """Make the example project an MLflow 2 one: every stage runs the MLflow 2 venv's Python, and
    train.py logs its model the MLflow 2 way."""
    dvc_yaml = example / "dvc.yaml"
    dvc_yaml.write_text(re.sub(r"cmd: python ", f"cmd: {python} ", dvc_yaml.read_text()))
    train = example / "src" / "train.py"
    text = train.read_text().replace('name="model",', 'artifact_path="model",')
    assert 'artifact_path="model"' in text
    train.write_text(text)


def without_model_logging(project: Path) -> None:
    """train.py logs params and metrics but no model; dvc.yaml declares the pickle under `artifacts:`."""
    train = project / "src" / "train.py"
    text, count = re.subn(r"    mlflow\.sklearn\.log_model\(.*?\n    \)\n", "", train.read_text(), flags=re.S)
    assert count == 1
    train.write_text(text)
    dvc_yaml = project / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text() + "artifacts:\n  housing-model:\n    path: models/model.pkl\n    type: model\n"
    )


@pytest.fixture(scope="session")
def mlflow2_template(mlflow2_python, moto_endpoint, tmp_path_factory) -> Path:
    """main and pr-better of the example project on MLflow 2, pushed to a bare origin and the bucket."""
    base = tmp_path_factory.mktemp("mlflow2-template")
    example = base / "example"
    shutil.copytree(
        support_project.EXAMPLE, example, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__")
    )
    on_mlflow2(example, mlflow2_python)
    s3_client(moto_endpoint).create_bucket(Bucket=TEMPLATE_BUCKET)
    # build_template builds from support_project.EXAMPLE: here, from the MLflow 2 variant of it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(support_project, "EXAMPLE", example)
        support_project.build_template(base, moto_endpoint, TEMPLATE_BUCKET, base / "train-mlflow.db", full=False)
    return base


@pytest.fixture
def mlflow2_project(mlflow2_template, moto_endpoint, tmp_path):
    return support_project.Project.copy_of(mlflow2_template, tmp_path, moto_endpoint, TEMPLATE_BUCKET)
