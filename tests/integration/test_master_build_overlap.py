"""master-build opens its MLflow run (and checks the tracking server) while `dvc pull` runs: the
failure orderings that this overlap makes possible. Each failure keeps its exit code and its
message, the run never stays RUNNING, nothing is pushed, registered or committed. Real dvc, git,
moto S3 and an `mlflow server`, with a proxy in front of one of them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable

import pytest

from tests.support.cancel import cancel_during
from tests.support.project import write_local_remote
from tests.support.proxy import FlakyProxy
from tests.support.run import Outcome, ci_helpers
from tests.support.servers import refused_port
from tests.support.state import registry_of, runs_of, s3_keys

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
BOUNDED = {"CI_HELPERS_RETRY_ATTEMPTS": "2", "AWS_MAX_ATTEMPTS": "2"}
PULL_HEADER = "==> Pull the inputs of"


def _names() -> tuple[str, str]:
    return f"housing-{uuid.uuid4().hex[:8]}", f"exp-{uuid.uuid4().hex[:6]}"


def _args(name: str, uri: str, experiment: str) -> list[str]:
    return ["master-build", "--model-name", name, "--tracking-uri", uri, "--experiment", experiment]


def _run_with(args: list[str], cwd, env: dict[str, str], on_line: Callable[[str], None]) -> Outcome:
    """`ci-helpers ARGS`, calling `on_line` on each line of its output as it comes."""
    process = subprocess.Popen(
        [shutil.which("ci-helpers") or "ci-helpers", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        on_line(line)
    return Outcome(process.wait(timeout=600), "".join(lines), "")


def _error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_a_pull_that_fails_while_the_run_opens_ends_the_run_failed(project, mlflow_server):
    """The S3 objects fail (503) once the pull starts, while MLflow takes 3 s to create the run:
    exit 3 naming S3, the run (created after the pull failed) ends FAILED, nothing else moves."""
    name, experiment = _names()
    before, keys = project.head("dev-model"), s3_keys(project.s3_endpoint, project.bucket)
    checkout = project.checkout("dev-model")
    with (
        FlakyProxy(project.s3_endpoint) as s3,
        FlakyProxy(mlflow_server.url, slow=("POST", "runs/create", 3)) as mlflow,
    ):
        write_local_remote(checkout, project.remote_url, endpoint=s3.url)

        def fail_the_transfer(line: str) -> None:
            if PULL_HEADER in line:  # the preflight (HEAD, listings) passed: now the objects fail
                s3.fail_paths = ("/dvc/files/md5/",)

        result = _run_with(_args(name, mlflow.url, experiment), checkout, {**CI_IDENTITY, **BOUNDED}, fail_the_transfer)

    assert result.code == 3, result.output
    assert s3.failed_requests  # the pull's own requests failed
    assert mlflow.slowed_requests  # and the run was still being created meanwhile
    line = _error_line(result.output)
    assert s3.url in line  # the pull's failure is the one reported
    assert "MLflow tracking server" not in result.output
    assert "Build state: nothing pushed, registered or committed" in result.output
    assert "ended FAILED)" in result.output
    assert [status for _, status in runs_of(mlflow_server.url, experiment)] == ["FAILED"]
    assert registry_of(mlflow_server.url, name) == ((), ())
    assert project.head("dev-model") == before
    assert s3_keys(project.s3_endpoint, project.bucket) == keys
    assert "Force-rebuild" not in result.output


def test_a_tracking_server_down_while_the_pull_succeeds_is_exit_3_naming_it(project):
    """Nothing listens at the tracking URI: the pull (which writes nothing shared) runs meanwhile,
    then the build stops with exit 3 naming the tracking server; nothing built, pushed or committed."""
    name, experiment = _names()
    before, keys = project.head("dev-model"), s3_keys(project.s3_endpoint, project.bucket)
    checkout = project.checkout("dev-model")
    uri = f"http://127.0.0.1:{refused_port()}"

    result = ci_helpers(*_args(name, uri, experiment), cwd=checkout, env=CI_IDENTITY)

    assert result.code == 3, result.output
    line = _error_line(result.output)
    assert f"MLflow tracking server {uri} is unreachable after retries" in line
    assert "Force-rebuild" not in result.output
    assert project.head("dev-model") == before
    assert s3_keys(project.s3_endpoint, project.bucket) == keys


def test_a_run_that_cannot_be_created_while_the_pull_succeeds_is_exit_3_naming_the_server(project, mlflow_server):
    """The server passes the preflight check, then fails (503) to create the run while the pull
    succeeds: exit 3 naming the tracking server, no run, nothing pushed or committed."""
    name, experiment = _names()
    before, keys = project.head("dev-model"), s3_keys(project.s3_endpoint, project.bucket)
    checkout = project.checkout("dev-model")
    with FlakyProxy(mlflow_server.url, ("runs/create",)) as mlflow:
        result = ci_helpers(*_args(name, mlflow.url, experiment), cwd=checkout, env=CI_IDENTITY)

    assert result.code == 3, result.output
    assert mlflow.failed_requests
    line = _error_line(result.output)
    assert "MLflow tracking server" in line
    assert mlflow.url in line
    assert PULL_HEADER in result.output
    assert "Force-rebuild" not in result.output
    assert runs_of(mlflow_server.url, experiment) == ()
    assert registry_of(mlflow_server.url, name) == ((), ())
    assert project.head("dev-model") == before
    assert s3_keys(project.s3_endpoint, project.bucket) == keys


@pytest.mark.slow
def test_a_signal_before_the_run_exists_still_ends_it_killed(project, mlflow_server):
    """SIGTERM during the pull while MLflow takes 8 s to create the run (longer than the failure
    path waits for it): exit 143, and the run, created after the command gave up on it, is ended
    KILLED by the helper before it exits, never left RUNNING."""
    name, experiment = _names()
    before = project.head("dev-model")
    checkout = project.checkout("dev-model")
    with FlakyProxy(mlflow_server.url, slow=("POST", "runs/create", 8)) as mlflow:
        result = cancel_during(
            _args(name, mlflow.url, experiment),
            checkout,
            CI_IDENTITY,
            lambda line: PULL_HEADER in line,
            lambda: bool(mlflow.slowed_requests),
            signum=signal.SIGTERM,
        )

    assert result.code == 143, result.output
    assert _error_line(result.output).startswith("error: cancelled by SIGTERM")
    assert [status for _, status in runs_of(mlflow_server.url, experiment)] == ["KILLED"]
    assert registry_of(mlflow_server.url, name) == ((), ())
    assert project.head("dev-model") == before
