"""The parts of `trace` that need no server: the MODEL[@ALIAS|/VERSION] spec, the PR a commit
message names, the github.com origin, the PR GitHub's answer names, a branch's history in one pass."""

from __future__ import annotations

import subprocess

import pytest

from ci_helpers.adapters.commit_history import read_branch_history
from ci_helpers.adapters.github_pulls import CommitPull, pull_that_brought, repository_from_origin
from ci_helpers.errors import ConfigError
from ci_helpers.lineage import VersionSpec, parse_version_spec, pull_request_in_message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("housing", VersionSpec("housing")),
        ("housing@production", VersionSpec("housing", alias="production")),
        ("housing/3", VersionSpec("housing", version="3")),
        (" housing/03 ", VersionSpec("housing", version="3")),
    ],
)
def test_a_spec_names_the_model_and_its_alias_or_version(spec, expected):
    assert parse_version_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("housing@", "malformed model spec 'housing@'"),
        ("housing/", "the version is a number from 1"),
        ("housing/0", "the version is a number from 1"),
        ("housing/v2", "the version is a number from 1"),
        ("housing/2@prod", "malformed model spec"),
        ("@prod", "no model name"),
        ("/2", "no model name"),
        ("housing@latest", "not 'latest'"),
        ("bad name", "invalid model name"),
    ],
)
def test_a_malformed_spec_says_the_accepted_forms(spec, says):
    with pytest.raises(ConfigError, match=None) as raised:
        parse_version_spec(spec)
    assert says in str(raised.value)


def test_a_github_merge_commit_names_its_pull_request_and_title():
    found = pull_request_in_message("Merge pull request #11 from acme/pr-better\n\nMore trees\n", "abc")
    assert (found.number, found.kind, found.source, found.title, found.label) == (
        11,
        "pull request",
        "merge commit message",
        "More trees",
        "#11",
    )


def test_a_squash_commit_names_its_pull_request_at_the_end_of_its_subject():
    found = pull_request_in_message("Deeper trees (#12)\n\n* one\n* two (#3)\n", "abc")
    assert (found.number, found.source, found.title) == (12, "squash commit message", "Deeper trees")


def test_a_gitlab_merge_commit_names_its_merge_request():
    message = "Merge branch 'deeper' into 'main'\n\nDeeper trees\n\nSee merge request acme/ml/housing!7\n"
    found = pull_request_in_message(message, "abc")
    assert (found.number, found.kind, found.label) == (7, "merge request", "!7")


@pytest.mark.parametrize(
    "message",
    ["Retrain with more data", "Fix #12 in the loader", "Merge branch 'x' into main", "Revert (#1) partly\n"],
)
def test_a_message_that_names_no_request_gives_none(message):
    assert pull_request_in_message(message, "abc") is None


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://github.com/acme/housing.git", "acme/housing"),
        ("https://x-access-token:s3cret@github.com/acme/housing", "acme/housing"),
        ("git@github.com:acme/housing.git", "acme/housing"),
        ("ssh://git@github.com/acme/housing.git", "acme/housing"),
        ("https://mirror.example/github.com/acme/housing.git", None),
        ("https://notgithub.com/acme/housing.git", None),
        ("https://github.com.evil.example/acme/housing.git", None),
        ("/srv/git/github.com/acme/housing.git", None),
    ],
)
def test_only_a_github_com_host_names_the_repository(url, repository):
    assert repository_from_origin(url) == repository


def test_a_merged_pull_request_into_another_branch_is_not_the_one_that_brought_the_commit():
    into_release = CommitPull(3, "Backport", None, True, "release")
    into_main = CommitPull(9, "Feature", None, True, "main")
    unmerged = CommitPull(10, "Open", None, False, "main")
    assert pull_that_brought([into_release, unmerged], "main") is None
    assert pull_that_brought([into_release, into_main], "main") == into_main
    assert pull_that_brought([unmerged, into_release], None) == into_release


def _commit(repo, message, *extra):
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message, *extra], cwd=repo, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_each_commit_is_brought_in_by_the_oldest_first_parent_commit_that_holds_it(tmp_path):
    repo = tmp_path
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    base = _commit(repo, "base")
    subprocess.run(["git", "checkout", "-q", "-b", "feature"], cwd=repo, check=True)
    work = _commit(repo, "feature work (#3)")
    subprocess.run(["git", "checkout", "-q", "-b", "nested"], cwd=repo, check=True)
    nested = _commit(repo, "nested work")
    subprocess.run(["git", "checkout", "-q", "feature"], cwd=repo, check=True)
    subprocess.run(["git", "merge", "-q", "--no-ff", "nested", "-m", "Merge nested"], cwd=repo, check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)
    direct = _commit(repo, "on main")
    merge_message = "Merge pull request #9 from acme/feature"
    subprocess.run(["git", "merge", "-q", "--no-ff", "feature", "-m", merge_message], cwd=repo, check=True)
    merge = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True)
    merge = merge.stdout.strip()
    later = _commit(repo, "later")

    history = read_branch_history(repo, "main")

    assert history.brought_by[base] == base
    assert history.brought_by[direct] == direct
    assert history.brought_by[later] == later
    assert history.brought_by[work] == merge
    assert history.brought_by[nested] == merge
    assert history.messages[merge].startswith("Merge pull request #9")
