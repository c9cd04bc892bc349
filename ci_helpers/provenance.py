"""Where a result came from: the commit, branch, PR, CI run and project name, and the build's
provenance tags (dvc.lock hashes of the developer's and of CI's outputs)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .adapters import git
from .adapters.tracking import BRANCH_TAG, BUILD_KIND, BUILD_KIND_TAG, COMMIT_TAG

_PR_REF = re.compile(r"^refs/pull/(\d+)/")


@dataclass(frozen=True)
class GitContext:
    commit: str
    branch: str | None
    pr: int | None


def pr_number_from_env() -> int | None:
    """The PR number GitHub exposes in GITHUB_REF (refs/pull/N/merge) on pull_request events, else
    the merge request's IID GitLab exposes in CI_MERGE_REQUEST_IID in merge request pipelines."""
    match = _PR_REF.match(os.environ.get("GITHUB_REF", ""))
    if match:
        return int(match.group(1))
    iid = os.environ.get("CI_MERGE_REQUEST_IID", "")
    return int(iid) if iid.isascii() and iid.isdigit() else None


def base_ref_from_env() -> str | None:
    """The branch a PR or MR merges into: GITHUB_BASE_REF on Actions, else
    CI_MERGE_REQUEST_TARGET_BRANCH_NAME in a GitLab merge request pipeline."""
    return os.environ.get("GITHUB_BASE_REF") or os.environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or None


def pr_git_context(repo: Path, pr: int | None) -> GitContext:
    """A PR's commit and head branch (GITHUB_HEAD_REF on Actions, the MR's source branch on GitLab,
    whose runner checks out a detached HEAD)."""
    branch = (
        os.environ.get("GITHUB_HEAD_REF")
        or os.environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
        or git.current_branch(repo)
    )
    return GitContext(git.head_commit(repo), branch, pr)


def build_branch(repo: Path, option: str | None) -> str | None:
    """--branch, else the branch of GITHUB_REF, else GitLab's CI_COMMIT_BRANCH (set in branch
    pipelines only, not for tags or merge requests), else the checked-out branch (None when
    detached, as a GitLab runner's checkout is)."""
    if option:
        return option
    ref = os.environ.get("GITHUB_REF", "")
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return os.environ.get("CI_COMMIT_BRANCH") or git.current_branch(repo)


def project_name(repo: Path) -> str:
    """The GitHub repository's name (or GitLab project's), else the origin remote's, else the folder's."""
    from_ci = os.environ.get("GITHUB_REPOSITORY", "").rpartition("/")[2] or os.environ.get("CI_PROJECT_NAME", "")
    origin = (git.remote_url(repo) or "").rstrip("/").rpartition("/")[2].removesuffix(".git")
    return from_ci or origin or repo.resolve().name


def ci_run_url() -> str | None:
    """The CI run's page: the Actions run, else the GitLab job (CI_JOB_URL)."""
    server, repository, run_id = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    if server and repository and run_id:
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    job_url = os.environ.get("CI_JOB_URL", "")
    if job_url.startswith(("https://", "http://")) and not any(c.isspace() for c in job_url):
        return job_url
    return None


def provenance_tags(context: GitContext, dev: dict[str, str], ci: dict[str, str]) -> dict[str, str]:
    """Tags of a CI build's run and model version: what was built, where, and whether the
    developer's pushed outputs (`dev`, path -> md5) match CI's (`ci`)."""
    # the tags the report's trend searches by (adapters/tracking.recent_build_runs)
    tags = {BUILD_KIND_TAG: BUILD_KIND, COMMIT_TAG: context.commit, "mlflow.source.git.commit": context.commit}
    if context.branch:
        tags[BRANCH_TAG] = context.branch
    url = ci_run_url()
    if url:
        tags["mlops.ci_run_url"] = url
    for path, md5 in ci.items():
        tags[f"mlops.ci_md5.{path}"] = md5
    for path, md5 in dev.items():
        tags[f"mlops.dev_md5.{path}"] = md5
    compared = [path for path in ci if path in dev]
    tags["mlops.dev_model_matches_ci"] = str(bool(compared) and all(dev[p] == ci[p] for p in compared)).lower()
    return tags
