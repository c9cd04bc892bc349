"""A cancelled main build (SIGTERM from a cancel or `timeout-minutes`, SIGINT) in the middle of
each step: its children stop, its MLflow run ends KILLED, its last line says what was done and
what was not, it exits 128+N, and a re-run finishes the job. Real dvc, git, moto S3 and MLflow;
each step is held open (a slowed S3 or MLflow request, a sleeping stage or git hook) so that the
signal lands inside it."""

from __future__ import annotations

import signal
import uuid

import pytest

from tests.support.cancel import cancel_during, process_alive
from tests.support.project import sh, write_local_remote
from tests.support.proxy import FlakyProxy
from tests.support.run import ci_helpers
from tests.support.state import registry_of, runs_of, s3_keys

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
SLOW_TRAINING = """import os, time
if os.environ.get("TEST_TRAIN_DELAY"):
    open(os.environ["TEST_TRAIN_PIDFILE"], "w").write(str(os.getpid()))
    time.sleep(float(os.environ["TEST_TRAIN_DELAY"]))
"""


def _build_args(name: str, uri: str, experiment: str) -> list[str]:
    return ["master-build", "--model-name", name, "--tracking-uri", uri, "--experiment", experiment]


def _names() -> tuple[str, str]:
    return f"housing-{uuid.uuid4().hex[:8]}", f"exp-{uuid.uuid4().hex[:6]}"


def _last_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    assert "internal error" not in output
    return lines[0]


def _rerun_finishes(
    project, uri: str, name: str, experiment: str, checkout_name: str, branch: str = "dev-model"
) -> None:
    rerun = ci_helpers(
        *_build_args(name, uri, experiment), cwd=project.checkout(branch, name=checkout_name), env=CI_IDENTITY
    )
    assert rerun.code == 0, rerun.output
    versions, aliases = registry_of(uri, name)
    assert versions == ("1",)  # never a duplicate version
    assert aliases == (("staging", "1"),)
    # the lock on origin is the CI build's: committed back, or the one the developer committed
    assert "dvc.lock: committed" in rerun.output or "dvc.lock: unchanged" in rerun.output
    assert ci_helpers("check-remote", cwd=project.checkout(branch, name=f"{checkout_name}-check")).code == 0
    assert sorted(status for _, status in runs_of(uri, experiment)) == ["FINISHED", "KILLED"]


# pr-unpushed: its CI-built model is on no remote yet, so the push has something to send
@pytest.mark.parametrize(("step", "branch"), [("pull", "dev-model"), ("push", "pr-unpushed")])
def test_cancelled_during_an_s3_transfer(project, tmp_path, step, branch):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    name, experiment = _names()
    keys, ref = s3_keys(project.s3_endpoint, project.bucket), project.head(branch)
    checkout = project.checkout(branch)
    header, method = ("==> Pull the inputs of", "GET") if step == "pull" else ("==> Push CI-built outputs", "PUT")
    # only the transfer's object requests are held (the preflight asks with HEAD and listings)
    with FlakyProxy(project.s3_endpoint, slow=(method, "/dvc/files/md5/", 120)) as proxy:
        write_local_remote(checkout, project.remote_url, endpoint=proxy.url)
        result = cancel_during(
            _build_args(name, uri, experiment),
            checkout,
            CI_IDENTITY,
            lambda line: header in line,
            lambda: bool(proxy.slowed_requests),
        )

    assert result.code == 143, result.output
    line = _last_error(result.output)
    assert line.startswith("error: cancelled by SIGTERM: done: nothing pushed, registered or committed; not done: ")
    assert "outputs not pushed, model not registered, dvc.lock not committed, alias 'staging' not moved" in line
    assert "re-run the build to finish" in line
    assert "ended KILLED" in line
    assert [status for _, status in runs_of(uri, experiment)] == ["KILLED"]
    assert project.head(branch) == ref
    assert registry_of(uri, name) == ((), ())
    if step == "pull":
        assert s3_keys(project.s3_endpoint, project.bucket) == keys

    _rerun_finishes(project, uri, name, experiment, f"rerun-{step}", branch)


def test_sigint_during_training_stops_the_stage_and_its_run(project, tmp_path):
    dev = project.dev
    sh(["git", "checkout", "-q", "dev-model"], dev)
    train = dev / "src" / "train.py"
    train.write_text(SLOW_TRAINING + train.read_text())
    sh(["git", "commit", "-qam", "train: a delay the test can hold it in"], dev)
    sh(["git", "push", "-q", "origin", "dev-model"], dev)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    name, experiment = _names()
    keys = s3_keys(project.s3_endpoint, project.bucket)
    pidfile = tmp_path / "train.pid"

    result = cancel_during(
        _build_args(name, uri, experiment),
        project.checkout("dev-model"),
        {**CI_IDENTITY, "TEST_TRAIN_DELAY": "300", "TEST_TRAIN_PIDFILE": str(pidfile)},
        lambda line: "==> Force-rebuild" in line,
        pidfile.exists,
        signum=signal.SIGINT,
    )

    assert result.code == 130, result.output
    line = _last_error(result.output)
    assert line.startswith("error: cancelled by SIGINT: done: nothing pushed, registered or committed; not done: ")
    assert not process_alive(int(pidfile.read_text()))  # the training script was stopped, not orphaned
    assert [status for _, status in runs_of(uri, experiment)] == ["KILLED"]
    assert s3_keys(project.s3_endpoint, project.bucket) == keys

    _rerun_finishes(project, uri, name, experiment, "rerun-train")


def test_cancelled_during_registration(project, mlflow_server):
    name, experiment = _names()
    ref = project.head("dev-model")
    with FlakyProxy(mlflow_server.url, slow=("POST", "model-versions/create", 120)) as proxy:
        result = cancel_during(
            _build_args(name, proxy.url, experiment),
            project.checkout("dev-model"),
            CI_IDENTITY,
            lambda line: "==> Register model" in line,
            lambda: bool(proxy.slowed_requests),
        )

    assert result.code == 143, result.output
    line = _last_error(result.output)
    assert line.startswith("error: cancelled by SIGTERM: done: pushed to 'storage'; not done: model not registered")
    assert [status for _, status in runs_of(mlflow_server.url, experiment)] == ["KILLED"]
    assert registry_of(mlflow_server.url, name)[0] == ()
    assert project.head("dev-model") == ref

    _rerun_finishes(project, mlflow_server.url, name, experiment, "rerun-register")


def test_cancelled_during_the_lock_commit(project, tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    name, experiment = _names()
    ref = project.head("dev-model")
    marker = tmp_path / "hook-running"
    hook = project.origin / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 120\n")
    hook.chmod(0o755)

    result = cancel_during(
        _build_args(name, uri, experiment),
        project.checkout("dev-model"),
        CI_IDENTITY,
        lambda line: "==> Commit dvc.lock back" in line,
        marker.exists,
    )

    assert result.code == 143, result.output
    line = _last_error(result.output)
    assert line.startswith(
        "error: cancelled by SIGTERM: done: pushed to 'storage'; registered v1; provenance statement written; not done: "
    )
    assert "dvc.lock not committed, alias 'staging' not moved" in line
    assert project.head("dev-model") == ref
    assert registry_of(uri, name) == (("1",), ())  # registered, and no alias on it
    assert [status for _, status in runs_of(uri, experiment)] == ["KILLED"]

    hook.unlink()
    _rerun_finishes(project, uri, name, experiment, "rerun-lock")
