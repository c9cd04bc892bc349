"""MLflow tracking through MlflowClient, with bounded retries and clear failures."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, InfrastructureError
from .auth import exception_rejection_reason, mlflow_rejected
from .metric_keys import sanitise_keys
from .process_env import environment_set
from .redact import redact

# MLflow's own HTTP retries default to 7 attempts with a factor-2 back-off (minutes); keep them
# bounded unless the user chose otherwise.
_BOUNDED_HTTP_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Only a failure to get an answer (or a 5xx, still failing after MLflow's retries) is "unreachable":
# a server that answers 404 is up, it just lacks that API (an MLflow 2.x server and logged models).
_UNREACHABLE_MARKERS = (
    "max retries exceeded",
    "connection refused",
    "connection reset",
    "connection aborted",
    "failed to establish a new connection",
    "connectionerror",
    "read timed out",
    "connect timeout",
    "connecttimeout",
    "name or service not known",
    "temporary failure in name resolution",
)
_SERVER_FAILING = re.compile(r"error code 5\d\d\b|too many 5\d\d error responses")
_NOT_FOUND = re.compile(r"error code 404\b|<title>404 not found</title>")


@dataclass(frozen=True)
class TrackedRun:
    tracking_uri: str
    experiment_id: str
    run_id: str


def resolve_tracking_uri(option: str | None, repo: Path) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the embedded sqlite:///<repo>/mlflow.db."""
    return option or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo.resolve() / 'mlflow.db'}"


def bound_http_retries() -> None:
    """MLflow's HTTP retries bounded, its telemetry off, unless the user chose otherwise."""
    for name, value in _BOUNDED_HTTP_RETRIES.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _client(tracking_uri: str):
    bound_http_retries()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


# The modules MLflow's client loads on its first call to a store of each kind (seconds of imports).
_STORE_MODULES = {
    "http": ("mlflow.store.tracking.rest_store", "mlflow.store.model_registry.rest_store"),
    "sql": ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store"),
}
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


# Packages that MLflow's import and DVC's remote clients and reads both load. Python lets a thread
# import a submodule of a package whose __init__ another thread is still running (it then sees a
# half-made package), so the thread that preloads MLflow must not be the one to load these while
# the main thread may: the main thread loads them first (0.1-0.2 s that MLflow's import then saves).
_SHARED_WITH_DVC = (
    "_cffi_backend",
    "anyio.to_thread",
    "certifi",
    "colorsys",
    "dateutil.parser",
    "dateutil.relativedelta",
    "dateutil.tz",
    "fractions",
    "gettext",
    "grp",
    "http.client",
    "http.cookiejar",
    "http.cookies",
    "idna",
    "mimetypes",
    "pygments.filters",
    "pygments.lexers",
    "pygments.styles",
    "six",
    "sniffio",
    "tarfile",
    "urllib.request",
    "urllib3",
    "urllib3.contrib",
    "urllib3.http2",
)


def import_shared_dependencies() -> None:
    """Load, in the calling (main) thread, what MLflow shares with DVC (see _SHARED_WITH_DVC)."""
    import importlib

    for name in _SHARED_WITH_DVC:
        with contextlib.suppress(ImportError):  # an optional one missing: nobody will import it
            importlib.import_module(name)


def preload_store(tracking_uri: str) -> None:
    """Import the store modules the client will need for `tracking_uri`, and nothing more: no
    store is created (a sqlite database would be), nothing is asked. Lets a thread pay for them
    while the main thread waits on DVC or git."""
    import importlib

    scheme = tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    kind = "http" if scheme in ("http", "https") else "sql" if scheme in _SQL_SCHEMES else None
    importlib.import_module("mlflow.tracking")
    importlib.import_module("mlflow.entities")
    for name in _STORE_MODULES.get(kind or "", ()):
        importlib.import_module(name)


