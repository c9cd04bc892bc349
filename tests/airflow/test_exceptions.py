"""Each exit-code class is its own Airflow exception: only infrastructure failures are retried."""

from __future__ import annotations

import pytest

from ci_helpers.errors import ConfigError, InfrastructureError, StageFailed, ValidationFailed

airflow_exceptions = pytest.importorskip("airflow.sdk.exceptions")


@pytest.mark.parametrize(
    ("error", "name", "exit_code", "retried"),
    [
        (InfrastructureError("MLflow at http://127.0.0.1:1 is unreachable"), "MlopsInfrastructureError", 3, True),
        (ConfigError("malformed threshold 'r2>>1'"), "MlopsConfigError", 2, False),
        (ValidationFailed("gate failed"), "MlopsGateFailed", 1, False),
        (StageFailed("stage 'train' exited with 1"), "MlopsStageFailed", 4, False),
        (KeyError("surprise"), "MlopsInternalError", 70, False),
        (OSError(28, "No space left on device", "/srv/mlops/.dvc/cache"), "MlopsResourceExhausted", 5, True),
        (
            StageFailed("stage 'train' exited with 1: OSError: [Errno 28] No space left on device"),
            "MlopsResourceExhausted",
            5,
            True,
        ),
    ],
)
def test_ci_helpers_errors_become_airflow_exceptions(error, name, exit_code, retried):
    from ci_helpers.airflow.exceptions import as_airflow_errors

    with pytest.raises(airflow_exceptions.AirflowException) as raised, as_airflow_errors():
        raise error

    assert type(raised.value).__name__ == name
    assert raised.value.exit_code == exit_code
    # Airflow retries an AirflowException, never an AirflowFailException
    assert isinstance(raised.value, airflow_exceptions.AirflowFailException) is not retried


def test_secrets_in_a_message_are_redacted():
    from ci_helpers.airflow.exceptions import airflow_error

    error = airflow_error(InfrastructureError("MLflow at https://user:s3cret@mlflow.example/ is unreachable"))

    assert "s3cret" not in str(error)
