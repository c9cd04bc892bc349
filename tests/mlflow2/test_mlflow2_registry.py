"""register-model, promote and rollback against an MLflow 2.22 tracking server, on runs whose
model an MLflow 2 script logged (`log_model(artifact_path="model")`): versions registered the
MLflow 2 way, aliases and their history, and a logged-model URI refused before any write."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.support.run import ci_helpers, read_report

pytestmark = pytest.mark.integration

# A user's MLflow 2 training: a run with a metric and a sklearn model under `model/`.
TRAIN_ON_MLFLOW2 = """
import sys, mlflow, mlflow.sklearn
from sklearn.linear_model import LinearRegression
mlflow.set_experiment(sys.argv[1])
with mlflow.start_run() as run:
    mlflow.log_metric("r2", float(sys.argv[2]))
    mlflow.sklearn.log_model(LinearRegression().fit([[1], [2]], [1, 2]), artifact_path="model",
                             pip_requirements=["scikit-learn"])
print("RUN", run.info.run_id)
"""


def _mlflow2_run(python, url: str, experiment: str, r2: float) -> str:
    done = subprocess.run(
        [str(python), "-c", TRAIN_ON_MLFLOW2, experiment, str(r2)],
        env={**os.environ, "MLFLOW_TRACKING_URI": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("RUN "))


def _client(url: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(url, registry_uri=url)


def test_the_server_says_it_is_mlflow_2(mlflow2_server):
    from ci_helpers.adapters.mlflow_server import server_info

    info = server_info(mlflow2_server.url)

    assert (info.version or "").startswith("2.22.")
    assert info.major == 2
    assert not info.logged_models


def test_register_promote_and_rollback_on_mlflow_2(mlflow2_python, mlflow2_server, tmp_path):
    url, name = mlflow2_server.url, f"m2-{uuid.uuid4().hex[:8]}"
    experiment = f"exp-{name}"
    client = _client(url)
    first_run = _mlflow2_run(mlflow2_python, url, experiment, 0.8)
    second_run = _mlflow2_run(mlflow2_python, url, experiment, 0.9)
    common = ("--model-name", name, "--tracking-uri", url)

    # a run's MLflow 2 model, by --run-id
    first = ci_helpers(
        "register-model", *common, "--run-id", first_run, "--alias", "staging", "--tag", "team=pricing",
        "--report-json", str(tmp_path / "r1.json"), cwd=tmp_path,
    )  # fmt: skip

    assert first.code == 0, first.output
    v1 = client.get_model_version(name, read_report(tmp_path / "r1.json")["version"])
    assert v1.source == f"{client.get_run(first_run).info.artifact_uri}/model"
    assert v1.run_id == first_run
    assert not v1.model_id
    assert v1.tags["team"] == "pricing"
    assert client.get_model_version_by_alias(name, "staging").version == v1.version
    assert ci_helpers("promote", *common, "--from-alias", "staging", "--to-alias", "production", cwd=tmp_path).code == 0

    # a runs:/ URI: registered as MLflow 2 registers it, the run's artifact URI with the run
    second = ci_helpers(
        "register-model", *common, "--model-uri", f"runs:/{second_run}/model", "--alias", "staging",
        "--report-json", str(tmp_path / "r2.json"), cwd=tmp_path,
    )  # fmt: skip

    assert second.code == 0, second.output
    v2 = client.get_model_version(name, read_report(tmp_path / "r2.json")["version"])
    assert v2.source == f"{client.get_run(second_run).info.artifact_uri}/model"
    assert v2.run_id == second_run

    # promote behind a gate on the version's run metrics, then roll back
    gated = ci_helpers(
        "promote", *common, "--from-alias", "staging", "--to-alias", "production", "--threshold", "r2>=0.85",
        cwd=tmp_path,
    )  # fmt: skip
    assert gated.code == 0, gated.output
    assert client.get_model_version_by_alias(name, "production").version == v2.version
    refused = ci_helpers(
        "promote", *common, "--from-alias", "production", "--to-alias", "canary", "--threshold", "r2>=0.95",
        cwd=tmp_path,
    )  # fmt: skip
    assert refused.code == 1, refused.output

    back = ci_helpers("rollback", *common, "--alias", "production", cwd=tmp_path)

    assert back.code == 0, back.output
    assert client.get_model_version_by_alias(name, "production").version == v1.version
    tags = client.get_registered_model(name).tags
    moves = [json.loads(tags[key]) for key in sorted(tags) if key.startswith("mlops.alias_move.production.")]
    assert [(m["version"], m["previous"], bool(m.get("rolled_back"))) for m in moves] == [
        (v1.version, None, False),
        (v2.version, v1.version, False),
        (v1.version, v2.version, True),
    ]
    assert "canary" not in (client.get_registered_model(name).aliases or {})

    # a logged model (MLflow 3 only) is refused before any write, in one line naming the server
    versions = sorted(v.version for v in client.search_model_versions(f"name = '{name}'"))
    logged = ci_helpers("register-model", *common, "--model-uri", "models:/m-0123456789abcdef", cwd=tmp_path)

    assert logged.code == 2, logged.output
    line = logged.stderr.strip().splitlines()[-1]
    assert "MLflow 2.22." in line
    assert "logged models" in line
    assert "runs:/<run_id>/<path>" in line
    assert "unreachable" not in logged.output
    assert sorted(v.version for v in client.search_model_versions(f"name = '{name}'")) == versions

    # a runs:/ URI whose path holds no model: refused before any write
    mistyped = ci_helpers("register-model", *common, "--model-uri", f"runs:/{second_run}/modle", cwd=tmp_path)

    assert mistyped.code == 2, mistyped.output
    line = mistyped.stderr.strip().splitlines()[-1]
    assert "no model at 'modle'" in line
    assert "runs:/<run_id>/model" in line
    assert sorted(v.version for v in client.search_model_versions(f"name = '{name}'")) == versions