@contextmanager
def process_default_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """Make `tracking_uri` MLflow's process default for the block, then put back what was there
    (the variable included: MLflow's setter exports it). MLflow's own stores make clients of the
    default (a sqlite registry looks a logged model up that way), which otherwise is ./mlflow.db
    of whatever the cwd is."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    saved_env, saved_uri = os.environ.get("MLFLOW_TRACKING_URI"), utils._tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        utils._tracking_uri = saved_uri
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def answered_not_found(error: BaseException) -> bool:
    """The server answered, with 404 / ENDPOINT_NOT_FOUND: it is up but lacks that API."""
    if str(getattr(error, "error_code", "")) == "ENDPOINT_NOT_FOUND":
        return True
    return bool(_NOT_FOUND.search(str(error).lower()))


def is_unreachable(error: BaseException) -> bool:
    """No answer (refused, reset, timed out, unknown host), or 5xx after MLflow's retries; never a
    server that answered 404."""
    if answered_not_found(error):
        return False
    text = f"{type(error).__name__} {error}".lower()
    return any(marker in text for marker in _UNREACHABLE_MARKERS) or bool(_SERVER_FAILING.search(text))


def missing_api_error(tracking_uri: str, error: BaseException) -> ConfigError:
    """A server that answers 404 to an MLflow REST call: which server, what it lacks, what to do."""
    from .mlflow_server import server_info

    match = re.search(r"endpoint (\S+)", str(error))
    endpoint = match.group(1) if match else "an MLflow REST API"
    try:
        label = server_info(tracking_uri).label
    except Exception:  # telling the version must never replace this error
        label = "MLflow server"
    return ConfigError(
        f"the {label} at {redact(tracking_uri)} has no {endpoint} (HTTP 404): it is older than this call needs; "
        "upgrade the server, or check that the tracking URI is the server's root"
    )


def unreachable_error(tracking_uri: str, error: BaseException) -> InfrastructureError:
    first_line = redact(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    return InfrastructureError(
        f"MLflow tracking server {redact(tracking_uri)} is unreachable after retries: {first_line[:300]}",
        endpoint=redact(tracking_uri),
    )


def _artifact_location(tracking_uri: str) -> str | None:
    """Beside the database for a sqlite store (MLflow's default is ./mlruns of whatever the cwd is,
    e.g. an Airflow worker's); the store's own default otherwise."""
    if not tracking_uri.lower().startswith("sqlite:"):
        return None
    database = _sqlite_file(tracking_uri)
    return (database.resolve().parent / "mlruns").as_uri() if database else None


def _experiment_id(client, name: str, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        from mlflow.exceptions import MlflowException

        try:
            return client.create_experiment(name, artifact_location=_artifact_location(tracking_uri))
        except MlflowException as error:  # another job created it since: use theirs
            experiment = client.get_experiment_by_name(name)
            if experiment is None or "ALREADY_EXISTS" not in str(getattr(error, "error_code", "")):
                raise
    if experiment.lifecycle_stage == "deleted":
        raise ConfigError(
            f"MLflow experiment '{name}' is deleted; restore it (`mlflow experiments restore`) or pass another --experiment"
        )
    return experiment.experiment_id


@contextmanager
def mlflow_errors(tracking_uri: str) -> Iterator[None]:
    """Turn "the server rejected the credentials" (HTTP 401/403) into ConfigError (exit 2) naming
    the variables to set, and "cannot reach the server" into InfrastructureError naming the endpoint.

    MLflow's HTTP client retries only 408, 429 and 5xx (mlflow.utils.request_utils'
    _TRANSIENT_FAILURE_RESPONSE_CODES), so a 401/403 arrives here at once, and is not retried."""
    try:
        yield
    except (ConfigError, InfrastructureError):
        raise
    except Exception as error:  # MLflow raises many types; sort them by what they mean
        reason = exception_rejection_reason(error)
        if reason:
            raise mlflow_rejected(tracking_uri, reason) from None
        if is_unreachable(error):
            raise unreachable_error(tracking_uri, error) from None
        if answered_not_found(error):
            raise missing_api_error(tracking_uri, error) from None
        raise


# Tracking URI schemes MLflow's client knows, when its own registry cannot be read.
_KNOWN_SCHEMES = ("", "file", "databricks", "http", "https", "postgresql", "mysql", "sqlite", "mssql")
_SQLITE_FORMS = (
    "write sqlite:///relative/path.db or sqlite:////absolute/path.db in --tracking-uri / MLFLOW_TRACKING_URI"
)
_URI_FIX = "fix --tracking-uri / MLFLOW_TRACKING_URI (e.g. http://HOST:5000, https://HOST, sqlite:///mlflow.db)"


def _supported_schemes() -> list[str]:
    """The tracking URI schemes this MLflow client can use (plugins included); Unity Catalog URIs are
    registry-only, refused as tracking URIs."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        schemes = list(_tracking_store_registry._registry)
    except (ImportError, AttributeError):
        schemes = list(_KNOWN_SCHEMES)
    return [scheme for scheme in schemes if scheme not in ("databricks-uc", "uc")]


