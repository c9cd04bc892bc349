"""One registry read over MLflow's REST API without importing MLflow.

A scheduled run on a fresh worker asks one question before anything else: which version is behind
the alias, and what are its tags. Importing MLflow to ask it costs 2 to 2.5 s of a task that then
does nothing more (bench/bench_airflow_repo.py), so an http(s) tracking server is asked directly,
the way MLflow's own client asks it (`GET /api/2.0/mlflow/registered-models/alias`), with the same
settings: MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_INSECURE_TLS,
MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_CLIENT_CERT_PATH, MLFLOW_HTTP_REQUEST_TIMEOUT.
A server behind an auth plugin (MLFLOW_TRACKING_AUTH) or any other scheme goes through MLflow.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

from ..errors import InfrastructureError
from .auth import mlflow_rejected
from .redact import redact

ALIAS_PATH = "/api/2.0/mlflow/registered-models/alias"
_ATTEMPTS = 3


def answers_over_rest(tracking_uri: str) -> bool:
    """An http(s) server this module can ask the way MLflow's client would."""
    return urlsplit(tracking_uri).scheme in ("http", "https") and not os.environ.get("MLFLOW_TRACKING_AUTH")


def _session():
    import requests

    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc setting of this machine swaps the credentials
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    elif user and password:
        session.auth = (user, password)
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        session.verify = False
    elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        session.verify = os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"]
    if os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        session.cert = os.environ["MLFLOW_TRACKING_CLIENT_CERT_PATH"]
    return session


def alias_version_tags_over_rest(tracking_uri: str, name: str, alias: str) -> tuple[str, dict[str, str]] | None:
    """(version, its tags) behind `alias`; None when the model or the alias does not exist.
    Transient failures are retried, then exit 3 naming the server; rejected credentials exit 2."""
    import requests

    url = tracking_uri.rstrip("/") + ALIAS_PATH
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 30)
    shown = redact(tracking_uri)
    last = ""
    with _session() as session:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                response = session.get(
                    url, params={"name": name, "alias": alias}, timeout=timeout, allow_redirects=False
                )
            except requests.RequestException as error:
                last = type(error).__name__
            else:
                if response.status_code in (401, 403):
                    raise mlflow_rejected(tracking_uri, f"HTTP {response.status_code}")
                if response.status_code == 200:
                    version = response.json().get("model_version") or {}
                    tags = {tag["key"]: tag.get("value", "") for tag in version.get("tags") or []}
                    return str(version["version"]), tags
                if response.status_code in (400, 404) and _names_nothing(response):
                    return None
                last = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # an answer that will not change: not worth a retry
            if attempt < _ATTEMPTS:
                time.sleep(attempt)
    raise InfrastructureError(
        f"MLflow tracking server {shown} did not answer the alias lookup of '{name}@{alias}' ({last})", endpoint=shown
    )


def _names_nothing(response) -> bool:
    """MLflow's answer to a model or alias that does not exist (or cannot: an invalid name)."""
    try:
        code = str(response.json().get("error_code", ""))
    except ValueError:
        return False
    return "RESOURCE_DOES_NOT_EXIST" in code or "INVALID_PARAMETER" in code
