"""Rejected credentials are exit 2 at once (never retried), and the read-only preflight probes, against
real servers on 127.0.0.1: the `mlflow server`, moto S3, git remotes (a bare repository, and an HTTP
one behind a proxy that refuses every request)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from ci_helpers.adapters import dvc, git
from ci_helpers.adapters.tracking import check_tracking_server, finish_run, open_run
from ci_helpers.errors import ConfigError, InfrastructureError
from ci_helpers.push_check import verify_pushed
from tests.support.project import REMOTE, sh, write_local_remote
from tests.support.proxy import FlakyProxy, Rejection, forbidden, s3_access_denied, unauthorized
from tests.support.servers import refused_port

pytestmark = pytest.mark.integration

HOUSING_KEY = "feature_importance.ocean_proximity_<1H OCEAN"
SECRET = "s3cr3t-token-value"


@pytest.fixture
def quick_retries(monkeypatch):
    """Two quick attempts, and MLflow's own HTTP retries on: a rejection must not use them."""
    monkeypatch.setenv("CI_HELPERS_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("CI_HELPERS_RETRY_WAIT", "0.1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "2")


# --- MLflow: 401/403 -------------------------------------------------------------------------------


@pytest.mark.parametrize(("rejection", "status"), [(unauthorized(), 401), (forbidden(), 403)])
def test_mlflow_rejecting_the_credentials_is_exit_2_naming_the_variables_without_retries(
    mlflow_server, quick_retries, monkeypatch, rejection, status
):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
    with FlakyProxy(mlflow_server.url, reject=rejection) as proxy:
        uri = proxy.url.replace("http://", f"http://ci-user:{SECRET}@")
        started = time.monotonic()
        with pytest.raises(ConfigError) as raised:
            open_run(uri, f"auth-{uuid.uuid4().hex[:8]}", "run", {})
        elapsed = time.monotonic() - started

    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert f"HTTP {status}" in message
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN)" in message
    assert f"http://***@127.0.0.1:{proxy.url.rsplit(':', 1)[1]}" in message  # the endpoint, redacted
    assert SECRET not in message
    assert "\n" not in message
    assert len(proxy.rejected_requests) == 1, proxy.rejected_requests  # not retried
    assert elapsed < 5


def test_the_tracking_probe_says_403_is_a_configuration_error(mlflow_server, quick_retries):
    with FlakyProxy(mlflow_server.url, reject=forbidden()) as proxy, pytest.raises(ConfigError) as raised:
        check_tracking_server(proxy.url)

    assert "rejected the credentials (HTTP 403)" in str(raised.value)
    assert len(proxy.rejected_requests) == 1


# --- the tracking probe ----------------------------------------------------------------------------


def test_the_tracking_probe_passes_for_a_server_that_answers_and_creates_nothing(mlflow_server):
    from mlflow.tracking import MlflowClient

    before = len(MlflowClient(mlflow_server.url).search_experiments())

    check_tracking_server(mlflow_server.url)
    check_tracking_server(mlflow_server.url + "/")

    assert len(MlflowClient(mlflow_server.url).search_experiments()) == before


def test_the_tracking_probe_passes_for_sqlite_without_creating_the_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    check_tracking_server(f"sqlite:///{tmp_path / 'mlflow.db'}")
    check_tracking_server("sqlite:///mlflow.db")

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("htp://mlflow.example:5000", "scheme MLflow does not know (htp:"),
        ("sqlite:/relative.db", "not a valid sqlite URI"),
        ("sqlite://host/x.db", "a sqlite URI has none"),
        ("http:///no-host", "names no host"),
        ("mysqlx://user@db/mlflow", "is not valid"),
        ("uc:http://localhost:8080", "scheme MLflow does not know"),
    ],
)
def test_the_tracking_probe_refuses_a_malformed_uri_with_exit_2(uri, says):
    with pytest.raises(ConfigError) as raised:
        check_tracking_server(uri)

    assert raised.value.exit_code == 2
    assert says in str(raised.value)
    assert "MLFLOW_TRACKING_URI" in str(raised.value)