def _tracking_scheme(tracking_uri: str) -> str:
    """The scheme MLflow reads from the URI (`postgresql` for `postgresql+psycopg2://`); ConfigError
    when MLflow itself cannot parse it."""
    if tracking_uri in ("databricks", "databricks-uc", "uc"):
        return tracking_uri
    from mlflow.exceptions import MlflowException
    from mlflow.utils.uri import get_uri_scheme

    try:
        return get_uri_scheme(tracking_uri)
    except MlflowException as error:
        raise ConfigError(
            f"MLflow tracking URI {redact(tracking_uri)} is not valid ({redact(error.message)[:200]}); {_URI_FIX}"
        ) from None


def check_tracking_server(tracking_uri: str) -> None:
    """Preflight, read-only: MLflow can use `tracking_uri`, and an http(s) server answers.

    ConfigError (exit 2) for a scheme MLflow does not know (`htp://`), a malformed sqlite URI or one
    whose folder does not exist, a file store MLflow refuses, an http(s) URI without a host or a server
    that rejects the credentials; InfrastructureError (exit 3) when the server does not answer after
    MLflow's bounded retries. Nothing is created (a sqlite database is created on its first use).
    """
    from urllib.parse import urlparse

    uri = tracking_uri.strip()
    shown = redact(uri)
    if not uri:
        raise ConfigError(f"the MLflow tracking URI is empty; {_URI_FIX}")
    scheme = _tracking_scheme(uri)
    supported = _supported_schemes()
    if scheme not in supported:
        names = ", ".join(f"{name}:" for name in supported if name)
        raise ConfigError(
            f"MLflow tracking URI {shown} has a scheme MLflow does not know ({scheme}:; known: {names}); {_URI_FIX}"
        )
    if scheme == "sqlite":
        _check_sqlite_uri(uri)
    elif scheme in ("", "file"):
        _check_file_store(uri)
    elif scheme in ("http", "https"):
        parsed = urlparse(uri)
        if not parsed.hostname:
            raise ConfigError(f"MLflow tracking URI {shown} names no host; {_URI_FIX}")
        _check_server_answers(uri)
        from .mlflow_server import server_info

        server_info(uri, fresh=True)  # once per command: which calls it takes (MLflow 2.x: no logged models)


def _sqlite_rest(uri: str) -> str:
    """What follows `sqlite://`, without the query: `/relative.db`, `//absolute.db`, or empty."""
    return uri[len("sqlite://") :].split("?", 1)[0]


def _sqlite_file(tracking_uri: str) -> Path | None:
    """The database file a sqlite: URI names (None for an in-memory one)."""
    rest = _sqlite_rest(tracking_uri)
    if rest in ("", "/", "/:memory:"):
        return None
    return Path(rest[1:] if rest.startswith("/") else rest)


def _check_sqlite_uri(uri: str) -> None:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite://` (in memory): the folder exists."""
    shown = redact(uri)
    if not uri.lower().startswith("sqlite://"):
        raise ConfigError(f"MLflow tracking URI {shown} is not a valid sqlite URI; {_SQLITE_FORMS}")
    path = _sqlite_file(uri)
    if path is None:
        return
    if not _sqlite_rest(uri).startswith("/"):
        raise ConfigError(f"MLflow tracking URI {shown} names a host; a sqlite URI has none: {_SQLITE_FORMS}")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(
            f"MLflow tracking URI {shown} is in a folder that does not exist ({folder}); create it or fix --tracking-uri / MLFLOW_TRACKING_URI"
        )


