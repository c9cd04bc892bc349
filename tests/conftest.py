"""Session-wide real infrastructure: moto S3 and MLflow servers on 127.0.0.1, the example project."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from tests.support.servers import FAKE_AWS, MlflowServer, s3_client, start_moto

# Loopback only, telemetry off, bounded and quick retries; set before anything spawns.
TEST_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "ACT_DISABLE_VERSION_CHECK": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
    "GIT_AUTHOR_NAME": "Test Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.invalid",
    "GIT_COMMITTER_NAME": "Test Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "CI_HELPERS_RETRY_WAIT": "0.2",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    **FAKE_AWS,
}
os.environ.update(TEST_ENV)
for name in (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_RUN_ID",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "GITHUB_ACTIONS",
    "GITHUB_OUTPUT",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_REF",
    "GITHUB_BASE_REF",
    "GITHUB_HEAD_REF",
    "GITHUB_REPOSITORY",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "CI_HELPERS_PR",
    # so that the suite behaves the same when it runs inside a GitLab job
    "GITLAB_CI",
    "CI_MERGE_REQUEST_IID",
    "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
    "CI_COMMIT_BRANCH",
    "CI_JOB_URL",
    "CI_PROJECT_NAME",
    "CI_HELPERS_GITLAB_TOKEN",
    "GITLAB_TOKEN",
):
    os.environ.pop(name, None)
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

TEMPLATE_BUCKET = "template-bucket"
MLFLOW_BUCKET = "mlflow-artifacts"


@pytest.fixture(scope="session")
def moto_endpoint():
    server, endpoint = start_moto()
    client = s3_client(endpoint)
    client.create_bucket(Bucket=TEMPLATE_BUCKET)
    client.create_bucket(Bucket=MLFLOW_BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def mlflow_process(moto_endpoint, tmp_path_factory):
    """Started early (it takes ~10 s to answer) so that it boots while the template builds."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), moto_endpoint, MLFLOW_BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server(mlflow_process):
    mlflow_process.wait_ready()
    return mlflow_process


@pytest.fixture(scope="session")
def template(moto_endpoint, mlflow_process, tmp_path_factory):
    from tests.support.project import build_template

    base = tmp_path_factory.mktemp("template")
    build_template(base, moto_endpoint, TEMPLATE_BUCKET, base / "train-mlflow.db")
    return base


@pytest.fixture
def project(template, moto_endpoint, tmp_path):
    from tests.support.project import Project

    return Project.copy_of(template, tmp_path, moto_endpoint, TEMPLATE_BUCKET)


@pytest.fixture
def full_disk(tmp_path):
    """A real, full file system: a 2 MiB tmpfs filled to the last byte (root only: it mounts)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("a full disk is a small tmpfs, and mounting one needs root")
    mount = tmp_path / "full-disk"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        filler = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(filler)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


@pytest.fixture(scope="session", autouse=True)
def _record_cli_runner_outcomes():
    """CliRunner's in-process runs join the no-internal-error sweep (tests/support/sweep.py)."""
    from click.testing import CliRunner

    from tests.support import sweep

    invoke = CliRunner.invoke

    def recording_invoke(self, cli, args=None, *rest, **kwargs):
        result = invoke(self, cli, args, *rest, **kwargs)
        try:
            output = result.output
        except ValueError:  # a runner that mixes nothing: stdout only
            output = result.stdout
        sweep.record(result.exit_code, output, f"CliRunner {args}")
        return result

    CliRunner.invoke = recording_invoke
    yield
    CliRunner.invoke = invoke


@pytest.fixture(autouse=True)
def _no_internal_error(request):
    """The sweep: fail a test in which any ci-helpers run ended as an internal error."""
    from tests.support import sweep

    sweep.clear()
    yield
    if request.node.get_closest_marker("internal_error_expected"):
        return
    found = sweep.internal_errors()
    if found:
        pytest.fail("ci-helpers ended in an internal error (exit 70), a bug:\n" + "\n".join(found), pytrace=False)
