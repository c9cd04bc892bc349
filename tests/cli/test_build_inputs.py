"""master-build and registry commands: every bad input is exit 2 with one clear line."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from ci_helpers.cli import cli

from .test_bad_input import assert_bad_input, snapshot


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def test_unknown_stage(mini_repo):
    result = invoke("master-build", "--repo", str(mini_repo), "--stage", "trian")
    assert_bad_input(result, "unknown DVC stage 'trian'", "--stage")


@pytest.mark.parametrize("name", ["bad name!", "-leading", "a/b"])
def test_invalid_model_name(mini_repo, name):
    result = invoke("master-build", "--repo", str(mini_repo), "--stage", "evaluate", "--model-name", name)
    assert_bad_input(result, f"invalid model name '{name}'")


@pytest.mark.parametrize("alias", ["latest", "v3", "has space", ""])
def test_invalid_alias(mini_repo, alias):
    result = invoke(
        "master-build", "--repo", str(mini_repo), "--stage", "evaluate", "--model-name", "m", "--alias", alias
    )
    assert_bad_input(result, f"invalid alias '{alias}'")


def test_invalid_lock_mode(mini_repo):
    result = invoke("master-build", "--repo", str(mini_repo), "--lock-mode", "force")
    assert_bad_input(result, "Invalid value for '--lock-mode'", "commit", "tag", "none")


def test_invalid_lock_mode_in_mlops_yaml(mini_repo):
    (mini_repo / "mlops.yaml").write_text("lock_mode: force-push\n")
    result = invoke("master-build", "--repo", str(mini_repo))
    assert_bad_input(result, "key 'lock_mode'")


def test_detached_head_without_branch(mini_repo):
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=mini_repo, check=True)
    before = snapshot(mini_repo)
    result = invoke("master-build", "--repo", str(mini_repo), "--stage", "evaluate")
    assert_bad_input(result, "HEAD is detached", "--branch")
    assert snapshot(mini_repo) == before


def test_no_git_identity(mini_repo, tmp_path):
    env = {
        "GIT_COMMITTER_NAME": None,
        "GIT_COMMITTER_EMAIL": None,
        "GIT_AUTHOR_NAME": None,
        "GIT_AUTHOR_EMAIL": None,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GITHUB_ACTIONS": None,
    }
    result = invoke("master-build", "--repo", str(mini_repo), "--stage", "evaluate", env=env)
    assert_bad_input(result, "no git identity", "--git-user-name")


def test_stage_that_logs_no_model(mini_repo, tmp_path):
    result = invoke(
        "master-build",
        "--repo",
        str(mini_repo),
        "--stage",
        "evaluate",
        "--model-name",
        "mini",
        "--lock-mode",
        "none",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
    )
    assert_bad_input(result, "logged no model", "log_model", "--model-path")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("register-model", "--model-name", "m"), "exactly one of --run-id or --model-uri"),
        (("register-model", "--model-name", "bad name", "--run-id", "x"), "invalid model name 'bad name'"),
        (("register-model", "--model-name", "m", "--run-id", "x", "--alias", "latest"), "invalid alias 'latest'"),
        (("register-model", "--model-name", "m", "--run-id", "x", "--tag", "novalue"), "malformed --tag 'novalue'"),
        (("promote", "--model-name", "m", "--to-alias", "v1"), "invalid alias 'v1' for --to-alias"),
        (("promote", "--model-name", "m", "--threshold", "acc>>1"), "malformed threshold 'acc>>1'"),
        (("rollback", "--model-name", "", "--alias", "production"), "invalid model name ''"),
    ],
)
def test_registry_bad_input(args, fragment, tmp_path):
    result = invoke(*args, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}")
    assert_bad_input(result, fragment)


@pytest.mark.parametrize(
    ("dvc_yaml", "fragments"),
    [
        ("stages:\n  evaluate: [\n", ["YAML file structure is corrupted", "line"]),
        (
            "stages:\n  evaluate:\n    cmd: echo ${nope}\n",
            ["failed to parse 'stages.evaluate.cmd'", "Could not find 'nope'"],
        ),
        ("stages:\n  evaluate:\n    cmdd: echo\n", ["validation failed", "extra keys not allowed"]),
    ],
    ids=["yaml-syntax", "unknown-var", "schema"],
)
@pytest.mark.parametrize("command", ["master-build", "pr-validate"])
def test_a_dvc_yaml_that_dvc_rejects(mini_repo, dvc_yaml, fragments, command):
    (mini_repo / "dvc.yaml").write_text(dvc_yaml)
    before = snapshot(mini_repo)
    result = invoke(
        command, "--repo", str(mini_repo), "--stage" if command == "master-build" else "--eval-stage", "evaluate"
    )
    assert_bad_input(result, "DVC cannot read the project", *fragments)
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert snapshot(mini_repo) == before


def test_a_foreach_group_name_means_all_its_items_and_unknown_items_name_the_closest(mini_repo):
    (mini_repo / "dvc.yaml").write_text("stages:\n  evaluate:\n    foreach: [a, b]\n    do:\n      cmd: echo ${item}\n")
    result = invoke("master-build", "--repo", str(mini_repo), "--stage", "evaluate@c")
    assert_bad_input(result, "unknown DVC stage 'evaluate@c'", "did you mean", "evaluate@a", "evaluate@b")
