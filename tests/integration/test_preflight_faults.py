"""Faults that used to surface late (an internal error, a write to the wrong place, lost outputs)
are refused before the first write: the exit code, one line, and nothing changed anywhere (S3
objects, origin's refs, the registry, the MLflow runs). Real dvc, git, moto S3 and MLflow."""

from __future__ import annotations

import uuid

import pytest

from tests.support.project import set_train_params, sh
from tests.support.run import ci_helpers, github_env, read_outputs
from tests.support.state import world_state

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def _build(checkout, uri: str, name: str, experiment: str, *args: str, env: dict | None = None):
    return ci_helpers(
        "master-build",
        *("--model-name", name, "--tracking-uri", uri, "--experiment", experiment, *args),
        cwd=checkout,
        env={**CI_IDENTITY, **(env or {})},
    )


def _names() -> tuple[str, str]:
    return f"housing-{uuid.uuid4().hex[:8]}", f"exp-{uuid.uuid4().hex[:6]}"


def _one_error_line(output: str, code_text: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert code_text in lines[0], lines[0]
    assert "Traceback" not in output
    return lines[0]


def test_data_merged_without_dvc_push_is_refused_before_the_run_opens(project, mlflow_server):
    """The most common mistake: new features merged with `dvc repro` but no `dvc push`."""
    dev = project.dev
    sh(["git", "checkout", "-q", "main"], dev)
    set_train_params(dev, test_size=0.25)
    sh(["dvc", "repro", "-q", "featurize"], dev)
    sh(["git", "commit", "-qam", "features with a bigger test split"], dev)
    sh(["git", "push", "-q", "origin", "main"], dev)  # and no `dvc push`
    merged = sh(["git", "rev-parse", "--short", "HEAD"], dev).stdout.strip()
    name, experiment = _names()
    before = world_state(project, mlflow_server.url, name, experiment)

    result = _build(project.checkout("main"), mlflow_server.url, name, experiment)

    assert result.code == 1, result.output
    line = _one_error_line(result.output, "merged without `dvc push`")
    assert "data/features/train.csv" in line
    assert "data/features/test.csv" in line
    assert f"dvc.lock of commit {merged}" in line
    assert "dvc push -r storage" in line
    assert world_state(project, mlflow_server.url, name, experiment) == before  # no run was even opened


def test_an_unpushed_model_under_a_forced_evaluate_is_refused(project, tmp_path):
    """`--stage evaluate` pulls the model train made; on pr-unpushed nobody pushed it."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    name, experiment = _names()
    before = world_state(project, uri, name, experiment)

    result = _build(project.checkout("pr-unpushed"), uri, name, experiment, "--stage", "evaluate")

    assert result.code == 1, result.output
    line = _one_error_line(result.output, "merged without `dvc push`: models/model.pkl (dvc.lock of commit ")
    assert "internal error" not in result.output
    assert line
    assert world_state(project, uri, name, experiment) == before


def test_a_typo_in_the_branch_writes_nothing(project, mlflow_server):
    name, experiment = _names()
    before = world_state(project, mlflow_server.url, name, experiment)

    result = _build(project.checkout("dev-model"), mlflow_server.url, name, experiment, "--branch", "mian")

    assert result.code == 2, result.output
    line = _one_error_line(result.output, "branch 'mian' does not exist on git remote 'origin'")
    assert "dev-model" in line
    assert "main" in line
    after = world_state(project, mlflow_server.url, name, experiment)
    assert after == before
    assert not any("refs/heads/mian" in ref for ref in after.origin_refs)


def test_a_commit_that_is_not_on_the_branch_writes_nothing(project, tmp_path):
    """A PR branch's commit built with `--branch main`: its lock must never land on main."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    name, experiment = _names()
    before = world_state(project, uri, name, experiment)
    head = project.head("pr-better")

    result = _build(project.checkout("pr-better"), uri, name, experiment, "--branch", "main")

    assert result.code == 2, result.output
    _one_error_line(result.output, f"HEAD {head[:12]} is not on 'main'")
    assert world_state(project, uri, name, experiment) == before


def test_an_unwritable_step_summary_is_refused_before_any_write(project, mlflow_server, tmp_path):
    name, experiment = _names()
    gh = github_env(tmp_path / "gh")
    (tmp_path / "summary-is-a-folder").mkdir()
    gh["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary-is-a-folder")
    gh.pop("GITHUB_ACTIONS")  # plain `error:` lines
    before = world_state(project, mlflow_server.url, name, experiment)

    result = _build(project.checkout("dev-model"), mlflow_server.url, name, experiment, env=gh)

    assert result.code == 2, result.output
    _one_error_line(result.output, "cannot write the runner's file $GITHUB_STEP_SUMMARY")
    assert world_state(project, mlflow_server.url, name, experiment) == before


def test_an_unwritable_output_file_is_refused_by_pr_validate(project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    gh = github_env(tmp_path / "gh")
    gh.pop("GITHUB_ACTIONS")
    gh["GITHUB_OUTPUT"] = str(tmp_path / "no-such-folder" / "output")

    result = ci_helpers("pr-validate", "--tracking-uri", uri, cwd=project.checkout("pr-better"), env=gh)

    assert result.code == 2, result.output
    _one_error_line(result.output, "$GITHUB_OUTPUT")
    assert "No such file or directory" in result.output
    assert runs_are_none(uri)


def runs_are_none(uri: str) -> bool:
    from mlflow.tracking import MlflowClient

    return all(not MlflowClient(uri).search_runs([e.experiment_id]) for e in MlflowClient(uri).search_experiments())


def test_outputs_survive_a_report_that_cannot_be_written_after_every_write(project, tmp_path, full_disk):
    """The report file's disk fills up after the build pushed, registered, committed and moved
    the alias: the deploy job still gets `model-uri`, and the line says it is a full disk."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    name, experiment = _names()
    gh = github_env(tmp_path / "gh")
    gh.pop("GITHUB_ACTIONS")
    report = full_disk / "report.json"

    result = _build(project.checkout("dev-model"), uri, name, experiment, "--report-json", str(report), env=gh)

    assert result.code == 5, result.output
    line = _one_error_line(result.output, f"no space left on {full_disk}")
    assert "free)" in line
    assert "alias 'staging' → v1" in line  # the record: everything was done
    outputs = read_outputs(tmp_path / "gh" / "output")
    assert outputs["model-uri"] == f"models:/{name}/1"
    assert "[skip ci]" in sh(["git", "log", "-1", "--format=%s", "dev-model"], project.origin).stdout


def test_a_full_tracking_store_disk_is_exit_5_and_changes_nothing(project, full_disk):
    uri = f"sqlite:///{full_disk / 'mlflow.db'}"
    name, experiment = _names()
    refs = world_state(project, f"sqlite:///{full_disk.parent / 'other.db'}", name, experiment).origin_refs

    result = _build(project.checkout("dev-model"), uri, name, experiment)

    assert result.code == 5, result.output
    _one_error_line(result.output, "the runner's disk is full: no space left on")
    assert world_state(project, f"sqlite:///{full_disk.parent / 'other.db'}", name, experiment).origin_refs == refs


def test_pr_validate_with_its_dvc_cache_on_a_full_disk(project, tmp_path, full_disk):
    checkout = project.checkout("pr-better")
    sh(["dvc", "cache", "dir", "--local", str(full_disk / "cache")], checkout)

    result = ci_helpers("pr-validate", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", cwd=checkout)

    assert result.code == 5, result.output
    line = _one_error_line(result.output, "the runner's disk is full: no space left on")
    assert str(full_disk) in line
    assert "free)" in line
