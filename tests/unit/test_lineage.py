"""The pure parts of `trace`: the MODEL[@ALIAS|/VERSION] spec and the PR a commit message names."""

from __future__ import annotations

import pytest

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
