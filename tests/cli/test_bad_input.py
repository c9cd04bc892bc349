"""Every bad input: exit code 2, one clear line naming the problem and the fix, nothing changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ci_helpers.cli import cli
from tests.support.run import BUILTIN_CLASSIFICATION as BUILTIN


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def snapshot(repo: Path) -> str:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=repo, capture_output=True, text=True, check=False
    )
    return status.stdout


def assert_bad_input(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(error_lines) == 1, result.output
    for fragment in fragments:
        assert fragment in result.output


@pytest.mark.parametrize("threshold", ["r2>>0.7", "r2>=abc", ""])
def test_malformed_threshold(mini_repo, threshold):
    before = snapshot(mini_repo)
    result = invoke("pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate", "--threshold", threshold)
    assert_bad_input(result, f"malformed threshold '{threshold}'", "METRIC OP VALUE")
    assert snapshot(mini_repo) == before


def test_threshold_on_a_metric_no_file_has(mini_repo):
    before = snapshot(mini_repo)
    result = invoke("pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate", "--threshold", "eval.f1>=0.5")
    assert_bad_input(result, "no metrics file has a metric 'eval.f1'", "eval.accuracy")
    assert snapshot(mini_repo) == before
    assert not (mini_repo / "mlflow.db").exists()


def test_missing_metrics_file_for_gate(mini_repo):
    result = invoke("gate", "--repo", str(mini_repo), "--metrics-file", "missing.json", "--threshold", "a>=1")
    assert_bad_input(result, "metrics file missing.json does not exist")


def test_missing_metrics_file_for_pr_validate(mini_repo):
    before = snapshot(mini_repo)
    result = invoke(
        "pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate", "--metrics-file", "missing.json"
    )
    assert_bad_input(result, "metrics file missing.json does not exist", "--metrics-file")
    assert snapshot(mini_repo) == before


def test_not_a_git_repository(tmp_path):
    result = invoke("pr-validate", "--repo", str(tmp_path), "--eval-stage", "evaluate")
    assert_bad_input(result, "is not a git repository")


def test_not_a_dvc_project(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = invoke("pr-validate", "--repo", str(tmp_path), "--eval-stage", "evaluate")
    assert_bad_input(result, "is not a DVC project", "dvc init")


def test_unknown_stage(mini_repo):
    result = invoke("pr-validate", "--repo", str(mini_repo), "--eval-stage", "evalute")
    assert_bad_input(result, "unknown DVC stage 'evalute'", "evaluate")


def test_a_dvc_config_that_does_not_parse(mini_repo):
    """A section written twice: DVC's own words, exit 2, before anything is read off a remote."""
    config = mini_repo / ".dvc" / "config"
    config.write_text(config.read_text() + "[core]\n    autostage = true\n")
    result = invoke("pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate")
    assert_bad_input(result, "DVC cannot read the project", "Duplicate section")


def test_unknown_remote(mini_repo):
    result = invoke("pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate", "--remote", "nope")
    assert_bad_input(result, "DVC remote 'nope' is not configured", "store")


def test_baseline_ref_that_does_not_exist(mini_repo):
    before = snapshot(mini_repo)
    result = invoke(
        "pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate", "--baseline-ref", "no-such-branch"
    )
    assert_bad_input(result, "baseline ref 'no-such-branch' is not a branch, tag or commit", "--baseline-ref")
    assert snapshot(mini_repo) == before


def test_model_file_missing(mini_repo):
    result = invoke("evaluate", "--repo", str(mini_repo), "--model", "missing.pkl", *BUILTIN)
    assert_bad_input(result, "missing.pkl does not exist")


def test_model_not_loadable(mini_repo):
    (mini_repo / "garbage.pkl").write_bytes(b"this is not a pickle")
    result = invoke("evaluate", "--repo", str(mini_repo), "--model", "garbage.pkl", *BUILTIN)
    assert_bad_input(result, "garbage.pkl cannot be loaded")


def test_test_data_without_target_column(mini_repo):
    result = invoke(
        "evaluate",
        "--repo",
        str(mini_repo),
        "--model",
        "model.pkl",
        "--test-data",
        "data.csv",
        "--target",
        "price",
        "--task",
        "classification",
    )
    assert_bad_input(result, "has no target column 'price'", "x1", "--target")


def test_test_data_of_unknown_format(mini_repo):
    (mini_repo / "data.xlsx").write_text("x")
    result = invoke(
        "evaluate", "--repo", str(mini_repo), "--model", "model.pkl", "--test-data", "data.xlsx", "--target", "label"
    )
    assert_bad_input(result, "neither CSV nor Parquet")


