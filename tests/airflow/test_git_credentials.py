"""Git credentials from an Airflow Connection (git_conn_id=): read through the Task SDK from an
`AIRFLOW_CONN_<ID>` variable in JSON form, in this process and inside a real task run by
dag.test(), where a token reaches the git smart-HTTP server and never the task's log."""

from __future__ import annotations

import json
import textwrap

import pytest

from ci_helpers.errors import ConfigError
from tests.support.git_http_server import git_http_server
from tests.support.project import sh

pytest.importorskip("airflow.sdk", reason="the airflow extra is installed by scripts/setup.sh")

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def _connection(monkeypatch, conn_id: str, **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "generic", **fields}))


def _credentials(conn_id):
    from ci_helpers.airflow.git_credentials import credentials_from_connection

    return credentials_from_connection(conn_id)


def test_login_and_password_are_https_credentials(monkeypatch):
    _connection(monkeypatch, "git_https", login="ci-bot", password="tok-123456789")
    credentials = _credentials("git_https")
    assert (credentials.username, credentials.password, credentials.private_key) == ("ci-bot", "tok-123456789", None)
    assert "tok-123456789" not in repr(credentials)


def test_a_token_alone_is_enough(monkeypatch):
    _connection(monkeypatch, "git_token", password="tok-abcdefgh")
    credentials = _credentials("git_token")
    assert (credentials.username, credentials.password) == (None, "tok-abcdefgh")


def test_extra_private_key_and_known_hosts_are_ssh_credentials(monkeypatch):
    known = "[git.example.invalid]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE"
    _connection(monkeypatch, "git_ssh", extra={"private_key": KEY, "known_hosts": known})
    credentials = _credentials("git_ssh")
    assert (credentials.private_key, credentials.known_hosts, credentials.password) == (KEY, known, None)


def test_a_key_pasted_on_one_line_gets_its_newlines_back(monkeypatch):
    _connection(monkeypatch, "git_ssh_flat", extra={"private_key": KEY.replace("\n", "\\n")})
    assert _credentials("git_ssh_flat").private_key == KEY


def test_extra_key_file_is_read_from_the_worker(monkeypatch, tmp_path):
    key_file = tmp_path / "id_ed25519"
    key_file.write_text(KEY)
    _connection(monkeypatch, "git_key_file", login="git", extra={"key_file": str(key_file)})
    assert _credentials("git_key_file").private_key == KEY


def test_a_key_file_missing_on_the_worker_is_one_line(monkeypatch, tmp_path):
    missing = tmp_path / "no-such-key"
    _connection(monkeypatch, "git_key_gone", extra={"key_file": str(missing)})
    with pytest.raises(ConfigError) as raised:
        _credentials("git_key_gone")
    message = str(raised.value)
    assert "\n" not in message
    assert f"key_file {missing} cannot be read on this worker" in message
    assert "'git_key_gone'" in message


def test_no_conn_id_means_the_workers_own_credentials():
    assert _credentials(None) is None
    assert _credentials("") is None


def test_an_unknown_conn_id_is_one_line_naming_it():
    with pytest.raises(ConfigError) as raised:
        _credentials("no_such_git_conn")
    message = str(raised.value)
    assert "\n" not in message
    assert "git_conn_id='no_such_git_conn': no Airflow Connection has that id" in message
    assert "fix git_conn_id=" in message


def test_a_connection_without_credentials_is_one_line(monkeypatch):
    _connection(monkeypatch, "git_empty", login="only-a-login")
    with pytest.raises(ConfigError) as raised:
        _credentials("git_empty")
    assert "Connection 'git_empty' (git_conn_id=) holds no git credentials" in str(raised.value)


# Inside a real task: dag.test() in a fresh process, the Connection in its environment.

PROBE_DAG = textwrap.dedent("""
    import json, os
    from datetime import datetime, timedelta
    from airflow.sdk import dag, task

    @dag(dag_id="git_credentials_probe", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         default_args={"retries": 2, "retry_delay": timedelta(seconds=1)})
    def probe():
        @task
        def checkout():
            from ci_helpers.adapters.git_checkout import RepoSource, fresh_checkout, pin_commit
            from ci_helpers.airflow.exceptions import as_airflow_errors
            from ci_helpers.airflow.git_credentials import credentials_from_connection

            with as_airflow_errors():
                credentials = credentials_from_connection("git_probe")
                source = RepoSource(os.environ["PROBE_REPO_URL"], "main")
                commit = pin_commit(source, credentials)
                with fresh_checkout(source, commit, credentials) as project:
                    found = (project / "dvc.yaml").is_file()
            with open(os.environ["PROBE_RECORD"], "w") as handle:
                json.dump({"commit": commit, "found": found}, handle)

        checkout()

    probe_dag = probe()
""")


@pytest.fixture(scope="module")
def served_repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("git-probe")
    with git_http_server(base / "repos") as server:
        bare = server.bare_repo("probe")
        work = base / "work"
        work.mkdir()
        sh(["git", "init", "-q", "-b", "main"], work)
        sh(["dvc", "init", "-q"], work)
        (work / "dvc.yaml").write_text("stages:\n  hello:\n    cmd: echo hello\n")
        sh(["git", "add", "-A"], work)
        sh(["git", "commit", "-qm", "probe"], work)
        sh(["git", "push", "-q", str(bare), "main"], work)
        yield server, sh(["git", "rev-parse", "HEAD"], work).stdout.strip()


def _probe(airflow_env, served_repo, tmp_path, password: str) -> tuple[dict, dict | None]:
    from tests.airflow.conftest import run_dag

    server, _ = served_repo
    record = tmp_path / "record.json"
    connection = json.dumps({"conn_type": "generic", "login": server.username, "password": password})
    result = run_dag(
        airflow_env,
        PROBE_DAG,
        "git_credentials_probe",
        {
            "AIRFLOW_CONN_GIT_PROBE": connection,
            "PROBE_REPO_URL": server.repo_url("probe"),
            "PROBE_RECORD": str(record),
        },
    )
    return result, json.loads(record.read_text()) if record.exists() else None


def test_a_task_authenticates_with_the_connection(airflow_env, served_repo, tmp_path):
    server, head = served_repo
    result, record = _probe(airflow_env, served_repo, tmp_path, server.token)
    assert result["tasks"] == {"checkout": "success"}, result["log"][-3000:]
    assert record == {"commit": head, "found": True}
    assert server.token not in result["log"]


def test_a_rejected_token_fails_the_task_once_and_is_never_printed(airflow_env, served_repo, tmp_path):
    server, _ = served_repo
    wrong = "wrong-token-" + "9" * 24
    result, record = _probe(airflow_env, served_repo, tmp_path, wrong)
    assert record is None
    assert result["tasks"] == {"checkout": "failed"}
    assert result["tries"]["checkout"] == 1  # a config error is not retried, although retries=2
    assert "MlopsConfigError" in result["log"]
    assert f"git repository {server.repo_url('probe')} rejected the credentials" in result["log"]
    assert wrong not in result["log"]
