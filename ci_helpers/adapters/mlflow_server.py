"""What the MLflow tracking server offers, asked once per tracking URI and process.

An MLflow 3 client talks to MLflow 2.x servers for runs, metrics, tags and the registry, but 2.x
servers have no logged-models API (`/api/2.0/mlflow/logged-models*`): they answer it with an HTML
404. Every server since 1.x answers `GET /version` with its version as plain text, so one request
tells which calls to make. A local store (sqlite:, file:) is run by this client's own MLflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError
from .auth import mlflow_rejected
from .redact import redact

_VERSION_TEXT = re.compile(r"\d+\.\d+(?:\.\d+)?(?:[.+\-]?[\w.+\-]*)?")
_ASKED: dict[str, ServerInfo] = {}


@dataclass(frozen=True)
class ServerInfo:
    """What one tracking URI's server said about itself."""

    version: str | None  # as GET /version answered; None for a local store or a server that would not say
    remote: bool  # an http(s) server (else a store this client runs itself)

    @property
    def major(self) -> int | None:
        return int(self.version.split(".", 1)[0]) if self.version else None

    @property
    def logged_models(self) -> bool:
        """MLflow 3's logged models (`models:/m-<id>`, search_logged_models): a server older than
        3 lacks them; one that does not say its version is taken to be current."""
        return self.major is None or self.major >= 3

    @property
    def label(self) -> str:
        if not self.remote:
            return "MLflow store"
        return f"MLflow {self.version} server" if self.version else "MLflow server (version not told)"


def server_info(tracking_uri: str, fresh: bool = False) -> ServerInfo:
    """Ask the server once (remembered until asked `fresh`: each command's preflight does, so a
    long-lived process, an Airflow worker, sees a server upgraded meanwhile); a local store needs no
    asking."""
    uri = tracking_uri.strip()
    if fresh or uri not in _ASKED:
        remote = uri.lower().startswith(("http://", "https://"))
        _ASKED[uri] = ServerInfo(_ask_version(uri) if remote else None, remote)
    return _ASKED[uri]


def supports_logged_models(tracking_uri: str) -> bool:
    return server_info(tracking_uri).logged_models


def _ask_version(uri: str) -> str | None:
    """GET <uri>/version with MLflow's own request helper (its env auth: MLFLOW_TRACKING_USERNAME,
    _PASSWORD, _TOKEN...; its bounded retries). None when the server answers something else (a
    proxy that routes only /api); a refusal of the credentials is exit 2, no answer at all exit 3."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    from .tracking import _client, mlflow_errors

    _client(uri)  # sets the bounded HTTP retries
    with mlflow_errors(uri):
        response = http_request(get_default_host_creds(uri), "/version", "GET")
    if response.status_code in (401, 403):
        raise mlflow_rejected(uri, f"HTTP {response.status_code}")
    text = response.text.strip() if response.status_code == 200 else ""
    return text if _VERSION_TEXT.fullmatch(text) else None


def require_logged_models(tracking_uri: str, what: str, instead: str) -> None:
    """ConfigError (exit 2, before any write) when `what` needs logged models the server lacks."""
    info = server_info(tracking_uri)
    if not info.logged_models:
        raise ConfigError(
            f"{what} needs MLflow 3's logged models, which the {info.label} at {redact(tracking_uri)} "
            f"does not have; {instead}"
        )


def script_newer_than_server(stage_output: str, tracking_uri: str) -> str | None:
    """Why a stage failed, when its MLflow 3 client asked a 2.x server for logged models (an MLflow 3
    `log_model(name=...)`): the stage's own traceback only says "404". None otherwise."""
    if "logged-models" not in stage_output and "logged_models" not in stage_output:
        return None
    info = server_info(tracking_uri)
    if info.logged_models:
        return None
    return (
        f"the stage logs with MLflow 3 (log_model(name=...)) to the {info.label}, which has no logged models: "
        "log with the server's major version (MLflow 2: `log_model(artifact_path=...)`, with `mlflow<3` in the "
        "stage's Python) or upgrade the server to MLflow 3"
    )