def _check_file_store(uri: str) -> None:
    """MLflow 3 refuses a file store unless MLFLOW_ALLOW_FILE_STORE=true."""
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:  # an MLflow without that switch takes file stores
        return
    if not MLFLOW_ALLOW_FILE_STORE.get():
        raise ConfigError(
            f"MLflow tracking URI {redact(uri)} is a file store, which this MLflow refuses; "
            "use sqlite:///mlflow.db (or a server), or set MLFLOW_ALLOW_FILE_STORE=true"
        )


def _check_server_answers(uri: str) -> None:
    """One cheap read (the first experiment); MLflow's own HTTP retries are bounded by `_client`."""
    with mlflow_errors(uri):
        try:
            _client(uri).search_experiments(max_results=1)
        except Exception as error:
            if getattr(error, "error_code", None) in ("ENDPOINT_NOT_FOUND", "NOT_FOUND"):
                raise ConfigError(
                    f"{redact(uri)} does not answer as an MLflow tracking server (HTTP 404 on its REST API); {_URI_FIX}"
                ) from None
            raise


def log_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, object],
    metrics: Mapping[str, object],
    artifacts: Mapping[str, str],
) -> TrackedRun:
    """Create a finished run holding params, metrics, tags and small text artifacts. A run cut
    short (an error, a signal) is ended FAILED or KILLED, never left RUNNING."""
    run = open_run(tracking_uri, experiment, run_name, tags)
    try:
        finish_run(run, metrics=metrics, params=params, artifacts=artifacts, logged_params=())
    except BaseException as error:
        end_run_quietly(run, "FAILED" if isinstance(error, Exception) else "KILLED")
        raise
    return run


def end_run_quietly(run: TrackedRun, status: str) -> None:
    """Best effort, on a failure path: mark the run ended; a failure here never hides the cause."""
    with contextlib.suppress(Exception):
        _client(run.tracking_uri).set_terminated(run.run_id, status)


def open_run(tracking_uri: str, experiment: str, run_name: str, tags: Mapping[str, str]) -> TrackedRun:
    """Create a run (status RUNNING) that this process owns and can hand to a training script."""
    with mlflow_errors(tracking_uri):
        client = _client(tracking_uri)
        experiment_id = _experiment_id(client, experiment, tracking_uri)
        run = client.create_run(experiment_id, run_name=run_name, tags={k: redact(v) for k, v in tags.items()})
        return TrackedRun(tracking_uri, experiment_id, run.info.run_id)


def run_environment(run: TrackedRun) -> dict[str, str]:
    """The variables that make `mlflow.start_run()` in a child process resume this run."""
    return {
        "MLFLOW_TRACKING_URI": run.tracking_uri,
        "MLFLOW_RUN_ID": run.run_id,
        "MLFLOW_EXPERIMENT_ID": run.experiment_id,
    }


def finish_run(
    run: TrackedRun,
    *,
    metrics: Mapping[str, object] | None = None,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, str] | None = None,
    artifacts: Mapping[str, str] | None = None,
    status: str = "FINISHED",
    logged_params: tuple[str, ...] | None = None,
) -> None:
    """Add metrics, params, tags and small text artifacts, then close the run. A param the run
    holds already is left as it is (MLflow refuses to change one): `logged_params` names them
    when the caller knows (a run it just created holds none), else the run is asked."""
    import time

    from mlflow.entities import Metric, Param, RunTag

    metrics, params, tags, artifacts = metrics or {}, params or {}, tags or {}, artifacts or {}
    loggable, unloggable = split_loggable(metrics)
    safe_metrics, metric_keys = sanitise_keys(loggable)
    safe_params, param_keys = sanitise_keys(params)
    tags, artifacts = dict(tags), dict(artifacts)
    if unloggable:  # MLflow takes finite floats only: the others stay on the run as a tag and a file
        tags[UNLOGGED_METRICS_TAG] = key_mapping_tag(unloggable, UNLOGGED_METRICS_FILE)
        artifacts[UNLOGGED_METRICS_FILE] = json.dumps(unloggable, indent=2, ensure_ascii=False) + "\n"
    for renamed, tag, file in (
        (metric_keys, METRIC_KEYS_TAG, "metric_keys.json"),
        (param_keys, PARAM_KEYS_TAG, "param_keys.json"),
    ):
        if renamed:
            tags[tag] = key_mapping_tag(renamed, file)
            artifacts[file] = json.dumps(renamed, indent=2, ensure_ascii=False) + "\n"

    with mlflow_errors(run.tracking_uri):
        client = _client(run.tracking_uri)
        existing = client.get_run(run.run_id).data.params if logged_params is None else logged_params
        now = int(time.time() * 1000)
        client.log_batch(
            run.run_id,
            metrics=[Metric(key, value, now, 0) for key, value in safe_metrics.items()],
            params=[Param(key, redact(str(value))[:6000]) for key, value in safe_params.items() if key not in existing],
            tags=[RunTag(key, redact(str(value))) for key, value in tags.items()],
        )
        with tempfile.TemporaryDirectory() as folder:
            for name, text in artifacts.items():
                path = Path(folder) / name
                path.write_text(redact(text))
                client.log_artifact(run.run_id, str(path))
        client.set_terminated(run.run_id, status)


