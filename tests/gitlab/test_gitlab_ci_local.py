"""The GitLab CI/CD components, run for real by gitlab-ci-local (shell executor) on the example
project, as a user's `.gitlab-ci.yml` includes them: `include: - component:`.

The GitLab instance is tests/support/fake_gitlab.py on 127.0.0.1: real git over smart HTTP for the
project (origin) and for the component project (gitlab/ published as its root and tagged v1, as
gitlab/README.md says), and a fake of GitLab's REST API for the merge request note. gitlab-ci-local
derives $CI_SERVER_URL and $CI_API_V4_URL from the checkout's origin and clones the component from
the same host, so nothing leaves loopback (the suite runs under `unshare -n`). The session's moto S3
and MLflow servers are the DVC remote and the tracking server.

What a GitLab runner gives a job and gitlab-ci-local does not is passed as variables: the merge
request pipeline's predefined variables, GITLAB_CI=true (gitlab-ci-local says false),
CI_REPOSITORY_URL and CI_JOB_TOKEN, and the project's CI/CD variables (the tokens, the tracking
URI). The runner's checkout is detached, as GitLab's is. The one stand-in: ci-helpers is not
pip-installed from GitHub (unreachable here); the job finds $MLOPS_VENV already holding that exact
package, the components' documented reuse path, made of the test suite's own venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.fake_gitlab import PROJECT_ID, FakeGitLab
from tests.support.project import Project, sh

ROOT = Path(__file__).resolve().parents[2]
GITLAB_CI_LOCAL = Path(
    os.environ.get("GITLAB_CI_LOCAL") or ROOT / ".cache/npm/gitlab-ci-local/node_modules/.bin/gitlab-ci-local"
)
PACKAGE = "mlops-actions @ git+https://github.com/org/mlops-actions.git@v1"  # the components' default
NOTE_TOKEN = "glpat-NOTEtoken-abcdef123456"
GIT_TOKEN = "glpat-GITtoken-0123456789ab"
JOB_TOKEN = "glcbt-JOBtoken-fedcba654321"
MR = 7
MARKER = "<!-- mlops-actions:pr-validate -->"

pytestmark = [
    pytest.mark.integration,
    # skipped on a laptop without it; CI (CI=true) installs it, so there a missing binary fails
    pytest.mark.skipif(
        not GITLAB_CI_LOCAL.is_file() and os.environ.get("CI") != "true",
        reason=f"gitlab-ci-local is not installed at {GITLAB_CI_LOCAL}: run bash scripts/setup-gitlab-ci-local.sh",
    ),
]

# What a user writes: the two components, from the GitLab instance the pipeline runs on.
GITLAB_CI_YML = """\
stages: [test, build, deploy]

include:
  - component: $CI_SERVER_FQDN/org/mlops-actions/pr-validate@v1
    inputs:
      comment: "true"
  - component: $CI_SERVER_FQDN/org/mlops-actions/master-build@v1
    inputs:
      stage: train
      model-name: {model_name}
      alias: staging
"""


def _bare_repo(path: Path) -> None:
    sh(["git", "init", "-q", "--bare", "-b", "main", str(path)], path.parent)
    sh(["git", "config", "uploadpack.allowFilter", "true"], path)  # gitlab-ci-local clones --filter=tree:0


def _publish_components(git_root: Path, work: Path) -> None:
    """gitlab/ as the root of the component project org/mlops-actions, tagged v1."""
    (git_root / "org").mkdir(parents=True)
    _bare_repo(git_root / "org" / "mlops-actions.git")
    shutil.copytree(ROOT / "gitlab", work)
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "mlops-actions components"],
        ["git", "tag", "v1"],
        ["git", "push", "-q", str(git_root / "org" / "mlops-actions.git"), "main", "v1"],
    ):
        sh(args, work)


def _commit_pipeline(dev: Path, branches: tuple[str, ...], text: str) -> None:
    """The user's .gitlab-ci.yml, committed on each branch and pushed."""
    for branch in branches:
        sh(["git", "checkout", "-q", branch], dev)
        (dev / ".gitlab-ci.yml").write_text(text)
        sh(["git", "add", ".gitlab-ci.yml"], dev)
        sh(["git", "commit", "-qm", "CI: mlops-actions components"], dev)
        sh(["git", "push", "-q", "origin", branch], dev)