def test_unsupported_task_on_the_command_line(mini_repo):
    result = invoke(
        "evaluate",
        "--repo",
        str(mini_repo),
        "--model",
        "model.pkl",
        "--test-data",
        "data.csv",
        "--target",
        "label",
        "--task",
        "ranking",
    )
    assert_bad_input(result, "Invalid value for '--task'", "regression", "classification")


def test_unsupported_task_in_mlops_yaml(mini_repo):
    (mini_repo / "mlops.yaml").write_text("task: ranking\n")
    result = invoke(
        "evaluate", "--repo", str(mini_repo), "--model", "model.pkl", "--test-data", "data.csv", "--target", "label"
    )
    assert_bad_input(result, "mlops.yaml: key 'task'", "regression")


def test_mlops_yaml_with_an_unknown_key(mini_repo):
    (mini_repo / "mlops.yaml").write_text("treshold: r2>=0.5\n")
    result = invoke("pr-validate", "--repo", str(mini_repo))
    assert_bad_input(result, "unknown key 'treshold'", "threshold", "fix or remove it")


@pytest.mark.parametrize(
    ("content", "key"),
    [("thresholds: 5\n", "thresholds"), ("remote: [a, b]\n", "remote"), ("max_regression: [1, 2]\n", "max_regression")],
)
def test_mlops_yaml_with_a_bad_type(mini_repo, content, key):
    (mini_repo / "mlops.yaml").write_text(content)
    result = invoke("pr-validate", "--repo", str(mini_repo))
    assert_bad_input(result, f"mlops.yaml: key '{key}", "fix or remove it")


def test_builtin_evaluator_half_configured(mini_repo):
    result = invoke("pr-validate", "--repo", str(mini_repo), "--model", "model.pkl")
    assert_bad_input(result, "the built-in evaluator needs --test-data, --target too")


def test_nothing_to_evaluate_when_the_project_declares_no_metrics(mini_repo):
    (mini_repo / "dvc.yaml").write_text(
        (mini_repo / "dvc.yaml").read_text().replace("metrics:", "outs:"), encoding="utf-8"
    )
    before = snapshot(mini_repo)
    result = invoke("pr-validate", "--repo", str(mini_repo))
    assert_bad_input(result, "nothing to evaluate: the project declares no metrics", "--eval-stage")
    assert snapshot(mini_repo) == before


def test_a_metrics_file_nobody_writes(mini_repo):
    result = invoke("pr-validate", "--repo", str(mini_repo), "--metrics-file", "nope.json")
    assert_bad_input(result, "metrics file nope.json does not exist and no stage writes it")


def test_a_gated_metric_the_project_metrics_lack(mini_repo):
    result = invoke("pr-validate", "--repo", str(mini_repo), "--threshold", "eval.acc>=0.5")
    assert_bad_input(result, "no metrics file has a metric 'eval.acc'", "eval.accuracy")


def test_eval_stage_and_model_together(mini_repo):
    result = invoke(
        "pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate", "--model", "model.pkl", *BUILTIN
    )
    assert_bad_input(result, "both --eval-stage and --model")


def test_an_unwritable_report_json_is_refused_before_anything_runs(mini_repo, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    before = snapshot(mini_repo)
    result = invoke("pr-validate", "--repo", str(mini_repo), "--report-json", str(blocker / "report.json"))
    assert_bad_input(result, "--report-json", "cannot be written", "pass a writable path")
    assert "Traceback" not in result.output
    assert snapshot(mini_repo) == before


def test_a_pipeline_with_a_cycle(mini_repo):
    """Two stages that each read the other's output: named, exit 2, nothing run."""
    (mini_repo / "dvc.yaml").write_text(
        "stages:\n"
        "  a:\n    cmd: cp b.txt a.txt\n    deps: [b.txt]\n    outs: [a.txt]\n"
        "  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n"
        "  evaluate:\n    cmd: python evaluate.py\n    deps: [evaluate.py, model.pkl, data.csv]\n"
        "    metrics:\n      - metrics.json:\n          cache: false\n"
    )
    before = snapshot(mini_repo)
    result = invoke("pr-validate", "--repo", str(mini_repo), "--eval-stage", "evaluate")
    assert_bad_input(result, "the pipeline has a cycle among stages a, b", "`dvc dag`")
    assert "evaluate" not in result.output.split("cycle among stages")[1].split(":")[0]
    assert snapshot(mini_repo) == before