def test_the_tracking_probe_refuses_a_sqlite_database_in_a_missing_folder(tmp_path):
    with pytest.raises(ConfigError) as raised:
        check_tracking_server(f"sqlite:///{tmp_path / 'no-such-folder' / 'mlflow.db'}")

    assert f"is in a folder that does not exist ({tmp_path / 'no-such-folder'})" in str(raised.value)
    assert not (tmp_path / "no-such-folder").exists()


def test_the_tracking_probe_hides_the_password_in_a_malformed_uri(monkeypatch):
    with pytest.raises(ConfigError) as raised:
        check_tracking_server(f"htp://ci-user:{SECRET}@mlflow.example")

    assert SECRET not in str(raised.value)
    assert "htp://***@mlflow.example" in str(raised.value)


def test_the_tracking_probe_says_exit_3_quickly_when_the_server_is_down():
    uri = f"http://127.0.0.1:{refused_port()}"
    started = time.monotonic()

    with pytest.raises(InfrastructureError) as raised:
        check_tracking_server(uri)

    assert raised.value.exit_code == 3
    assert uri in str(raised.value)
    assert "unreachable" in str(raised.value)
    assert time.monotonic() - started < 10


def test_the_tracking_probe_says_exit_2_for_a_server_that_is_not_mlflow(mlflow_server):
    with (
        FlakyProxy(mlflow_server.url, reject=Rejection(404, b"Not Found")) as proxy,
        pytest.raises(ConfigError) as raised,
    ):
        check_tracking_server(proxy.url)  # answers HTTP, but not MLflow's REST API (a wrong path, another service)

    assert "does not answer as an MLflow tracking server" in str(raised.value)


# --- S3: AccessDenied ------------------------------------------------------------------------------


def test_s3_access_denied_on_pull_push_and_the_remote_checks_is_exit_2_at_once(project, quick_retries, capfd):
    checkout = project.checkout("pr-better")
    with FlakyProxy(project.s3_endpoint, reject=s3_access_denied()) as proxy:
        write_local_remote(checkout, project.remote_url, endpoint=proxy.url)
        endpoint = dvc.remote_endpoint(checkout, REMOTE)
        calls = {
            "pull": lambda: dvc.pull(checkout, ["models/model.pkl"], REMOTE, endpoint),
            "push": lambda: dvc.push(project.dev, ["models/model.pkl"], REMOTE, endpoint),
            "verify_pushed": lambda: verify_pushed(checkout, REMOTE, endpoint, {"models/model.pkl": "0" * 32}),
            "check_remote_answers": lambda: dvc.check_remote_answers(checkout, REMOTE, endpoint),
        }
        write_local_remote(project.dev, project.remote_url, endpoint=proxy.url)
        for name, call in calls.items():
            with pytest.raises(ConfigError) as raised:
                call()
            message = str(raised.value)
            assert raised.value.exit_code == 2, name
            assert f"DVC remote '{REMOTE}' ({project.remote_url} at {proxy.url}) rejected the credentials" in message
            assert f"set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for {proxy.url}" in message
            assert "testing-secret-key" not in message
            assert "\n" not in message

    assert "retrying" not in capfd.readouterr().err  # never retried
    assert not (checkout / "models" / "model.pkl").exists()


# --- the DVC remote probe --------------------------------------------------------------------------


def test_the_remote_probe_passes_for_a_remote_that_answers_even_an_empty_one(project, moto_endpoint):
    endpoint = dvc.remote_endpoint(project.dev, REMOTE)

    dvc.check_remote_answers(project.dev, REMOTE, endpoint)

    write_local_remote(project.dev, f"s3://{project.bucket}/not-pushed-yet")
    dvc.check_remote_answers(project.dev, REMOTE, endpoint)
    write_local_remote(project.dev, f"s3://{project.bucket}")
    dvc.check_remote_answers(project.dev, REMOTE, endpoint)


