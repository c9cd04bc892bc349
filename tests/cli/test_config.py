"""mlops.yaml reaches every command through one mechanism (click's default_map), ranked below the
command line and the environment; empty variables count as unset; list variables split on lines.

All through the real `ci-helpers` executable, as CI runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.run import Outcome, ci_helpers

ROOT = Path(__file__).resolve().parents[2]
BAD_NAME = "invalid model name 'bad name!'"


def write_config(repo: Path, **settings: object) -> None:
    (repo / "mlops.yaml").write_text(yaml.safe_dump(settings))


def snapshot(repo: Path) -> str:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=repo, capture_output=True, text=True, check=False
    )
    return status.stdout


def assert_bad_input(result: Outcome, *fragments: str) -> None:
    """Exit 2, one line saying what is wrong, no traceback."""
    assert result.code == 2, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(error_lines) == 1, result.output
    for fragment in fragments:
        assert fragment in error_lines[0], result.output
    assert "Traceback" not in result.output


def action_env_left_empty() -> dict[str, str]:
    """What the three actions' run steps hand ci-helpers when every input is left empty."""
    env: dict[str, str] = {}
    for path in sorted((ROOT / "actions").glob("*/action.yml")):
        for step in yaml.safe_load(path.read_text())["runs"]["steps"]:
            env |= {name: "" for name in step.get("env", {}) if name.startswith("CI_HELPERS_")}
    return env


def tracking(tmp_path: Path) -> tuple[str, str]:
    return "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"


# --- mlops.yaml reaches every command -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [("register-model", "--run-id", "0123"), ("promote",), ("rollback",)],
    ids=["register-model", "promote", "rollback"],
)
def test_the_registry_commands_read_mlops_yaml_from_repo(mini_repo, tmp_path, args):
    write_config(mini_repo, model_name="bad name!", eval_stage="evaluate", lock_mode="tag")  # other commands' keys
    result = ci_helpers(*args, "--repo", str(mini_repo), *tracking(tmp_path), cwd=tmp_path)
    assert_bad_input(result, BAD_NAME, "e.g. housing-regressor")
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("command", ["register-model", "promote", "rollback"])
def test_the_registry_commands_find_mlops_yaml_through_ci_helpers_repo_or_the_working_directory(
    mini_repo, tmp_path, command
):
    write_config(mini_repo, model_name="bad name!")
    from_env = ci_helpers(command, *tracking(tmp_path), cwd=tmp_path, env={"CI_HELPERS_REPO": str(mini_repo)})
    assert_bad_input(from_env, BAD_NAME)
    from_cwd = ci_helpers(command, *tracking(tmp_path), cwd=mini_repo)
    assert_bad_input(from_cwd, BAD_NAME)


def test_the_registry_commands_default_tracking_store_lives_in_repo(mini_repo, tmp_path):
    result = ci_helpers("rollback", "--repo", str(mini_repo), "--model-name", "mini", cwd=tmp_path)
    assert result.code == 2, result.output
    assert "has no alias 'production'" in result.output
    assert (mini_repo / "mlflow.db").exists()
    assert not (tmp_path / "mlflow.db").exists()


def test_master_build_reads_mlops_yaml(mini_repo):
    write_config(mini_repo, model_name="bad name!", stage="evaluate")
    before = snapshot(mini_repo)
    result = ci_helpers("master-build", "--repo", str(mini_repo), cwd=mini_repo)
    assert_bad_input(result, BAD_NAME)
    assert snapshot(mini_repo) == before


def test_master_build_reads_its_stage_list_from_mlops_yaml(mini_repo):
    write_config(mini_repo, stages=["evaluate", "trian"])
    result = ci_helpers("master-build", "--repo", str(mini_repo), cwd=mini_repo)
    assert_bad_input(result, "unknown DVC stage 'trian'", "--stage")


def test_check_remote_reads_mlops_yaml(mini_repo):
    write_config(mini_repo, remote="nope")
    result = ci_helpers("check-remote", "--repo", str(mini_repo), cwd=mini_repo)
    assert_bad_input(result, "DVC remote 'nope' is not configured", "known: store")


def test_pull_reads_mlops_yaml(mini_repo):
    write_config(mini_repo, eval_stage="nope")
    result = ci_helpers("pull", "--repo", str(mini_repo), cwd=mini_repo)
    assert_bad_input(result, "unknown DVC stage 'nope'", "--eval-stage")


def test_evaluate_reads_mlops_yaml(mini_repo):
    write_config(mini_repo, model="model.pkl", test_data="data.csv", target="label", task="classification")
    result = ci_helpers("evaluate", "--repo", str(mini_repo), cwd=mini_repo)
    assert result.code == 0, result.output
    assert set(json.loads(result.stdout)) == {"accuracy", "precision", "recall", "f1", "roc_auc"}


