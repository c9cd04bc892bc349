"""The subject-checksums output: the statement's subjects in the format attest-build-provenance's
`subject-checksums` input and `sha256sum -c` read."""

from __future__ import annotations

from datetime import datetime, timezone

from ci_helpers.provenance_record import subject_checksums
from ci_helpers.provenance_statement import (
    BuildParameters,
    GitSource,
    RunContext,
    StatementInputs,
    Subject,
    build_statement,
    statement_bytes,
)


def test_one_sha256sum_line_per_subject_of_the_statement():
    subjects = (Subject("MLmodel", "a" * 64), Subject("model/model.pkl", "b" * 64), Subject("my file.txt", "c" * 64))
    inputs = StatementInputs(
        subjects,
        BuildParameters("master-build", "churn", "staging", ("train",), ()),
        RunContext("local", None, None, datetime(2026, 1, 2, tzinfo=timezone.utc), "http://127.0.0.1:5000", "r1"),
        "1.0",
        GitSource("https://github.com/acme/churn.git", "d" * 40),
        (),
    )

    text = subject_checksums(statement_bytes(build_statement(inputs)))

    # two spaces between digest and name (sha256sum's text mode); a name keeps its spaces
    assert text == f"{'a' * 64}  MLmodel\n{'b' * 64}  model/model.pkl\n{'c' * 64}  my file.txt\n"
