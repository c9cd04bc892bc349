"""The whole path, under act, through the documented main-build workflow
(examples/workflows/main-build.yml): a push to main builds, registers and stages the model, attests
the files MLflow serves, and the deploy job verifies them before it deploys.

The workflow runs as a user copies it, with two kinds of substitution and nothing else:
- the endpoint it hard-codes, MLFLOW_TRACKING_URI (https://mlflow.example.com), is rewritten to the
  test's MLflow server on 127.0.0.1; the test asserts that this is the only change to the file;
- the actions it names run from local folders (act --local-repository): org/mlops-actions@<its SHA>
  is a release copy of this checkout, and the third-party actions are the stand-ins under
  tests/actions/stand-ins (documented there): checkout and cache as in test_actions.py,
  setup-python gives the host's Python as a venv, configure-aws-credentials checks the role ARN
  and exports the moto credentials.
attest-build-provenance is GitHub's web API and Sigstore, which cannot be reached here, so its
stand-in is the one step that is faked: it checks its inputs as the real action does (exactly one
kind of subject; a checksums file that parses) and records the statement it would sign, which the
test reads. The deploy job's `pip install mlops-actions` runs offline (PIP_NO_INDEX) and is
satisfied by the host's own install of this checkout (the package is not on PyPI yet, and there is
no network); `ci-helpers verify` then runs this checkout's code.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml

from tests.actions.test_actions import HERE, act_command, act_environment, act_home  # noqa: F401  (fixture)
from tests.actions.test_documented_uses import _release_tree
from tests.integration.test_provenance import served_digests, stored_statement
from tests.support.project import sh
from tests.support.servers import FAKE_AWS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "workflows" / "main-build.yml"
DOCUMENTED_TRACKING_URI = "https://mlflow.example.com"
MODEL = "housing"
# Third-party actions of the workflow, by the stand-in that replaces each (the SHA is the workflow's).
STAND_INS = {
    "actions/setup-python": "setup-python",
    "aws-actions/configure-aws-credentials": "configure-aws-credentials",
    "actions/attest-build-provenance": "attest-build-provenance",
}


def _pinned(text: str, action: str) -> str:
    """`action@<sha>` as the workflow pins it (one pin per action)."""
    pins = set(re.findall(rf"uses:\s*({re.escape(action)}@[0-9a-f]{{40}})", text))
    assert len(pins) == 1, f"{action} is pinned {pins} in {WORKFLOW.name}"
    return pins.pop()


def _job_log(log: str, workflow: dict, job: str) -> list[str]:
    """The lines act prints for `job` (prefixed by the workflow's and the job's names, padded)."""
    prefix = re.compile(rf"\[{re.escape(workflow['name'])}/{re.escape(workflow['jobs'][job]['name'])}\s*\]")
    return [line for line in log.splitlines() if prefix.match(line)]


def test_documented_main_build_workflow_under_act(project, mlflow_server, act_home, tmp_path):  # noqa: F811
    """A push to main: built, registered as housing@staging, attested, verified, deployed."""
    original = WORKFLOW.read_text()
    workflow = yaml.safe_load(original)
    build_job, deploy_job = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    # only the job that attests can mint an OIDC token and write attestations; deploy only reads
    assert {"id-token", "attestations"} <= set(build_job["permissions"])
    assert build_job["permissions"]["attestations"] == "write"
    assert deploy_job["permissions"] == {"contents": "read"}
    assert workflow["permissions"] == {}

    rewritten = original.replace(DOCUMENTED_TRACKING_URI, mlflow_server.url)
    assert rewritten.count(mlflow_server.url) == 2  # the build step's env and the verify step's env
    assert rewritten.replace(mlflow_server.url, DOCUMENTED_TRACKING_URI) == original  # nothing else changed
    path = tmp_path / "main-build.yml"
    path.write_text(rewritten)

    workspace = project.checkout("main", name="workspace")  # the repository the push happened in
    release = _release_tree(tmp_path / "release")
    ours = _pinned(original, "org/mlops-actions/actions/master-build").replace("/actions/master-build", "")
    mappings = [f"{ours}={release}"] + [
        f"{_pinned(original, action)}={HERE / 'stand-ins' / folder}" for action, folder in STAND_INS.items()
    ]
    record = tmp_path / "attestations.jsonl"
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main", "before": "0" * 40, "after": project.head("main")}))
    runner_env = {
        "STAND_IN_AWS_ACCESS_KEY_ID": FAKE_AWS["AWS_ACCESS_KEY_ID"],
        "STAND_IN_AWS_SECRET_ACCESS_KEY": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
        "ATTEST_STAND_IN_RECORD": str(record),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    args = act_command("push", path, event, *mappings)
    # .dvc/config.local (gitignored) points the DVC remote at this test's bucket
    args += ["--use-gitignore=false", "-s", "MLFLOW_TRACKING_TOKEN=not-checked-by-the-test-server"]
    args += [arg for key, value in runner_env.items() for arg in ("--env", f"{key}={value}")]

    result = subprocess.run(
        args,
        cwd=workspace,
        env=act_environment(act_home),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
        check=False,
    )

    log = result.stdout + result.stderr
    (tmp_path / "act.log").write_text(log)
    assert result.returncode == 0, log[-8000:]
    build_lines, deploy_lines = _job_log(log, workflow, "build"), _job_log(log, workflow, "deploy")
    assert any("Job succeeded" in line for line in build_lines), log[-8000:]
    assert any("Job succeeded" in line for line in deploy_lines), log[-8000:]
    assert log.index(next(line for line in build_lines if "Job succeeded" in line)) < log.index(deploy_lines[0])
    assert "assumed arn:aws:iam::123456789012:role/dvc-read-write in us-east-1" in log

    # the model version exists, and staging points at it
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    version = client.get_model_version_by_alias(MODEL, "staging").version
    assert client.get_model_version(MODEL, version).tags["mlops.git_commit"] == project.head("main")
    # main's dvc.lock is what CI rebuilt (the example trains deterministically): nothing to commit back
    assert "dvc.lock: unchanged the build reproduced the committed dvc.lock" in log
    assert sh(["git", "rev-parse", "main"], project.origin).stdout.strip() == project.head("main")

    # attested: exactly the files MLflow serves for the version, and the statement's subjects
    (attested,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert attested["predicateType"] == "https://slsa.dev/provenance/v1"
    subjects = {subject["name"]: subject["digest"]["sha256"] for subject in attested["subject"]}
    assert subjects == served_digests(mlflow_server.url, MODEL, version, tmp_path / "served")
    statement, _ = stored_statement(mlflow_server.url, MODEL, version, tmp_path / "statement")
    assert subjects == {subject["name"]: subject["digest"]["sha256"] for subject in statement["subject"]}

    # the deploy job installed the pinned release, verified the version, then deployed it
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"mlops-actions=={pinned}" in original, "the deploy job installs another release than this one"
    assert f"Requirement already satisfied: mlops-actions=={pinned}" in log  # offline: the host's install
    deploy = "\n".join(deploy_lines)
    verified = f"verified models:/{MODEL}/{version} ({MODEL}/{version}): its {len(subjects)} files match the statement"
    assert verified in deploy, deploy[-6000:]
    assert deploy.index(verified) < deploy.index(f"deploy models:/{MODEL}/{version}")

    # and afterwards, as anyone with access to MLflow would check it
    check = subprocess.run(
        ["ci-helpers", "verify", f"{MODEL}@staging", "--tracking-uri", mlflow_server.url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"verified models:/{MODEL}/{version} ({MODEL}@staging)" in check.stdout
