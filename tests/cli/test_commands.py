"""The CLI's working paths on a small real project (CliRunner, real git and DVC)."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from ci_helpers.cli import cli
from tests.support.run import BUILTIN_CLASSIFICATION

from .conftest import classification_data


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def all_commands():
    return sorted(cli.commands.items())


@pytest.mark.parametrize(("name", "command"), all_commands())
def test_every_command_has_help_text(name, command):
    assert command.help, name
    assert len(command.help.strip()) > 20, name
    result = invoke(name, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output
    for param in command.params:
        if isinstance(param, click.Argument):  # click gives arguments no help: the text names them
            assert param.make_metavar(click.Context(command)).split("[")[0] in command.help, f"{name} {param.name}"
        elif param.name != "help":
            assert param.help, f"{name} --{param.name} has no help"


def test_builtin_evaluate_csv_classification_with_roc_auc(mini_repo, tmp_path):
    out = tmp_path / "metrics.json"
    result = invoke(
        "evaluate",
        "--repo",
        str(mini_repo),
        "--model",
        "model.pkl",
        *BUILTIN_CLASSIFICATION,
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert 0.8 < metrics["accuracy"] < 1
    assert metrics["roc_auc"] > 0.9


def test_builtin_evaluate_parquet_and_mlflow_model_directory(mini_repo, tmp_path):
    import pickle

    import mlflow.sklearn

    model = pickle.loads((mini_repo / "model.pkl").read_bytes())
    mlflow.sklearn.save_model(
        model, str(mini_repo / "mlflow_model"), serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
    )
    classification_data(seed=1).to_parquet(mini_repo / "test.parquet")
    result = invoke(
        "evaluate",
        "--repo",
        str(mini_repo),
        "--model",
        "mlflow_model",
        "--test-data",
        "test.parquet",
        "--target",
        "label",
        "--task",
        "classification",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert 0.8 < metrics["accuracy"] < 1
    assert "roc_auc" not in metrics  # a pyfunc model gives no probabilities


def test_gate_command_with_github_outputs(mini_repo, tmp_path):
    output, summary = tmp_path / "out", tmp_path / "summary"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    passed = invoke(
        "gate",
        "--repo",
        str(mini_repo),
        "--metrics-file",
        "metrics.json",
        "--threshold",
        "eval.accuracy>=0.8",
        "--report-json",
        str(tmp_path / "r.json"),
        env=env,
    )
    assert passed.exit_code == 0, passed.output
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True
    failed = invoke(
        "gate",
        "--repo",
        str(mini_repo),
        "--metrics-file",
        "metrics.json",
        "--threshold",
        "eval.accuracy>=0.999",
        env=env,
    )
    assert failed.exit_code == 1
    assert "::error" in failed.output
    assert "eval.accuracy" in failed.output
    assert "passed=false" in output.read_text() or "passed<<" in output.read_text()
    assert "eval.accuracy" in summary.read_text()


def test_env_vars_feed_options_and_beat_mlops_yaml(mini_repo):
    (mini_repo / "mlops.yaml").write_text("thresholds: ['eval.accuracy>=0.999']\n")
    from_file = invoke("gate", "--repo", str(mini_repo), "--metrics-file", "metrics.json")
    assert from_file.exit_code == 1
    from_env = invoke(
        "gate",
        "--repo",
        str(mini_repo),
        "--metrics-file",
        "metrics.json",
        env={"CI_HELPERS_THRESHOLD": "eval.accuracy>=0.5\neval.accuracy <= 1"},
    )
    assert from_env.exit_code == 0, from_env.output


def test_version_is_pyprojects_read_from_the_installed_metadata():
    import re
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"$', pyproject, re.M).group(1)
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output == f"ci-helpers, version {version}\n"


def test_secrets_are_masked_on_actions():
    result = invoke(
        "check-lock", "--repo", "/nonexistent", env={"GITHUB_ACTIONS": "true", "MLFLOW_TRACKING_TOKEN": "tok-123456"}
    )
    assert "::add-mask::tok-123456" in result.output
    assert result.exit_code == 2


def _track_data_with_dvc(repo) -> None:
    import subprocess

    for args in (["git", "rm", "-q", "--cached", "data.csv"], ["dvc", "add", "-q", "data.csv"]):
        subprocess.run(args, cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "add", "data.csv.dvc", ".gitignore"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "data by dvc"], cwd=repo, check=True)


def test_dvc_cache_key_writes_key_and_path_outputs_for_the_pull_targets(mini_repo, tmp_path, monkeypatch):
    """The wiring: the key of exactly what `pull` fetches, as step outputs, one line on stderr."""
    import sys
    import types
    from dataclasses import dataclass
    from pathlib import Path

    seen = []

    @dataclass(frozen=True)
    class FakeKey:
        key: str
        path: Path
        objects: int
        restore_prefix: str = "dvc-"

    def cache_key(project, targets):
        seen.append((project.root, tuple(targets)))
        return FakeKey("dvc-abc123", project.root / ".dvc" / "cache", 3)

    fake = types.ModuleType("ci_helpers.dvc_cache")
    fake.cache_key = cache_key  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ci_helpers.dvc_cache", fake)
    _track_data_with_dvc(mini_repo)
    output = tmp_path / "out"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "CI_HELPERS_REMOTE": "no-such-remote"}
    args = ("--repo", str(mini_repo), "--model", "model.pkl", "--test-data", "data.csv", "--target", "label")
    result = invoke("dvc-cache-key", *args, env=env)
    assert result.exit_code == 0, result.output
    assert seen == [(mini_repo.resolve(), ("data.csv",))]  # model.pkl is in git: nothing to pull
    written = output.read_text()
    assert "key" in written
    assert "dvc-abc123" in written
    assert str(mini_repo.resolve() / ".dvc" / "cache") in written
    assert "restore-prefix" in written
    assert "DVC cache key for 3 objects: dvc-abc123" in result.stderr

    local = invoke("dvc-cache-key", *args)  # outside Actions: the outputs on stdout
    assert local.exit_code == 0, local.output
    assert "key=dvc-abc123" in local.stdout


def test_dvc_cache_key_refuses_bad_input_with_exit_2(mini_repo):
    result = invoke("dvc-cache-key", "--repo", str(mini_repo), "--eval-stage", "no-such-stage")
    assert result.exit_code == 2
    assert "no-such-stage" in result.stderr
