"""A server that answers 404 (an MLflow 2.x server asked for logged models) is up: never
"unreachable", never retried as such; a refused connection, a timeout or a 5xx still is. Pure: the
errors are built as MLflow's client raises them."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException, RestException

from ci_helpers.adapters.tracking import answered_not_found, is_unreachable, mlflow_errors
from ci_helpers.errors import ConfigError, InfrastructureError

HTML_404 = (
    "API request to endpoint /api/2.0/mlflow/logged-models/search failed with error code 404 != 200. "
    "Response body: '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>'"
)
REFUSED = (
    "API request to http://127.0.0.1:9/api/2.0/mlflow/experiments/search failed with exception "
    "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /api/2.0/mlflow/experiments/search "
    "(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object>: Failed to establish a new "
    "connection: [Errno 111] Connection refused'))"
)


@pytest.mark.parametrize(
    "error",
    [
        MlflowException(HTML_404, error_code="ENDPOINT_NOT_FOUND"),
        MlflowException(HTML_404),
        RestException({"error_code": "ENDPOINT_NOT_FOUND", "message": "No such endpoint"}),
    ],
    ids=["html-404", "html-404-no-code", "endpoint-not-found"],
)
def test_a_server_that_answers_404_is_not_unreachable(error):
    assert answered_not_found(error)
    assert not is_unreachable(error)


@pytest.mark.parametrize(
    "error",
    [
        MlflowException(REFUSED),
        ConnectionRefusedError(111, "Connection refused"),
        MlflowException(
            "API request to http://h/api failed with exception ReadTimeout: Read timed out. (read timeout=20)"
        ),
        MlflowException("API request to endpoint /api/2.0/mlflow/runs/create failed with error code 503 != 200"),
        MlflowException(
            "API request to http://h/api failed with exception ResponseError('too many 502 error responses')"
        ),
    ],
    ids=["refused", "refused-os", "read-timeout", "503", "5xx-after-retries"],
)
def test_no_answer_or_a_failing_server_still_is_unreachable(error):
    assert is_unreachable(error)
    assert not answered_not_found(error)


def test_a_404_through_mlflow_errors_is_one_config_line_not_an_infrastructure_failure(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a local store: no request to tell its version

    with pytest.raises(ConfigError) as raised, mlflow_errors(uri):
        raise MlflowException(HTML_404, error_code="ENDPOINT_NOT_FOUND")

    assert not isinstance(raised.value, InfrastructureError)
    message = str(raised.value)
    assert "\n" not in message
    assert "/api/2.0/mlflow/logged-models/search (HTTP 404)" in message
    assert "unreachable" not in message

    with pytest.raises(InfrastructureError, match="unreachable after retries"), mlflow_errors(uri):
        raise MlflowException(REFUSED)
