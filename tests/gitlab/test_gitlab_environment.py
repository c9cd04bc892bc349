"""What ci-helpers reads from a GitLab job's environment, next to GitHub's (pure: no I/O).

A GitLab runner checks out a detached HEAD and names the merge request, its branches and the job
in predefined variables; GitHub's variables win wherever both are set, so an Actions run reads as
before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_helpers.adapters import gitlab_api
from ci_helpers.provenance import base_ref_from_env, build_branch, ci_run_url, pr_number_from_env

NOWHERE = Path("/nonexistent-repo")  # build_branch must not need git when the environment answers
GITHUB = ("GITHUB_REF", "GITHUB_BASE_REF", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
GITLAB = (
    "GITLAB_CI",
    "CI_MERGE_REQUEST_IID",
    "CI_MERGE_REQUEST_TARGET_BRANCH_NAME",
    "CI_COMMIT_BRANCH",
    "CI_JOB_URL",
    "CI_API_V4_URL",
    "CI_PROJECT_ID",
)


@pytest.fixture(autouse=True)
def clean_ci_env(monkeypatch):
    for name in GITHUB + GITLAB:
        monkeypatch.delenv(name, raising=False)


def test_the_merge_request_iid_is_the_pr_number(monkeypatch):
    assert pr_number_from_env() is None
    monkeypatch.setenv("CI_MERGE_REQUEST_IID", "42")
    assert pr_number_from_env() == 42
    monkeypatch.setenv("GITHUB_REF", "refs/pull/7/merge")
    assert pr_number_from_env() == 7  # GitHub's, where both are set


@pytest.mark.parametrize("value", ["", "abc", "4 2", "-3", "\uff14\uff12"])  # the last: full-width digits
def test_a_merge_request_iid_that_is_not_a_number_is_no_pr(monkeypatch, value):
    monkeypatch.setenv("CI_MERGE_REQUEST_IID", value)
    assert pr_number_from_env() is None


def test_the_baseline_default_is_the_target_branch(monkeypatch):
    assert base_ref_from_env() is None
    monkeypatch.setenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "develop")
    assert base_ref_from_env() == "develop"
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    assert base_ref_from_env() == "main"


def test_the_run_url_is_the_gitlab_job(monkeypatch):
    assert ci_run_url() is None
    monkeypatch.setenv("CI_JOB_URL", "https://gitlab.example/acme/housing/-/jobs/41")
    assert ci_run_url() == "https://gitlab.example/acme/housing/-/jobs/41"
    for name, value in zip(GITHUB[2:], ("https://github.com", "acme/housing", "9"), strict=True):
        monkeypatch.setenv(name, value)
    assert ci_run_url() == "https://github.com/acme/housing/actions/runs/9"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://gitlab.example/a b", "/acme/-/jobs/1"])
def test_a_job_url_that_is_not_a_web_address_is_left_out(monkeypatch, url):
    monkeypatch.setenv("CI_JOB_URL", url)
    assert ci_run_url() is None


def test_the_build_branch_is_the_pipelines_branch_on_a_detached_checkout(monkeypatch):
    monkeypatch.setenv("CI_COMMIT_BRANCH", "main")
    assert build_branch(NOWHERE, None) == "main"
    assert build_branch(NOWHERE, "release") == "release"  # --branch, the env var or mlops.yaml first
    monkeypatch.setenv("GITHUB_REF", "refs/heads/trunk")
    assert build_branch(NOWHERE, None) == "trunk"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("CI_API_V4_URL", "", "is not an http(s) URL"),
        ("CI_API_V4_URL", "gitlab.example/api/v4", "is not an http(s) URL"),
        ("CI_API_V4_URL", "https://gitlab.example/api/v4?x=1", "is not an http(s) URL"),
        ("CI_API_V4_URL", "https://oauth2:secret@gitlab.example/api/v4", "must not carry credentials"),
        ("CI_PROJECT_ID", "acme%2Fhousing", "is not a numeric project id"),
        ("CI_PROJECT_ID", "", "is not a numeric project id"),
    ],
)
def test_the_api_and_project_are_checked_before_any_request(monkeypatch, name, value, said):
    monkeypatch.setenv(name, value)
    read = gitlab_api.api_url_from_env if name == "CI_API_V4_URL" else gitlab_api.project_id_from_env
    with pytest.raises(gitlab_api.GitLabAPIError) as raised:
        read()
    assert said in str(raised.value)
    assert "secret" not in str(raised.value)


def test_the_api_url_and_project_id_as_gitlab_gives_them(monkeypatch):
    monkeypatch.setenv("CI_API_V4_URL", "https://gitlab.example/api/v4/")
    monkeypatch.setenv("CI_PROJECT_ID", "1217")
    assert gitlab_api.api_url_from_env() == "https://gitlab.example/api/v4"
    assert gitlab_api.project_id_from_env() == 1217


@pytest.mark.parametrize(
    ("header", "current", "following"),
    [("2", 1, 2), ("", 3, None), (" 5 ", 4, 5), ("1", 1, None), ("0", 2, None), ("x", 1, None)],
)
def test_paging_follows_x_next_page_forward_only(header, current, following):
    assert gitlab_api._next_page(header, current) == following


@pytest.mark.parametrize(
    ("status", "transient", "forbidden"),
    [
        (None, True, False),
        (401, False, True),
        (403, False, True),
        (404, False, True),
        (429, True, False),
        (502, True, False),
    ],
)
def test_which_api_errors_are_retried_and_which_fall_back(status, transient, forbidden):
    error = gitlab_api.GitLabAPIError("x", status)
    assert (error.transient, error.forbidden) == (transient, forbidden)
