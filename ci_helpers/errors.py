"""The one exception hierarchy; each class maps onto an exit code (the table in docs/pr-validate.md)."""

from __future__ import annotations


class CIHelpersError(Exception):
    """Raised when a ci_helpers operation cannot complete; never raised directly."""

    exit_code = 1


class ValidationFailed(CIHelpersError):
    """Raised when the work ran but the result is not acceptable (gate failed, not pushed, stale lock)."""

    exit_code = 1


class ConfigError(CIHelpersError):
    """Raised when an input or setting is invalid; the message names the problem and the fix."""

    exit_code = 2


class InfrastructureError(CIHelpersError):
    """Raised when S3, the MLflow server or a git remote stays unreachable after retries."""

    exit_code = 3

    def __init__(self, message: str, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class StageFailed(CIHelpersError):
    """Raised when a command of the project's own pipeline (a `dvc repro` stage) fails."""

    exit_code = 4

    def __init__(self, message: str, stage: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.status = status


INTERNAL_ERROR_EXIT_CODE = 70  # a bug in ci-helpers: anything not raised as a CIHelpersError


class Cancelled(CIHelpersError):
    """Raised when a signal (SIGTERM, SIGINT) stopped the command in progress; exit 128 + the signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