# A run's metrics MLflow cannot log (null, NaN, ±inf, strings, booleans), as JSON: NaN and ±inf as
# the strings "NaN", "Infinity", "-Infinity"
UNLOGGED_METRICS_TAG, UNLOGGED_METRICS_FILE = "mlops.unlogged_metrics", "unlogged_metrics.json"
_NON_FINITE_TEXT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _as_json(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE_TEXT[str(value)]
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _as_json(item) for key, item in value.items()}
    return value


def split_loggable(metrics: Mapping[str, object]) -> tuple[dict[str, float], dict[str, object]]:
    """(the finite numbers MLflow can log, the other values as JSON holds them) by key."""
    loggable: dict[str, float] = {}
    other: dict[str, object] = {}
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            loggable[key] = float(value)
        else:
            other[key] = _as_json(value)
    return loggable, other


# Run tags that map the keys logged to MLflow back to the project's own names, when any had to change
METRIC_KEYS_TAG = "mlops.metric_keys"
PARAM_KEYS_TAG = "mlops.param_keys"
# Older MLflow servers (1.x, early 2.x) take tag values of at most 5000 characters (MLflow 3: 8000)
MAX_TAG_VALUE = 5000


def key_mapping_tag(renamed: Mapping[str, object], file: str) -> str:
    """{safe key: original key} (or {metric: value}) as JSON for a run tag; when too long for a tag,
    as many entries as fit and a last entry "…" naming the artifact that holds them all."""
    text = json.dumps(renamed, ensure_ascii=False, sort_keys=True)
    if len(text) <= MAX_TAG_VALUE:
        return text
    room = MAX_TAG_VALUE - len(
        json.dumps({"…": f"{len(renamed)} more in the run's artifact {file}"}, ensure_ascii=False)
    )
    kept: dict[str, object] = {}
    for key in sorted(renamed):
        entry = len(json.dumps({key: renamed[key]}, ensure_ascii=False))  # its braces' 2 make room for ", "
        if entry > room:
            break
        kept[key] = renamed[key]
        room -= entry
    marker = {"…": f"{len(renamed) - len(kept)} more in the run's artifact {file}"}
    return json.dumps({**kept, **marker}, ensure_ascii=False)


def flatten_params(data: object, prefix: str = "") -> dict[str, object]:
    if isinstance(data, Mapping):
        flat: dict[str, object] = {}
        for key, value in data.items():
            flat.update(flatten_params(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): json.dumps(data) if isinstance(data, (list, tuple)) else data}


# -- reading main builds back (the report's trend) --------------------------------------------

# A read for the report gets one attempt, this long at most: an unreachable server must not make
# a PR's validation wait through retries for something that gates nothing.
TREND_READ_TIMEOUT_SECONDS = 10
BUILD_KIND_TAG, BUILD_KIND = "mlops.kind", "ci-build"  # as provenance tags a master-build run
BRANCH_TAG, COMMIT_TAG = "mlops.branch", "mlops.git_commit"


@dataclass(frozen=True)
class BuildRun:
    """A finished main build's run: its metrics under the project's own (dotted) names."""

    run_id: str
    experiment_id: str
    commit: str | None
    started_ms: int
    metrics: Mapping[str, float]