def test_gate_reads_mlops_yaml_and_writes_its_report_json_in_the_project(mini_repo, tmp_path):
    write_config(mini_repo, metrics_files=["metrics.json"], thresholds=["eval.accuracy>=0.5"], report_json="gate.json")
    result = ci_helpers("gate", "--repo", str(mini_repo), cwd=tmp_path)  # run from elsewhere
    assert result.code == 0, result.output
    report = json.loads((mini_repo / "gate.json").read_text())
    assert report["passed"] is True
    assert "eval.accuracy" in json.dumps(report)
    assert not (tmp_path / "gate.json").exists()


def test_pr_validate_reads_mlops_yaml_and_writes_its_report_json(mini_repo, tmp_path):
    write_config(
        mini_repo, eval_stage="evaluate", thresholds=["eval.accuracy>=0.999"], report_json=str(tmp_path / "pr.json")
    )
    result = ci_helpers("pr-validate", "--repo", str(mini_repo), "--no-track", cwd=mini_repo)
    assert result.code == 1, result.output
    assert "eval.accuracy = " in result.output
    assert "does not meet >= 0.999" in result.output
    report = json.loads((tmp_path / "pr.json").read_text())
    assert report["passed"] is False


# --- bad values in the file -----------------------------------------------------------------------


def test_an_unwritable_report_json_in_mlops_yaml_is_refused_before_anything_runs(mini_repo):
    (mini_repo / "a-file").write_text("")
    write_config(mini_repo, eval_stage="evaluate", report_json="a-file/report.json")
    before = snapshot(mini_repo)
    result = ci_helpers("pr-validate", "--repo", str(mini_repo), cwd=mini_repo)
    assert_bad_input(result, "mlops.yaml: key 'report_json'", "cannot be written", "pass a writable path")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert snapshot(mini_repo) == before
    assert not (mini_repo / "mlflow.db").exists()


@pytest.mark.parametrize("command", ["check-lock", "gate", "master-build", "rollback"])
def test_an_unknown_key_is_an_error_for_every_command(mini_repo, command):
    write_config(mini_repo, treshold="eval.accuracy>=0.5")
    result = ci_helpers(command, "--repo", str(mini_repo), cwd=mini_repo)
    assert_bad_input(result, "unknown key 'treshold'", "threshold", "fix or remove it")


def test_help_works_beside_a_broken_mlops_yaml(mini_repo):
    write_config(mini_repo, treshold="eval.accuracy>=0.5")
    result = ci_helpers("gate", "--help", cwd=mini_repo)
    assert result.code == 0, result.output
    assert "Usage:" in result.output


# --- priority: CLI > env > file > built-in ----------------------------------------------------------


def test_cli_beats_env_beats_file(mini_repo, tmp_path):
    write_config(mini_repo, metrics_file="metrics.json", threshold="eval.accuracy>=0.999")
    gate = ("gate", "--repo", str(mini_repo))
    from_file = ci_helpers(*gate, cwd=mini_repo)
    assert from_file.code == 1, from_file.output
    assert "does not meet >= 0.999" in from_file.output
    env = {"CI_HELPERS_THRESHOLD": "eval.accuracy>=0.5"}
    from_env = ci_helpers(*gate, cwd=mini_repo, env=env)
    assert from_env.code == 0, from_env.output
    from_cli = ci_helpers(*gate, "--threshold", "eval.accuracy>=0.99", cwd=mini_repo, env=env)
    assert from_cli.code == 1, from_cli.output
    assert "does not meet >= 0.99" in from_cli.output


def test_cli_beats_env_beats_file_for_the_registry_commands(mini_repo, tmp_path):
    write_config(mini_repo, model_name="bad name!")
    env = {"CI_HELPERS_MODEL_NAME": "env name!"}
    from_env = ci_helpers("rollback", *tracking(tmp_path), cwd=mini_repo, env=env)
    assert_bad_input(from_env, "invalid model name 'env name!'")
    from_cli = ci_helpers("rollback", "--model-name", "cli name!", *tracking(tmp_path), cwd=mini_repo, env=env)
    assert_bad_input(from_cli, "invalid model name 'cli name!'")


def test_choosing_the_builtin_evaluator_in_the_environment_overrides_the_files_eval_stage(mini_repo):
    write_config(mini_repo, eval_stage="nope", task="classification")
    env = {"CI_HELPERS_MODEL": "model.pkl", "CI_HELPERS_TEST_DATA": "data.csv", "CI_HELPERS_TARGET": "label"}
    result = ci_helpers("evaluate", "--repo", str(mini_repo), cwd=mini_repo, env=env)
    assert result.code == 0, result.output
    assert "accuracy" in json.loads(result.stdout)


def test_choosing_an_eval_stage_on_the_command_line_overrides_the_files_builtin_evaluator(mini_repo):
    write_config(mini_repo, model="missing.pkl", test_data="missing.csv", target="nope")
    result = ci_helpers("evaluate", "--repo", str(mini_repo), "--eval-stage", "evaluate", cwd=mini_repo)
    assert result.code == 0, result.output
    assert "eval.accuracy" in json.loads(result.stdout)


