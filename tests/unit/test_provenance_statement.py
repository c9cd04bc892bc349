"""The statement's shape and the checks verify makes, pure."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ci_helpers.errors import ConfigError
from ci_helpers.flows.verify import compare_subjects, parse_model_ref
from ci_helpers.provenance_statement import (
    BuildParameters,
    DvcDependency,
    GitSource,
    RunContext,
    StatementInputs,
    Subject,
    build_statement,
    read_statement,
    statement_bytes,
)


def _statement(**changes) -> dict:
    inputs = StatementInputs(
        (Subject("model.pkl", "a" * 64),),
        BuildParameters("master-build", "churn", "staging", ("train",), ("acc>=0.9",)),
        RunContext(
            "local",
            "https://ci:PLANTED-url-1@ci.example/run/1",
            None,
            datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            "https://user:PLANTED-uri-2@mlflow.example",
            "r1",
        ),
        "1.0",
        GitSource("https://x-access-token:PLANTED-git-3@github.com/acme/churn.git", "b" * 40),
        (DvcDependency("data/train", "c" * 32 + ".dir", "s3://bucket/dvc"),),
        model_out=DvcDependency("models/model.pkl", "d" * 32, "s3://bucket/dvc"),
        **changes,
    )
    return build_statement(inputs)


def test_no_credential_of_any_url_reaches_the_statement():
    text = statement_bytes(_statement()).decode()
    assert "PLANTED" not in text
    assert "git+https://***@github.com/acme/churn.git" in text


def test_a_directory_dependency_keeps_its_dir_hash_and_a_hex_md5_digest():
    (directory,) = [d for d in _statement()["predicate"]["buildDefinition"]["resolvedDependencies"] if d.get("name")]
    assert directory["digest"] == {"md5": "c" * 32}
    assert directory["annotations"]["dvcHash"] == "c" * 32 + ".dir"
    assert directory["annotations"]["type"] == "directory"


def test_the_stored_statement_reads_back_its_subjects_and_model_out():
    view = read_statement(statement_bytes(_statement()))
    assert view.subjects == {"model.pkl": "a" * 64}
    assert view.model_out == DvcDependency("models/model.pkl", "d" * 32, "s3://bucket/dvc")
    assert _statement()["predicate"]["runDetails"]["metadata"]["finishedOn"] == "2026-01-02T03:04:05Z"


def test_a_missing_an_extra_and_a_changed_file_are_each_a_mismatch():
    found = compare_subjects({"a": "1", "b": "2"}, {"b": "3", "c": "4"})
    assert [m.line for m in found] == [
        "a: expected sha256 1, got missing",
        "b: expected sha256 2, got sha256 3",
        "c: expected no such file, got sha256 4",
    ]


@pytest.mark.parametrize(
    ("text", "alias", "version"),
    [("churn@production", "production", None), ("churn/7", None, "7"), ("churn", "production", None)],
)
def test_a_model_is_named_by_alias_or_number(text, alias, version):
    ref = parse_model_ref(text)
    assert (ref.name, ref.alias, ref.version) == ("churn", alias, version)


@pytest.mark.parametrize("text", ["churn@@x", "churn/v7", "@prod", "churn@latest"])
def test_a_malformed_model_is_refused(text):
    with pytest.raises(ConfigError):
        parse_model_ref(text)
