"""The "no internal error" sweep: every `ci-helpers` run a test makes (the executable, CliRunner,
a cancelled run) is recorded here, and an autouse fixture (tests/conftest.py) fails any test in
which one of them ended as an internal error (exit 70, or the line that says so), unless the test
is marked `internal_error_expected`. Exit 70 is for real bugs: no test's fault may end there."""

from __future__ import annotations

INTERNAL_ERROR_LINE = "internal error in ci-helpers"

_outcomes: list[tuple[int | None, str, str]] = []  # (exit code, output, what ran)


def record(code: int | None, output: str, what: str) -> None:
    _outcomes.append((code, output, what))


def clear() -> None:
    _outcomes.clear()


def internal_errors() -> list[str]:
    found = []
    for code, output, what in _outcomes:
        if code == 70 or INTERNAL_ERROR_LINE in output:
            line = next((line for line in output.splitlines() if INTERNAL_ERROR_LINE in line), f"exit {code}")
            found.append(f"{what}: {line.strip()[:500]}")
    return found