def test_the_remote_probe_passes_for_a_local_folder_remote_and_creates_nothing(project, tmp_path):
    folder = tmp_path / "local-remote"
    write_local_remote(project.dev, str(folder), name="folder")

    dvc.check_remote_answers(project.dev, "folder", f"DVC remote 'folder' ({folder})")

    assert not folder.exists()


def test_the_remote_probe_says_exit_3_after_retries_when_s3_is_down(project, quick_retries, capfd):
    down = f"http://127.0.0.1:{refused_port()}"
    write_local_remote(project.dev, project.remote_url, endpoint=down)
    endpoint = dvc.remote_endpoint(project.dev, REMOTE)
    started = time.monotonic()

    with pytest.raises(InfrastructureError) as raised:
        dvc.check_remote_answers(project.dev, REMOTE, endpoint)

    assert raised.value.exit_code == 3
    assert down in str(raised.value)
    assert "attempt 2/2" in capfd.readouterr().err
    assert time.monotonic() - started < 60


def test_the_remote_probe_refuses_a_remote_dvc_cannot_use(project, quick_retries, capfd):
    with pytest.raises(ConfigError) as raised:
        dvc.check_remote_answers(project.dev, "nope", "DVC remote 'nope'")

    assert str(raised.value).startswith("DVC cannot use DVC remote 'nope': ")
    assert "retrying" not in capfd.readouterr().err


# --- git: 403, and the push probe ------------------------------------------------------------------


@pytest.fixture
def refusing_git_server(moto_endpoint):
    """An HTTP git remote whose every answer is 403 (git's smart HTTP asks info/refs first)."""
    with FlakyProxy(moto_endpoint, reject=forbidden()) as proxy:
        yield proxy


def test_git_403_on_push_fetch_and_the_push_probe_is_exit_2_at_once(project, refusing_git_server, quick_retries, capfd):
    url = f"http://x-access-token:{SECRET}@{refusing_git_server.url.removeprefix('http://')}/org/repo.git"
    sh(["git", "remote", "add", "web", url], project.dev)
    endpoint = f"git remote 'web' ({url})"
    calls = {
        "probe": lambda: git.check_push_allowed(project.dev, "web", "main"),
        "probe (tag)": lambda: git.check_push_allowed(project.dev, "web", None),
        "push": lambda: git.git(project.dev, "push", "web", "HEAD:refs/heads/main", retry=True, endpoint=endpoint),
        "fetch": lambda: git.git(project.dev, "fetch", "web", "main", retry=True),
    }
    for name, call in calls.items():
        before = len(refusing_git_server.rejected_requests)
        with pytest.raises(ConfigError) as raised:
            call()
        message = str(raised.value)
        assert raised.value.exit_code == 2, name
        assert "git remote 'web' (http://***@127.0.0.1:" in message, name
        assert "rejected the credentials (HTTP 403)" in message, name
        assert "set a token with contents: write (GITHUB_TOKEN / the credential in the remote URL)" in message
        assert SECRET not in message
        assert len(refusing_git_server.rejected_requests) - before == 1, name  # one request: not retried
    assert "retrying" not in capfd.readouterr().err


def test_git_asking_for_credentials_it_has_not_got_is_exit_2_without_a_prompt(project, moto_endpoint, quick_retries):
    with FlakyProxy(moto_endpoint, reject=unauthorized()) as proxy:
        sh(["git", "remote", "add", "web", f"{proxy.url}/org/repo.git"], project.dev)
        started = time.monotonic()
        with pytest.raises(ConfigError) as raised:
            git.check_push_allowed(project.dev, "web", "main")

    assert "rejected the credentials" in str(raised.value)
    assert time.monotonic() - started < 10


def test_the_push_probe_passes_for_a_remote_that_takes_the_push_and_changes_nothing(project):
    before = sh(["git", "for-each-ref"], project.origin).stdout

    git.check_push_allowed(project.dev, "origin", "main")
    git.check_push_allowed(project.dev, "origin", "a-new-branch")
    git.check_push_allowed(project.dev, "origin", None)

    assert sh(["git", "for-each-ref"], project.origin).stdout == before