# --- environment variables ------------------------------------------------------------------------


def test_a_list_variable_takes_one_rule_per_line_and_a_rule_may_hold_spaces(mini_repo):
    env = {"CI_HELPERS_THRESHOLD": "eval.accuracy >= 0.5\n\n  eval.accuracy > 0.99  \n"}
    result = ci_helpers("gate", "--repo", str(mini_repo), "--metrics-file", "metrics.json", cwd=mini_repo, env=env)
    assert result.code == 1, result.output  # two rules, the second one fails
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "does not meet > 0.99" in errors[0]
    assert ">= 0.5" in result.output  # the first rule is in the summary table, and passed


def test_a_list_variable_no_longer_splits_on_spaces(mini_repo):
    env = {"CI_HELPERS_THRESHOLD": "eval.accuracy>=0.5 eval.accuracy<=1"}
    result = ci_helpers("gate", "--repo", str(mini_repo), "--metrics-file", "metrics.json", cwd=mini_repo, env=env)
    assert_bad_input(result, "malformed threshold 'eval.accuracy>=0.5 eval.accuracy<=1'", "METRIC OP VALUE")


def test_a_list_variable_of_blank_lines_is_unset_and_the_file_applies(mini_repo):
    write_config(mini_repo, metrics_file="metrics.json", threshold="eval.accuracy>=0.999")
    result = ci_helpers("gate", "--repo", str(mini_repo), cwd=mini_repo, env={"CI_HELPERS_THRESHOLD": "\n \n"})
    assert result.code == 1, result.output
    assert "does not meet >= 0.999" in result.output


@pytest.mark.parametrize(
    ("config", "args", "fragment"),
    [
        ({"model_name": "bad name!"}, ("master-build",), BAD_NAME),
        ({"model_name": "bad name!"}, ("register-model", "--run-id", "0123"), BAD_NAME),
        ({"model_name": "bad name!"}, ("promote",), BAD_NAME),
        ({"model_name": "bad name!"}, ("rollback",), BAD_NAME),
        ({"eval_stage": "nope"}, ("pr-validate",), "unknown DVC stage 'nope'"),
        ({"eval_stage": "nope"}, ("pull",), "unknown DVC stage 'nope'"),
        ({"remote": "nope"}, ("check-remote",), "DVC remote 'nope' is not configured"),
        ({"metrics_file": "nope.json"}, ("gate",), "metrics file nope.json does not exist"),
    ],
    ids=["master-build", "register-model", "promote", "rollback", "pr-validate", "pull", "check-remote", "gate"],
)
def test_empty_variables_as_an_action_sets_them_are_unset(mini_repo, tmp_path, config, args, fragment):
    """Every CI_HELPERS_* variable the actions set, empty (flags, choices, lists, paths included):
    none is an error, none hides the file's value."""
    env = action_env_left_empty()
    assert {"CI_HELPERS_LOCK_MODE", "CI_HELPERS_TASK", "CI_HELPERS_ALLOW_MISSING_BASELINE"} <= set(env)
    write_config(mini_repo, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", **config)
    result = ci_helpers(*args, cwd=mini_repo, env=env)
    assert_bad_input(result, fragment)


def test_empty_variables_leave_the_builtin_defaults(mini_repo):
    env = action_env_left_empty()
    builtin = ("--model", "model.pkl", "--test-data", "data.csv", "--target", "label")
    result = ci_helpers("evaluate", *builtin, cwd=mini_repo, env=env)
    assert result.code == 0, result.output
    assert set(json.loads(result.stdout)) == {"r2", "rmse", "mae"}  # --task's default: regression


def test_master_build_hands_the_model_source_to_its_flow(mini_repo, monkeypatch):
    """--model-path / --model-artifact (and their mlops.yaml keys) reach MasterBuildOptions."""
    from click.testing import CliRunner

    from ci_helpers.cli import cli
    from ci_helpers.flows import build

    seen = []

    def fake_build(options, report_path):
        seen.append(options)
        return type("Result", (), {"passed": True})()

    monkeypatch.setattr(build, "build_and_publish", fake_build)
    write_config(mini_repo, model_path="models/model.pkl", model_artifact="from-file", lock_mode="tag")
    env = {"CI_HELPERS_MODEL_ARTIFACT": "from-env", "CI_HELPERS_ALIAS": ""}
    result = CliRunner().invoke(cli, ["master-build", "--repo", str(mini_repo)], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    options = seen[0]
    assert (options.model_path, options.model_artifact) == ("models/model.pkl", "from-env")
    assert (options.lock_mode, options.alias, options.stages) == ("tag", "staging", ("train",))
    result = CliRunner().invoke(
        cli,
        ["master-build", "--repo", str(mini_repo), "--model-path", "m.joblib", "--model-artifact", "cli"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (seen[1].model_path, seen[1].model_artifact) == ("m.joblib", "cli")
