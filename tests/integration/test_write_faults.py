"""Failures while reporting: a job summary that cannot be written after the build's writes, or
under a failed gate, is a warning; it never replaces the verdict, the exit code or the outputs.
Real dvc, git, moto S3, MLflow, and a real full disk (a filled tmpfs)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.run import ci_helpers, github_env, read_outputs

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def _error_lines(output: str) -> list[str]:
    assert "Traceback" not in output
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_a_summary_that_cannot_be_written_after_the_build_keeps_its_exit_code_and_outputs(project, tmp_path, full_disk):
    """The job summary's disk fills up once every write is done: a warning, exit 0, the outputs."""
    name = f"housing-{uuid.uuid4().hex[:8]}"
    gh = github_env(tmp_path / "gh")
    gh.pop("GITHUB_ACTIONS")
    summary = full_disk / "summary"
    summary.write_bytes(b"")  # the runner made it; it can be opened, not grown
    gh["GITHUB_STEP_SUMMARY"] = str(summary)

    result = ci_helpers(
        "master-build",
        *("--model-name", name, "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"),
        cwd=project.checkout("dev-model"),
        env={**gh, **CI_IDENTITY},
    )

    assert result.code == 0, result.output
    assert "warning: could not write the job summary" in result.output
    assert "No space left on device" in result.output
    assert _error_lines(result.output) == []
    assert read_outputs(tmp_path / "gh" / "output")["model-uri"] == f"models:/{name}/1"


def test_a_failed_gate_whose_summary_cannot_be_written_still_fails_the_gate(project, tmp_path, full_disk):
    gh = github_env(tmp_path / "gh")
    gh.pop("GITHUB_ACTIONS")
    summary = full_disk / "summary"
    summary.write_bytes(b"")
    gh["GITHUB_STEP_SUMMARY"] = str(summary)

    result = ci_helpers(
        "pr-validate",
        *("--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--threshold", "metrics.r2_score>=0.99"),
        cwd=project.checkout("pr-worse"),
        env=gh,
    )

    assert result.code == 1, result.output  # the verdict, not the disk
    assert "warning: could not write the job summary" in result.output
    assert read_outputs(tmp_path / "gh" / "output")["passed"] == "false"