@pytest.fixture
def gitlab(project, tmp_path):
    """The project on a GitLab instance at 127.0.0.1: acme/housing (its origin) and org/mlops-actions."""
    git_root = tmp_path / "gitlab-repos"
    (git_root / "acme").mkdir(parents=True)
    (git_root / "acme" / "housing.git").symlink_to(project.origin)
    _publish_components(git_root, tmp_path / "component-src")
    fake = FakeGitLab(NOTE_TOKEN, git_root=git_root, push_token=GIT_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def venv(tmp_path) -> Path:
    """$MLOPS_VENV as the components leave it: ci-helpers installed, marked with its package."""
    venv = tmp_path / "mlops-venv"
    (venv / "bin").mkdir(parents=True)
    for name in ("python", "ci-helpers"):
        (venv / "bin" / name).symlink_to(Path(sys.executable).parent / name)  # the suite's own venv
    (venv / ".mlops-package").write_text(PACKAGE)
    return venv


def _runner_checkout(project, gitlab: FakeGitLab, branch: str, name: str) -> Path:
    """A runner's checkout: origin on the GitLab instance, HEAD detached at the branch's tip."""
    checkout = project.checkout(branch, name=name)
    sh(["git", "remote", "set-url", "origin", f"{gitlab.url}/acme/housing.git"], checkout)
    sh(["git", "checkout", "-q", "--detach"], checkout)
    # gitlab-ci-local fetches the two components of org/mlops-actions@v1 at once, each into a temp
    # clone, then `cp -r <clone>/templates <includes>/`: when both copies find no templates/ folder
    # yet, one cp fails with "cannot create directory ... File exists" (a race, likelier on a loaded
    # machine). With the folder already there each cp only adds its own component's files, still
    # fetched from the fake GitLab.
    host = urlsplit(gitlab.url).hostname
    (checkout / ".gitlab-ci-local" / "includes" / str(host) / "org" / "mlops-actions" / "v1" / "templates").mkdir(
        parents=True
    )
    return checkout


@dataclass
class Pipelines:
    """Runs the project's pipeline as GitLab would for a push or a merge request, in a fresh
    runner checkout; the log is kept beside it, and checked for tokens every time."""

    project: Project
    gitlab: FakeGitLab
    venv: Path
    mlflow_url: str
    home: Path

    def run(self, branch: str, name: str, merge_request: int | None = None) -> tuple[int, str, Path]:
        checkout = _runner_checkout(self.project, self.gitlab, branch, name)
        args = [str(GITLAB_CI_LOCAL), "--force-shell-executor", "--home", str(self.home), "--no-color"]
        # overridden on purpose: gitlab-ci-local's values are a local run's, not a GitLab runner's
        args += ["--ignore-predefined-vars", "GITLAB_CI,CI_COMMIT_REF_NAME,CI_COMMIT_BRANCH"]
        for variable, value in self._variables(branch, merge_request).items():
            args += ["--variable", f"{variable}={value}"]
        if merge_request is not None:
            args += ["--unset-variable", "CI_COMMIT_BRANCH"]  # GitLab sets none in MR pipelines
        started = time.monotonic()
        done = subprocess.run(
            args, cwd=checkout, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600, check=False
        )
        log = done.stdout + done.stderr
        took = f"# {time.monotonic() - started:.1f} s, exit {done.returncode}\n"
        checkout.with_name(f"{name}.log").write_text(took + log)  # for whoever reads a failure
        for token in (NOTE_TOKEN, GIT_TOKEN, JOB_TOKEN):
            assert token not in log
        return done.returncode, log, checkout

    def _variables(self, branch: str, merge_request: int | None) -> dict[str, str]:
        url = self.gitlab.url
        variables = {
            # what GitLab's runner sets and gitlab-ci-local does not
            "GITLAB_CI": "true",
            "CI_COMMIT_REF_NAME": branch,
            "CI_JOB_TOKEN": JOB_TOKEN,
            "CI_REPOSITORY_URL": url.replace("http://", f"http://gitlab-ci-token:{JOB_TOKEN}@") + "/acme/housing.git",
            # the project's CI/CD variables
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "CI_HELPERS_GITLAB_TOKEN": NOTE_TOKEN,
            "CI_HELPERS_GIT_TOKEN": GIT_TOKEN,
            "MLOPS_VENV": str(self.venv),
        }
        if merge_request is None:
            return {**variables, "CI_COMMIT_BRANCH": branch}
        return {
            **variables,
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": str(merge_request),
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": branch,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        }


def _dotenv(checkout: Path) -> dict[str, str]:
    lines = (checkout / "ci-helpers.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_merge_request_and_default_branch_pipelines(project, mlflow_server, gitlab, venv, tmp_path):
    from mlflow.tracking import MlflowClient

    model_name = f"gitlab-{uuid.uuid4().hex[:8]}"
    _commit_pipeline(project.dev, ("main", "pr-worse", "pr-better"), GITLAB_CI_YML.format(model_name=model_name))
    (tmp_path / "gcl-home").mkdir()
    pipelines = Pipelines(project, gitlab, venv, mlflow_server.url, tmp_path / "gcl-home")

    # MR !7, first push: a model that misses the thresholds. The job fails; the MR gets its note.
    code, log, worse = pipelines.run("pr-worse", "mr-7-first-push", merge_request=MR)

    assert code == 1, log[-6000:]
    assert " FAIL  mlops-pr-validate" in log
    assert "mlops-master-build" not in log  # not a merge request job
    assert _dotenv(worse)["MLOPS_VERDICT"] == "gate-failed"
    assert json.loads((worse / "ci-helpers-report.json").read_text())["passed"] is False
    assert "does not meet >= 0.75" in log
    (note,) = gitlab.notes_on(MR)
    assert note["body"].startswith(MARKER)
    assert "❌ failed: metrics gate" in note["body"]

    # MR !7, second push: a better model. The job passes; the same note now says so.
    code, log, better = pipelines.run("pr-better", "mr-7-second-push", merge_request=MR)

    assert code == 0, log[-6000:]
    assert " PASS  mlops-pr-validate" in log
    outputs = _dotenv(better)
    assert outputs["MLOPS_PASSED"] == "true"
    assert outputs["MLOPS_VERDICT"] == "passed"
    assert json.loads((better / "ci-helpers-report.json").read_text())["verdict"] == "passed"
    (updated,) = gitlab.notes_on(MR)
    assert updated["id"] == note["id"]
    assert "## Model validation for PR #7: ✅ passed" in updated["body"]
    assert [r.method for r in gitlab.requests] == ["GET", "POST", "GET", "PUT"]
    assert all(r.headers["PRIVATE-TOKEN"] == NOTE_TOKEN for r in gitlab.requests)
    assert gitlab.requests[0].path.startswith(f"/api/v4/projects/{PROJECT_ID}/merge_requests/{MR}/notes?")
    run = MlflowClient(mlflow_server.url).get_run(outputs["MLOPS_MLFLOW_RUN_ID"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlops.pr"] == str(MR)  # $CI_MERGE_REQUEST_IID
    assert run.data.tags["mlops.branch"] == "pr-better"  # the MR's source branch: the checkout is detached
    assert any(path.startswith("/org/mlops-actions.git/") for _, path, _ in gitlab.git_requests)  # the component

    # The merge: main now holds a change whose pushed model binary is not what the code builds.
    sh(["git", "checkout", "-q", "dev-model"], project.dev)
    sh(["git", "merge", "-q", "--no-edit", "main"], project.dev)
    sh(["git", "push", "-q", "origin", "HEAD:main"], project.dev)
    merged = project.head("main")
    code, log, main = pipelines.run("main", "main-build")

    assert code == 0, log[-6000:]
    assert " PASS  mlops-master-build" in log
    assert "mlops-pr-validate" not in log  # not a default-branch job
    outputs = _dotenv(main)
    assert outputs["MLOPS_MODEL_NAME"] == model_name
    assert outputs["MLOPS_MODEL_VERSION"] == "1"
    assert outputs["MLOPS_LOCK_STATUS"] == "committed"
    tip = project.head("main")
    assert outputs["MLOPS_LOCK_COMMIT"] == tip
    assert tip != merged
    assert "[skip ci]" in sh(["git", "log", "-1", "--format=%s", tip], project.origin).stdout
    pushes = [(method, authenticated) for method, path, authenticated in gitlab.git_requests if "receive-pack" in path]
    assert ("POST", True) in pushes  # pushed with CI_HELPERS_GIT_TOKEN
    version = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url).get_model_version_by_alias(
        model_name, "staging"
    )
    assert version.version == "1"
    assert version.tags["mlops.ci_run_url"].startswith(f"{gitlab.url}/acme/housing/-/jobs/")  # $CI_JOB_URL
    assert version.tags["mlops.branch"] == "main"  # $CI_COMMIT_BRANCH: the checkout is detached
    assert len(gitlab.notes_on(MR)) == 1  # a branch pipeline writes no note
