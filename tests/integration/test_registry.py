"""register-model, promote and rollback against a real MLflow server."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.run import ci_helpers, github_env, read_outputs

pytestmark = pytest.mark.integration


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _run_with_model(uri: str, accuracy: float, with_model: bool = True) -> str:
    import mlflow
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    from ci_helpers.adapters.tracking import process_default_tracking_uri

    # the process default only for this run: later tests of this process start from a clean slate
    with process_default_tracking_uri(uri):
        mlflow.set_experiment("registry-tests")
        with mlflow.start_run() as run:
            mlflow.log_metric("accuracy", accuracy)
            if with_model:
                model = DummyClassifier().fit([[0], [1]], [0, 1])
                mlflow.sklearn.log_model(
                    model, name="model", pip_requirements=["scikit-learn"], serialization_format="cloudpickle"
                )
    return run.info.run_id


def _register_as_staging(uri: str, name: str, run: str, cwd):
    return ci_helpers(
        "register-model", "--model-name", name, "--run-id", run, "--alias", "staging", "--tracking-uri", uri, cwd=cwd
    )


def _promote_past_accuracy_gate(uri: str, name: str, cwd, *args: str, env: dict | None = None):
    return ci_helpers(
        "promote", "--model-name", name, "--threshold", "accuracy>=0.9", "--tracking-uri", uri, *args, cwd=cwd, env=env
    )


def test_register_promote_rollback_with_auditable_history(mlflow_server, tmp_path):
    uri, name = mlflow_server.url, f"clf-{uuid.uuid4().hex[:8]}"
    client = _client(uri)
    first, second = _run_with_model(uri, 0.91), _run_with_model(uri, 0.95)

    gh = github_env(tmp_path / "gh")
    registered = ci_helpers(
        "register-model",
        "--model-name",
        name,
        "--run-id",
        first,
        "--alias",
        "staging",
        "--tag",
        "team=forecasting",
        "--tracking-uri",
        uri,
        cwd=tmp_path,
        env=gh,
    )
    assert registered.code == 0, registered.output
    outputs = read_outputs(tmp_path / "gh" / "output")
    assert outputs["model-uri"] == f"models:/{name}/1"
    assert outputs["alias-uri"] == f"models:/{name}@staging"
    version = client.get_model_version(name, "1")
    assert version.tags["team"] == "forecasting"
    assert version.run_id == first
    assert version.source.startswith("models:/m-")  # the run's MLflow 3 logged model

    assert ci_helpers("promote", "--model-name", name, "--tracking-uri", uri, cwd=tmp_path).code == 0
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert _register_as_staging(uri, name, second, tmp_path).code == 0
    gated = _promote_past_accuracy_gate(uri, name, tmp_path, "--stage-transition", "Production")
    assert gated.code == 0, gated.output
    assert client.get_model_version_by_alias(name, "production").version == "2"
    assert client.get_model_version(name, "2").current_stage == "Production"

    back = ci_helpers(
        "rollback",
        "--model-name",
        name,
        "--alias",
        "production",
        "--tracking-uri",
        uri,
        "--report-json",
        str(tmp_path / "rb.json"),
        cwd=tmp_path,
    )
    assert back.code == 0, back.output
    assert client.get_model_version_by_alias(name, "production").version == "1"
    report = json.loads((tmp_path / "rb.json").read_text())
    assert report["alias"] == {
        "alias": "production",
        "version": "1",
        "previous": "2",
        "uri": f"models:/{name}@production",
    }
    from ci_helpers.adapters.registry import alias_history

    history = alias_history(uri, name, "production")
    # one tag per move: concurrent moves never overwrite each other's record
    assert (
        len([key for key in client.get_registered_model(name).tags if key.startswith("mlops.alias_move.production.")])
        == 3
    )
    assert [(h["version"], h["previous"]) for h in history] == [("1", None), ("2", "1"), ("1", "2")]
    assert all(h["at"] and h["by"] for h in history)
    assert history[-1]["reason"] == "rollback"

    # nothing earlier to go back to: a clear refusal, alias untouched
    again = ci_helpers("rollback", "--model-name", name, "--alias", "production", "--tracking-uri", uri, cwd=tmp_path)
    assert again.code == 2
    assert "no earlier holder" in again.output
    assert client.get_model_version_by_alias(name, "production").version == "1"


def test_promotion_gate_failure_moves_nothing(mlflow_server, tmp_path):
    uri, name = mlflow_server.url, f"clf-{uuid.uuid4().hex[:8]}"
    run = _run_with_model(uri, 0.6)
    assert _register_as_staging(uri, name, run, tmp_path).code == 0

    result = _promote_past_accuracy_gate(uri, name, tmp_path, env=github_env(tmp_path / "gh"))

    assert result.code == 1
    assert "accuracy = 0.6 does not meet >= 0.9" in result.output
    assert "production" not in _client(uri).get_registered_model(name).aliases


def test_register_a_run_without_a_model_is_refused(mlflow_server, tmp_path):
    uri, name = mlflow_server.url, f"clf-{uuid.uuid4().hex[:8]}"
    run = _run_with_model(uri, 0.9, with_model=False)

    result = ci_helpers("register-model", "--model-name", name, "--run-id", run, "--tracking-uri", uri, cwd=tmp_path)

    assert result.code == 2
    assert f"run {run} logged no model" in result.output
    assert _client(uri).search_model_versions(f"name = '{name}'") == []


def test_unknown_alias_to_promote(mlflow_server, tmp_path):
    result = ci_helpers(
        "promote", "--model-name", f"nope-{uuid.uuid4().hex[:6]}", "--tracking-uri", mlflow_server.url, cwd=tmp_path
    )
    assert result.code == 2
    assert "has no alias 'staging'" in result.output


def test_a_run_with_only_an_mlflow2_style_model_artifact_is_registered(mlflow_server, tmp_path):
    import mlflow.sklearn
    from sklearn.dummy import DummyRegressor

    uri, name = mlflow_server.url, f"reg-{uuid.uuid4().hex[:8]}"
    run = _run_with_model(uri, 0.9, with_model=False)
    mlflow.sklearn.save_model(
        DummyRegressor().fit([[0]], [1]),
        str(tmp_path / "saved"),
        pip_requirements=["scikit-learn"],
        serialization_format="cloudpickle",
    )
    _client(uri).log_artifacts(run, str(tmp_path / "saved"), "model")

    result = ci_helpers("register-model", "--model-name", name, "--run-id", run, "--tracking-uri", uri, cwd=tmp_path)

    assert result.code == 0, result.output
    version = _client(uri).get_model_version(name, "1")
    assert version.run_id == run
    assert version.source.endswith("/model")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--run-id", "0123456789abcdef0123456789abcdef"], "does not exist on this tracking server"),
        (["--model-uri", "not a uri"], "invalid --model-uri 'not a uri'"),
        (["--model-uri", "models:/m-0123456789abcdef0123456789abcdef"], "no logged model"),
        (["--model-uri", "runs:/0123456789abcdef0123456789abcdef/model"], "does not exist on this tracking server"),
        (["--run-id", "{run}", "--stage-transition", "Bogus"], "invalid --stage-transition 'Bogus'"),
        (["--run-id", "{run}", "--alias", "v3"], "invalid alias 'v3'"),
    ],
)
def test_register_bad_input_leaves_the_registry_untouched(mlflow_server, tmp_path, args, fragment):
    uri, name = mlflow_server.url, f"bad-{uuid.uuid4().hex[:8]}"
    run = _run_with_model(uri, 0.9) if "{run}" in args else ""
    result = ci_helpers(
        "register-model",
        "--model-name",
        name,
        *[arg.format(run=run) for arg in args],
        "--tracking-uri",
        uri,
        cwd=tmp_path,
    )
    assert result.code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    # no empty registered model, no version: the refusal changed nothing
    assert _client(uri).search_registered_models(filter_string=f"name = '{name}'") == []


def test_promote_with_a_bogus_stage_moves_nothing(mlflow_server, tmp_path):
    uri, name = mlflow_server.url, f"clf-{uuid.uuid4().hex[:8]}"
    run = _run_with_model(uri, 0.9)
    assert _register_as_staging(uri, name, run, tmp_path).code == 0
    result = ci_helpers(
        "promote", "--model-name", name, "--stage-transition", "Bogus", "--tracking-uri", uri, cwd=tmp_path
    )
    assert result.code == 2, result.output
    assert "invalid --stage-transition 'Bogus'" in result.output
    assert "production" not in (_client(uri).get_registered_model(name).aliases or {})


@pytest.mark.parametrize("command", ["register-model", "promote", "rollback"])
def test_registry_commands_refuse_an_unsupported_tracking_scheme_and_a_missing_repo(command, tmp_path):
    extra = ["--run-id", "0123456789abcdef0123456789abcdef"] if command == "register-model" else []
    unsupported = ci_helpers(command, "--model-name", "m", *extra, "--tracking-uri", "ftp://127.0.0.1/x", cwd=tmp_path)
    assert unsupported.code == 2, unsupported.output
    assert "ftp://127.0.0.1/x" in unsupported.output
    assert "Traceback" not in unsupported.output

    missing = tmp_path / "no-such-project"
    refused = ci_helpers(command, "--model-name", "m", *extra, "--repo", str(missing), cwd=tmp_path)
    assert refused.code == 2, refused.output
    assert f"--repo {missing} does not exist" in refused.output
    assert not missing.exists()  # the refusal created nothing, not even an mlflow.db
