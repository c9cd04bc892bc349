"""The statement's shape and the checks verify makes, pure."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from ci_helpers.errors import ConfigError
from ci_helpers.flows.verify import compare_subjects
from ci_helpers.lineage import parse_version_spec
from ci_helpers.provenance_statement import (
    LOCAL_BUILDER,
    BuildParameters,
    DvcDependency,
    GitSource,
    ParamsFile,
    RunContext,
    StatementInputs,
    Subject,
    build_statement,
    builder_id,
    git_uri,
    invocation_id,
    read_statement,
    statement_bytes,
)
from tests.support.provenance_schema import assert_valid_statement, statement_errors


def _statement(**changes) -> dict:
    inputs = StatementInputs(
        (Subject("model.pkl", "a" * 64),),
        BuildParameters("master-build", "churn", "staging", ("train",), ("acc>=0.9",)),
        RunContext(
            LOCAL_BUILDER,
            "https://ci:PLANTED-url-1@ci.example/run/1",
            None,
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            "https://user:PLANTED-uri-2@mlflow.example",
            "r1",
        ),
        "1.0",
        GitSource("https://x-access-token:PLANTED-git-3@github.com/acme/churn.git", "b" * 40),
        (DvcDependency("data/train", "c" * 32 + ".dir", "s3://bucket/dvc"),),
        (ParamsFile("params.yaml", "e" * 64),),
        model_out=DvcDependency("models/model.pkl", "d" * 32, "s3://bucket/dvc"),
        model_version="4",
        **changes,
    )
    return build_statement(inputs)


def test_no_credential_of_any_url_reaches_the_statement():
    text = statement_bytes(_statement()).decode()
    assert "PLANTED" not in text
    assert '"git+https://github.com/acme/churn.git"' in text  # stripped, not masked


def test_digests_that_are_not_of_the_resource_bytes_carry_custom_keys():
    """md5/sha256 name a hash of the resource's own bytes: a `.dir` manifest's md5 and the digest of a
    params file's values are not that."""
    deps = {d.get("name"): d for d in _statement()["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["data/train"]["digest"] == {"dvcDirMd5": "c" * 32}
    assert deps["data/train"]["annotations"]["dvcHash"] == "c" * 32 + ".dir"
    assert deps["data/train"]["annotations"]["type"] == "directory"
    assert deps["params.yaml"]["digest"] == {"dvcParamsSha256": "e" * 64}


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("https://x-access-token:tok@github.com/acme/churn.git?x=1#frag", "git+https://github.com/acme/churn.git"),
        ("ssh://git@github.com:22/acme/churn.git", "git+ssh://github.com:22/acme/churn.git"),
        ("git@github.com:acme/churn.git", "git+ssh://github.com/acme/churn.git"),
        ("git+https://user@host.example/r.git", "git+https://host.example/r.git"),
        ("/srv/git/churn.git", "git+file:///srv/git/churn.git"),
    ],
)
def test_the_git_repository_uri_has_no_userinfo_query_or_fragment(url, uri):
    assert git_uri(url) == uri


def test_the_builder_outside_ci_is_a_uri_and_github_invocations_name_the_attempt(monkeypatch):
    for name in ("GITHUB_WORKFLOW_REF", "CI_PIPELINE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert builder_id() == LOCAL_BUILDER == "https://github.com/org/mlops-actions/builders/local@v1"
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")
    assert invocation_id() == "https://github.com/acme/churn/actions/runs/42/attempts/2"


def test_the_statement_is_valid_under_the_strict_schemas():
    assert_valid_statement(_statement())


def _set(path: tuple, value):
    def mutate(statement: dict) -> None:
        *parents, last = path
        node = statement
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()
_BUILD = ("predicate", "buildDefinition")
_RUN = ("predicate", "runDetails")


@pytest.mark.parametrize(
    "mutate",
    [
        _set(("predicateType",), "https://slsa.dev/provenance/v0.2"),
        _set((*_BUILD, "buildType"), "https://example.com/other/v1"),
        _set((*_RUN, "builder", "id"), "local"),
        _set((*_BUILD, "resolvedDependecies"), []),
        _set(("subject", 0, "digest"), {"SHA256": "a" * 64}),
        _set((*_BUILD, "resolvedDependencies"), _DELETE),
        _set((*_RUN, "byproducts"), _DELETE),
        _set((*_BUILD, "resolvedDependencies", 0, "uri"), "github.com/acme/churn"),
    ],
    ids=["predicateType", "buildType", "builder-local", "typo", "digest-key", "no-deps", "no-byproducts", "uri"],
)
def test_the_schemas_reject_each_wrong_statement(mutate):
    statement = copy.deepcopy(_statement())
    mutate(statement)
    assert statement_errors(statement)


def test_the_stored_statement_reads_back_its_subjects_and_model_out():
    view = read_statement(statement_bytes(_statement()))
    assert view.subjects == {"model.pkl": "a" * 64}
    assert view.model_out == DvcDependency("models/model.pkl", "d" * 32, "s3://bucket/dvc")
    assert (view.model_name, view.model_version) == ("churn", "4")
    assert _statement()["predicate"]["runDetails"]["metadata"]["finishedOn"] == "2026-01-02T03:04:05Z"


def test_a_missing_an_extra_and_a_changed_file_are_each_a_mismatch():
    found = compare_subjects({"a": "1", "b": "2"}, {"b": "3", "c": "4"})
    assert [m.line for m in found] == [
        "a: expected sha256 1, got missing",
        "b: expected sha256 2, got sha256 3",
        "c: expected no such file, got sha256 4",
    ]


@pytest.mark.parametrize("text", ["churn@@x", "churn/v7", "@prod", "churn@latest", "churn/0"])
def test_verify_reads_a_model_with_traces_parser_and_refuses_a_malformed_one(text):
    with pytest.raises(ConfigError):
        parse_version_spec(text)


def test_a_checkout_remote_other_than_the_statements_is_a_mismatch():
    from ci_helpers.flows.verify import RemoteTarget, _remote_url_mismatch

    out = DvcDependency("models/model.pkl", "d" * 32, "s3://bucket/dvc")
    assert _remote_url_mismatch(RemoteTarget("origin", "e", "s3://bucket/dvc", out)) is None
    found = _remote_url_mismatch(RemoteTarget("origin", "e", "s3://other/dvc", out))
    assert found is not None
    assert found.line.startswith(
        "DVC remote of models/model.pkl: expected s3://bucket/dvc (the statement's), got s3://other/dvc"
    )
