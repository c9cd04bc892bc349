"""One Airflow exception per exit-code class, so that Airflow retries infrastructure failures
only: a failed gate, a bad configuration or a broken stage fails the task at once
(`AirflowFailException`), while an unreachable MLflow server, S3 or git remote is retried under
the task's `retries`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from ..adapters.redact import redact
from ..errors import (
    INTERNAL_ERROR_EXIT_CODE,
    CIHelpersError,
    ConfigError,
    InfrastructureError,
    RunnerResourceExhausted,
    StageFailed,
)


class MlopsGateFailed(AirflowFailException):
    """Raised when the model ran but failed its gate (exit code 1): never retried."""

    exit_code = 1


class MlopsConfigError(AirflowFailException):
    """Raised when a setting or input is invalid (exit code 2): never retried, fix the DAG."""

    exit_code = 2


class MlopsInfrastructureError(AirflowException):
    """Raised when MLflow, S3 or a git remote stays unreachable (exit code 3): retried by Airflow."""

    exit_code = 3


class MlopsResourceExhausted(AirflowException):
    """Raised when the worker ran out of disk (exit code 5): retried, perhaps on another worker."""

    exit_code = 5


class MlopsStageFailed(AirflowFailException):
    """Raised when a stage of the project's own pipeline fails (exit code 4): never retried."""

    exit_code = 4


class MlopsInternalError(AirflowFailException):
    """Raised when ci_helpers itself fails unexpectedly (exit code 70): never retried."""

    exit_code = INTERNAL_ERROR_EXIT_CODE


def airflow_error(error: BaseException) -> AirflowException:
    """The Airflow exception for a ci_helpers error, its message redacted. A full disk, whatever
    raised it, is the worker's fault: retried (perhaps elsewhere), never an internal error."""
    from ..failures import domain_error

    error = domain_error(error) or error
    message = redact(str(error))
    if isinstance(error, InfrastructureError):
        return MlopsInfrastructureError(message)
    if isinstance(error, RunnerResourceExhausted):
        return MlopsResourceExhausted(message)
    if isinstance(error, ConfigError):
        return MlopsConfigError(message)
    if isinstance(error, StageFailed):
        return MlopsStageFailed(message)
    if isinstance(error, CIHelpersError):
        return MlopsGateFailed(message)
    return MlopsInternalError(f"internal error in ci_helpers ({type(error).__name__}: {message})")


@contextmanager
def as_airflow_errors() -> Iterator[None]:
    """Turn every ci_helpers failure inside the block into the matching Airflow exception."""
    try:
        yield
    except AirflowException:
        raise
    except Exception as error:
        raise airflow_error(error) from error