def test_the_push_probe_accepts_a_remote_that_moved_on_the_real_push_rebases(project):
    other = project.checkout("main", name="other")
    sh(["git", "commit", "-q", "--allow-empty", "-m", "someone else's commit"], other)
    sh(["git", "push", "-q", "origin", "main"], other)

    git.check_push_allowed(project.dev, "origin", "main")


def test_the_push_probe_refuses_an_unknown_remote_and_an_invalid_branch(project):
    with pytest.raises(ConfigError) as raised:
        git.check_push_allowed(project.dev, "nope", "main")
    assert str(raised.value) == (
        "git remote 'nope' is not configured (known: origin); pass an existing one to --git-remote"
    )

    for branch in ("a..b", "HEAD", "-x", "@{-1}", "with space"):
        with pytest.raises(ConfigError) as raised:
            git.check_push_allowed(project.dev, "origin", branch)
        assert f"invalid branch name {branch!r}" in str(raised.value)
        assert raised.value.exit_code == 2


def test_the_push_probe_says_exit_3_after_retries_when_the_remote_is_unreachable(project, quick_retries, capfd):
    sh(["git", "remote", "add", "down", f"http://127.0.0.1:{refused_port()}/org/repo.git"], project.dev)

    with pytest.raises(InfrastructureError) as raised:
        git.check_push_allowed(project.dev, "down", "main")

    assert raised.value.exit_code == 3
    assert "git remote 'down' (http://127.0.0.1:" in str(raised.value)
    assert "attempt 2/2" in capfd.readouterr().err


# --- metric keys MLflow refuses --------------------------------------------------------------------


def test_a_metric_key_mlflow_refuses_is_logged_under_a_safe_key_with_the_mapping(mlflow_server):
    from mlflow.tracking import MlflowClient

    run = open_run(mlflow_server.url, f"keys-{uuid.uuid4().hex[:8]}", "keys", {})
    finish_run(
        run,
        metrics={HOUSING_KEY: 0.125, "r2_score": 0.81},
        params={"model.features[0]": "rooms", "model.depth": 3},
        tags={"mlops.verdict": "passed"},
    )

    client = MlflowClient(mlflow_server.url)
    logged = client.get_run(run.run_id)
    safe = "feature_importance.ocean_proximity__1H OCEAN"
    assert logged.info.status == "FINISHED"
    assert logged.data.metrics == {safe: 0.125, "r2_score": 0.81}
    assert logged.data.params == {"model.features_0_": "rooms", "model.depth": "3"}
    assert json.loads(logged.data.tags["mlops.metric_keys"]) == {safe: HOUSING_KEY}
    assert json.loads(logged.data.tags["mlops.param_keys"]) == {"model.features_0_": "model.features[0]"}
    assert logged.data.tags["mlops.verdict"] == "passed"
    artifacts = {item.path for item in client.list_artifacts(run.run_id)}
    assert {"metric_keys.json", "param_keys.json"} <= artifacts
    path = client.download_artifacts(run.run_id, "metric_keys.json")
    with open(path) as handle:
        assert json.load(handle) == {safe: HOUSING_KEY}


def test_a_run_whose_keys_are_all_fine_gets_no_mapping(mlflow_server):
    from mlflow.tracking import MlflowClient

    run = open_run(mlflow_server.url, f"keys-{uuid.uuid4().hex[:8]}", "keys", {})
    finish_run(run, metrics={"r2_score": 0.81}, params={"model.depth": 3})

    logged = MlflowClient(mlflow_server.url).get_run(run.run_id)
    assert "mlops.metric_keys" not in logged.data.tags
    assert "mlops.param_keys" not in logged.data.tags
    assert MlflowClient(mlflow_server.url).list_artifacts(run.run_id) == []
