"""The oldest DVC 3 release the README names, run once: pr-validate and master-build on the example
project with that DVC (the venv scripts/setup-oldest-dvc.sh builds), real moto S3 and MLflow server."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.run import ci_helpers, github_env, read_outputs, read_report, tracked_pr_validate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup-oldest-dvc.sh"
VENV = ROOT / ".cache" / "venvs" / "dvc-oldest"
CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def oldest_dvc_release() -> str:
    """The release the set-up script pins: one place says it."""
    return re.search(r'^oldest_dvc="([0-9.]+)"', SETUP.read_text(), re.M).group(1)


@pytest.fixture
def oldest_dvc(monkeypatch, tmp_path) -> str:
    """That venv's `ci-helpers` and `dvc` first on PATH, running this checkout's ci_helpers.

    Only those two are put first: the stage commands' `python` stays the suite's, with the example's
    libraries, as a user's own Python beside a private tool venv."""
    if not (VENV / "bin" / "ci-helpers").is_file() or not (VENV / "bin" / "dvc").is_file():
        pytest.skip("no .cache/venvs/dvc-oldest: run `bash scripts/setup-oldest-dvc.sh` (scripts/setup.sh does)")
    tools = tmp_path / "oldest-dvc-bin"
    tools.mkdir()
    for name in ("ci-helpers", "dvc"):
        (tools / name).symlink_to(VENV / "bin" / name)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    # The venv holds a copy of ci_helpers for its script; the checkout under test comes first.
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep))
    return oldest_dvc_release()


def _venv_python(code: str) -> str:
    python = VENV / "bin" / "python"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_the_venv_runs_the_oldest_dvc_and_this_checkout(oldest_dvc, tmp_path):
    version = subprocess.run(["dvc", "--version"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert version.stdout.strip() == oldest_dvc
    # ci-helpers' own Python imports that dvc, and this checkout's ci_helpers
    assert _venv_python("import dvc; print(dvc.__version__)") == oldest_dvc
    assert Path(_venv_python("import ci_helpers; print(ci_helpers.__file__)")).parent == ROOT / "ci_helpers"


def test_pr_validate_passes_a_good_pr(oldest_dvc, project, mlflow_server, tmp_path):
    checkout = project.checkout("pr-better")
    gh = github_env(
        tmp_path / "gh", GITHUB_REF="refs/pull/17/merge", GITHUB_BASE_REF="main", GITHUB_HEAD_REF="pr-better"
    )
    report = tmp_path / "report.json"

    result = tracked_pr_validate(checkout, mlflow_server.url, "housing-pr-oldest-dvc", report, env=gh)

    assert result.code == 0, result.output
    data = read_report(report)
    assert data["verdict"] == "passed"
    assert data["baseline_commit"] == project.head("main")
    checks = {(c["metric"], c["kind"]): c["passed"] for c in data["checks"]}
    assert checks[("metrics.r2_score", "threshold")] is True
    assert checks[("metrics.rmse", "regression")] is True
    assert data["evaluation"]["mismatches"] == []
    assert read_outputs(tmp_path / "gh" / "output")["passed"] == "true"
    assert "| metric | baseline | this PR | delta | threshold | status |" in (tmp_path / "gh" / "summary").read_text()


def test_pr_validate_fails_an_unpushed_pr(oldest_dvc, project, mlflow_server, tmp_path):
    """The remote check reads DVC's object database API, the part of DVC most likely to move."""
    checkout = project.checkout("pr-unpushed")

    result = tracked_pr_validate(checkout, mlflow_server.url, "housing-pr-oldest-dvc", tmp_path / "r.json")

    assert result.code == 1, result.output
    assert read_report(tmp_path / "r.json")["passed"] is False
    assert "models/model.pkl" in result.output


def test_master_build_rebuilds_pushes_and_registers(oldest_dvc, project, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    name = f"housing-oldest-dvc-{uuid.uuid4().hex[:8]}"
    built = project.head("dev-model")
    checkout = project.checkout("dev-model")

    result = ci_helpers(
        "master-build",
        "--model-name",
        name,
        "--tracking-uri",
        mlflow_server.url,
        "--report-json",
        str(tmp_path / "build.json"),
        cwd=checkout,
        env=CI_IDENTITY,
    )

    assert result.code == 0, result.output
    report = read_report(tmp_path / "build.json")
    assert report["stages"]["forced"] == ["train"]
    assert report["stages"]["downstream"] == ["evaluate"]
    assert "Running stage 'train'" in result.output
    assert report["lock"]["status"] == "committed"
    assert report["lock"]["commit"] == project.head("dev-model") != built
    client = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    version = client.get_model_version(name, report["model"]["version"])
    assert version.tags["mlops.git_commit"] == built
    assert version.run_id == report["mlflow"]["run_id"]
    assert client.get_model_version_by_alias(name, "staging").version == version.version
    # the CI-built outputs reached the remote: a fresh clone of the new tip is in sync
    assert ci_helpers("check-remote", cwd=project.checkout("dev-model", name="after-build")).code == 0
