"""Faults at the write boundaries after the MLflow run opened, and failures while reporting: each
ends in its documented exit code with one line and the "done / not done" record, never an
internal error, and a failure to report never replaces the verdict or the error. Real dvc, git,
moto S3 (behind a proxy that refuses writes) and MLflow."""

from __future__ import annotations

import uuid

import pytest

from tests.support.project import write_local_remote
from tests.support.proxy import FlakyProxy, Rejection
from tests.support.run import ci_helpers, github_env, read_outputs
from tests.support.state import registry_of, runs_of

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
# What S3 answers a write it will never take (not an outage, not a credentials problem).
S3_INVALID_REQUEST = Rejection(
    400,
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code>'
    b"<Message>Object writes are disabled on this bucket</Message></Error>",
    "application/xml",
)


def _error_lines(output: str) -> list[str]:
    assert "Traceback" not in output
    return [line for line in output.splitlines() if line.startswith("error:")]


def test_a_push_the_remote_refuses_for_good_is_exit_3_with_the_build_state(project, tmp_path):
    """The most common shape of a non-transient `dvc push` failure: it used to end in exit 70."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    name, experiment = f"housing-{uuid.uuid4().hex[:8]}", "exp"
    before = project.head("pr-unpushed")
    checkout = project.checkout("pr-unpushed")  # its CI-built model is on no remote yet
    with FlakyProxy(project.s3_endpoint, reject=S3_INVALID_REQUEST, reject_method="PUT") as proxy:
        write_local_remote(checkout, project.remote_url, endpoint=proxy.url)
        result = ci_helpers(
            *("master-build", "--model-name", name, "--tracking-uri", uri, "--experiment", experiment),
            cwd=checkout,
            env=CI_IDENTITY,
        )

    assert result.code == 3, result.output
    assert proxy.rejected_requests  # the push really was refused
    (line,) = _error_lines(result.output)
    assert f"`dvc push` with DVC remote 'storage' (s3://{project.bucket}/dvc at {proxy.url}) failed" in line
    assert "Build state: nothing pushed, registered or committed; outputs not pushed" in line
    assert "ended FAILED" in line
    assert [status for _, status in runs_of(uri, experiment)] == ["FAILED"]
    assert registry_of(uri, name) == ((), ())
    assert project.head("pr-unpushed") == before


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
