"""The alias lookup an unchanged scheduled run makes, over MLflow's REST API without importing
MLflow, against the session's real `mlflow server` on 127.0.0.1: the same answer as MLflow's client."""

from __future__ import annotations

import http.server
import threading
import uuid

import pytest

from ci_helpers.adapters.registry_rest import alias_version_tags_over_rest, answers_over_rest
from ci_helpers.errors import ConfigError, InfrastructureError
from tests.support.servers import refused_port

pytestmark = pytest.mark.integration


def _registered(uri: str) -> tuple[str, str]:
    """A model with two versions, the alias on the second, tags on it."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    name = f"rest-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    experiment = client.create_experiment(f"rest-{uuid.uuid4().hex[:8]}")
    for number in (1, 2):
        run = client.create_run(experiment)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id, tags={"n": str(number)})
    client.set_model_version_tag(name, "2", "mlops.inputs_sha256", "abc")
    client.set_registered_model_alias(name, "production", "2")
    return name, "production"


def test_the_lookup_answers_what_mlflows_client_answers(mlflow_server):
    from mlflow.tracking import MlflowClient

    name, alias = _registered(mlflow_server.url)
    found = alias_version_tags_over_rest(mlflow_server.url, name, alias)
    expected = MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url).get_model_version_by_alias(name, alias)
    assert found == (str(expected.version), dict(expected.tags))
    assert found[1]["mlops.inputs_sha256"] == "abc"
    assert answers_over_rest(mlflow_server.url)


def test_a_missing_alias_or_model_is_none(mlflow_server):
    name, _ = _registered(mlflow_server.url)
    assert alias_version_tags_over_rest(mlflow_server.url, name, "staging") is None
    assert alias_version_tags_over_rest(mlflow_server.url, f"nothing-{uuid.uuid4().hex[:6]}", "production") is None


def test_an_unreachable_server_is_exit_3_naming_it_without_its_password():
    uri = f"http://user:pa55word@127.0.0.1:{refused_port()}"
    with pytest.raises(InfrastructureError) as raised:
        alias_version_tags_over_rest(uri, "model", "production")
    assert raised.value.exit_code == 3
    assert "127.0.0.1" in str(raised.value)
    assert "pa55word" not in str(raised.value)


class _Refusing(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_rejected_credentials_are_exit_2_never_retried(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken-never-shown")
    try:
        with pytest.raises(ConfigError) as raised:
            alias_version_tags_over_rest(f"http://127.0.0.1:{server.server_port}", "model", "production")
    finally:
        server.shutdown()
    assert "rejected the credentials" in str(raised.value)
    assert "MLFLOW_TRACKING_TOKEN" in str(raised.value)
    assert "t0ken-never-shown" not in str(raised.value)
    assert _Refusing.hits == 1  # never retried


def test_an_auth_plugin_goes_through_mlflow(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_AUTH", "my_plugin")
    assert not answers_over_rest("https://mlflow.example.com")
    monkeypatch.delenv("MLFLOW_TRACKING_AUTH")
    assert not answers_over_rest("sqlite:////tmp/mlflow.db")