@contextmanager
def one_bounded_attempt(timeout: float = TREND_READ_TIMEOUT_SECONDS) -> Iterator[None]:
    """MLflow's HTTP client with no retry and at most `timeout` seconds per request (less when the
    user asked for less), for the duration of the block; the user's settings come back after."""
    try:
        given = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or timeout)
    except ValueError:
        given = timeout
    bounded = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(min(given, timeout)))),
    }
    with environment_set(bounded):
        yield


def _store_exists(tracking_uri: str) -> bool:
    """False for a sqlite database that does not exist yet: reading it would create it."""
    if tracking_uri.lower().startswith("sqlite:"):
        path = _sqlite_file(tracking_uri)
        return path is not None and path.is_file()
    return True


def _quoted(value: str) -> str:
    """`value` as a string literal of MLflow's search filter."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ConfigError(f"branch name {value!r} holds both kinds of quotes; MLflow's search cannot name it")


def runs_with_tag(tracking_uri: str, experiment_id: str, key: str, value: str, limit: int = 20) -> list[str]:
    """The ids of an experiment's runs whose tag `key` is `value`, newest first."""
    with mlflow_errors(tracking_uri):
        runs = _client(tracking_uri).search_runs(
            [experiment_id],
            f"tags.`{key}` = {_quoted(value)}",
            order_by=["attributes.start_time DESC"],
            max_results=limit,
        )
        return [run.info.run_id for run in runs]


def metric_names(tags: Mapping[str, str]) -> dict[str, str]:
    """{logged key: the project's own name} from a run's `mlops.metric_keys` tag (keys MLflow took as
    they were are not in it); a cut tag's last entry, which names the artifact, is left out."""
    try:
        mapping = json.loads(tags.get(METRIC_KEYS_TAG) or "{}")
    except ValueError:
        return {}
    if not isinstance(mapping, dict):
        return {}
    return {str(safe): str(original) for safe, original in mapping.items() if safe != "…"}


def _read_failure(tracking_uri: str, error: BaseException) -> InfrastructureError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return InfrastructureError(
        f"MLflow at {redact(tracking_uri)} could not be read: {redact(first)[:200]}", endpoint=redact(tracking_uri)
    )


def recent_build_runs(
    tracking_uri: str,
    experiments: tuple[str, ...],
    branch: str,
    limit: int,
    exclude_run_id: str | None = None,
) -> tuple[BuildRun, ...]:
    """The last `limit` FINISHED build runs of `branch` in those experiments, oldest first.

    Read-only, in one bounded attempt (`one_bounded_attempt`); nothing is created: a missing
    experiment or sqlite database means no builds. ConfigError when the server rejects the
    credentials; InfrastructureError when it cannot be reached or read."""
    if limit <= 0 or not _store_exists(tracking_uri):
        return ()
    query = " AND ".join(
        (
            f"tags.`{BUILD_KIND_TAG}` = '{BUILD_KIND}'",
            f"tags.`{BRANCH_TAG}` = {_quoted(branch)}",
            "attributes.status = 'FINISHED'",
        )
    )
    with one_bounded_attempt(), mlflow_errors(tracking_uri):
        try:
            client = _client(tracking_uri)
            ids = []
            for name in dict.fromkeys(experiments):
                found = client.get_experiment_by_name(name)
                if found is not None and found.lifecycle_stage != "deleted":
                    ids.append(found.experiment_id)
            if not ids:
                return ()
            runs = client.search_runs(
                ids, query, max_results=limit + 1, order_by=["attributes.start_time DESC", "attributes.run_id DESC"]
            )
        except (ConfigError, InfrastructureError):
            raise
        except Exception as error:
            if exception_rejection_reason(error) or is_unreachable(error):
                raise
            raise _read_failure(tracking_uri, error) from None
    builds = []
    for run in runs:
        if run.info.run_id == exclude_run_id:
            continue
        names = metric_names(run.data.tags)
        metrics = {names.get(key, key): float(value) for key, value in run.data.metrics.items()}
        builds.append(
            BuildRun(
                run.info.run_id,
                run.info.experiment_id,
                run.data.tags.get(COMMIT_TAG),
                int(run.info.start_time or 0),
                metrics,
            )
        )
    return tuple(reversed(builds[:limit]))
