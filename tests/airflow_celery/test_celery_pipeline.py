"""`mlops_pipeline_dag(repo_url=...)` on a real CeleryExecutor deployment: two `airflow celery
worker`s (w1, w2) that share no disk, each task routed so that one DAG run spans both; what passes
between tasks goes through XCom, the DVC remote (moto S3), MLflow and the git repository only.

The scenarios of both project shapes run at the same time, in phases (module fixtures), so that
the whole module stays within a few minutes:

1. first runs: the example project (housing: the lock committed back), DVC's get-started shape (the
   lock kept on the MLflow run), the example project with an imported file, two runs of one DAG at
   once (max_active_runs=2) through a git server that wants a token, and a run with a wrong token;
2. second runs, nothing changed: no training;
3. a worse model pushed (the alert, the run failed), and the imported file's source changed;
4. the imports project once more, its source as the third run saw it.
"""

from __future__ import annotations

import base64
import json
import pickle
import secrets
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.airflow_repos import (
    GET_STARTED_SETTINGS,
    HOUSING_SETTINGS,
    RegistryView,
    RepoProject,
    build_get_started_origin,
    copy_repo_project,
    dvc_pull,
    lock_record_of_run,
)
from tests.support.git_http_server import git_http_server
from tests.support.project import lock_out_md5, set_train_params, sh

from .cluster import CeleryCluster, DagRunResult
from .conftest import requires_celery_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow, requires_celery_cluster]

# The settings are a literal in the DAG file: the workers and the dag-processor live for the whole
# session, so a DAG file cannot read a test's environment.
DAG_SOURCE = textwrap.dedent("""
    import json
    from datetime import timedelta
    from ci_helpers.airflow import mlops_pipeline_dag

    CONFIG = json.loads(SETTINGS_JSON)
    ALERTS = CONFIG.pop("alerts")

    def record_alert(failing_checks, context):
        with open(ALERTS, "a") as handle:
            handle.write(json.dumps({"run_id": context["run_id"], "failing": failing_checks}) + "\\n")

    dag = mlops_pipeline_dag(
        CONFIG.pop("dag_id"), alert=record_alert, retry_delay=timedelta(seconds=1), schedule=None, **CONFIG
    )
""")

# One run, both workers: training on one, the gate on the other, promotion back on the first. The
# second route is the mirror image, so that the first tasks of runs at once share the slots.
ROUTE_W1 = {"run_dvc_pipeline": "w1", "validate": "w2", "promote": "w1", "alert": "w2"}
ROUTE_W2 = {"run_dvc_pipeline": "w2", "validate": "w1", "promote": "w2", "alert": "w1"}

HOUSING, GET_STARTED = HOUSING_SETTINGS, GET_STARTED_SETTINGS

GIT_CONN = "git_http"  # the right token
WRONG_GIT_CONN = "git_http_wrong"
GIT_USER = "ci-bot"
GIT_TOKEN = f"tok-{secrets.token_hex(16)}"
WRONG_TOKEN = f"wrong-{secrets.token_hex(16)}"
RUN_TIMEOUT = 420


@dataclass
class Scenario:
    """One DAG on the cluster: its repository, its own model name and experiment, its runs' results."""

    cluster: CeleryCluster
    dag_id: str
    repo: RepoProject
    registry: RegistryView
    alerts: Path
    settings: dict
    results: dict[str, DagRunResult] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        cluster: CeleryCluster,
        dag_id: str,
        repo: RepoProject,
        tracking_uri: str,
        settings: dict,
        route: dict,
        repo_url: str | None = None,
    ) -> Scenario:
        registry = RegistryView(tracking_uri, f"celery-{uuid.uuid4().hex[:8]}", f"model-{uuid.uuid4().hex[:8]}")
        alerts = repo.origin.parent / "alerts.jsonl"
        config = {
            "dag_id": dag_id,
            "repo_url": repo_url or repo.url,
            "model_name": registry.model_name,
            "experiment": registry.experiment,
            "tracking_uri": tracking_uri,
            "task_queues": route,
            "alerts": str(alerts),
            **settings,
        }
        source = DAG_SOURCE.replace("SETTINGS_JSON", repr(json.dumps(config)))
        assert cluster.put_dag(dag_id, source) == [dag_id]
        return cls(cluster, dag_id, repo, registry, alerts, config)

    def trigger(self) -> str:
        return self.cluster.trigger(self.dag_id)

    def wait(self, run_id: str, name: str) -> DagRunResult:
        self.results[name] = self.cluster.wait(self.dag_id, run_id, timeout=RUN_TIMEOUT)
        return self.results[name]

    def xcom(self, name: str, task_id: str) -> dict:
        return self.cluster.xcom(self.dag_id, self.results[name].run_id, task_id)

    def alerts_sent(self) -> list[dict]:
        return [json.loads(line) for line in self.alerts.read_text().splitlines()] if self.alerts.exists() else []


def _states(result: DagRunResult) -> dict[str, str | None]:
    return {key: task.state for key, task in result.tasks.items()}


def _explain(result: DagRunResult) -> str:
    """The run's task states and the end of each task's log, for an assertion's message."""
    parts = [f"{result.dag_id} {result.run_id}: {result.state} {_states(result)}"]
    for key, task in result.tasks.items():
        if task.log:
            parts.append(f"--- {key} (try {task.try_number} on {task.worker}):\n{task.log[-3000:]}")
    return "\n".join(parts)


def _logs(result: DagRunResult) -> str:
    return "\n".join(log for task in result.tasks.values() for log in task.logs)


def _wait_until_running(scenario: Scenario, run_ids: list[str], timeout: float = 120) -> None:
    """Until the first task of every one of these runs is running (or has ended)."""
    deadline = time.monotonic() + timeout
    waiting = list(run_ids)
    while waiting:
        waiting = [
            run_id
            for run_id in waiting
            if getattr(scenario.cluster.task_runs(scenario.dag_id, run_id).get("run_dvc_pipeline"), "state", None)
            not in ("running", "success", "failed")
        ]
        assert time.monotonic() < deadline, f"{scenario.dag_id}: {waiting} not started in {timeout:.0f}s"
        time.sleep(0.5)


# --- the cluster and the repositories -----------------------------------------------------------


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    """A git server that wants GIT_USER's GIT_TOKEN (HTTP Basic); started before the cluster, whose
    workers get the Connections."""
    with git_http_server(tmp_path_factory.mktemp("git-served") / "repos", GIT_USER, GIT_TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def celery_worker_env(git_server) -> dict[str, str]:
    """The git Connections, the way Airflow users keep them on workers: AIRFLOW_CONN_<ID> in JSON."""

    def connection(password: str) -> str:
        return json.dumps({"conn_type": "generic", "login": GIT_USER, "password": password})

    return {
        f"AIRFLOW_CONN_{GIT_CONN.upper()}": connection(GIT_TOKEN),
        f"AIRFLOW_CONN_{WRONG_GIT_CONN.upper()}": connection(WRONG_TOKEN),
    }


@pytest.fixture(scope="session")
def get_started_origin(moto_endpoint, tmp_path_factory):
    from tests.conftest import TEMPLATE_BUCKET

    return build_get_started_origin(tmp_path_factory.mktemp("get-started-origin"), moto_endpoint, TEMPLATE_BUCKET)


@dataclass
class Scenarios:
    housing: Scenario
    get_started: Scenario
    imports: Scenario
    import_source: Path  # the file the imports project's `dvc import-url` reads
    at_once: Scenario  # max_active_runs=2, through the git server with the Connection's token
    wrong_token: Scenario
    worse_head: str = ""  # main after the worse params were pushed


@pytest.fixture(scope="module")
def scenarios(celery_cluster, template, get_started_origin, moto_endpoint, mlflow_server, git_server, tmp_path_factory):
    from tests.conftest import TEMPLATE_BUCKET

    base = tmp_path_factory.mktemp("celery-pipeline")
    uri = mlflow_server.url

    def housing_copy(name: str) -> RepoProject:
        return copy_repo_project(template / "origin.git", TEMPLATE_BUCKET, moto_endpoint, base / name)

    import_source = base / "upstream" / "extra.csv"
    import_source.parent.mkdir()
    import_source.write_text("x,y\n1,2\n")
    imports_repo = housing_copy("imports")
    imports_repo.push_change(
        "import upstream data", lambda project: sh(["dvc", "import-url", str(import_source), "data/extra.csv"], project)
    )
    # served over HTTP: the origin inside the git server's folder
    served = copy_repo_project(get_started_origin, TEMPLATE_BUCKET, moto_endpoint, git_server.root / "get-started")
    served_url = f"{git_server.url}/get-started/origin.git"
    get_started_settings = {**GET_STARTED, "retries": 2}
    return Scenarios(
        housing=Scenario.create(celery_cluster, "celery_housing", housing_copy("housing"), uri, HOUSING, ROUTE_W1),
        get_started=Scenario.create(
            celery_cluster,
            "celery_get_started",
            copy_repo_project(get_started_origin, TEMPLATE_BUCKET, moto_endpoint, base / "get_started"),
            uri,
            GET_STARTED,
            ROUTE_W2,
        ),
        imports=Scenario.create(
            celery_cluster, "celery_imports", imports_repo, uri, {**HOUSING, "update_imports": True}, ROUTE_W2
        ),
        import_source=import_source,
        at_once=Scenario.create(
            celery_cluster,
            "celery_at_once",
            served,
            uri,
            {**get_started_settings, "max_active_runs": 2, "git_conn_id": GIT_CONN},
            ROUTE_W1,
            repo_url=served_url,
        ),
        wrong_token=Scenario.create(
            celery_cluster,
            "celery_wrong_token",
            served,
            uri,
            {**get_started_settings, "git_conn_id": WRONG_GIT_CONN},
            ROUTE_W2,
            repo_url=served_url,
        ),
    )


# --- the three phases: every scenario's runs triggered together, then waited for ---------------


@pytest.fixture(scope="module")
def first_runs(scenarios: Scenarios) -> Scenarios:
    s = scenarios
    # the two runs at once take w1's two slots before any other run can (w1 also builds housing)
    at_once = [(s.at_once, s.at_once.trigger(), "first"), (s.at_once, s.at_once.trigger(), "second")]
    _wait_until_running(s.at_once, [run_id for _, run_id, _ in at_once])
    triggered = [
        *at_once,
        (s.housing, s.housing.trigger(), "first"),
        (s.get_started, s.get_started.trigger(), "first"),
        (s.imports, s.imports.trigger(), "first"),
        (s.wrong_token, s.wrong_token.trigger(), "first"),
    ]
    for scenario, run_id, name in triggered:
        scenario.wait(run_id, name)
    return s


@pytest.fixture(scope="module")
def second_runs(first_runs: Scenarios) -> Scenarios:
    s = first_runs
    triggered = [(each, each.trigger()) for each in (s.housing, s.get_started, s.imports)]
    for scenario, run_id in triggered:
        scenario.wait(run_id, "unchanged")
    return s


@pytest.fixture(scope="module")
def third_runs(second_runs: Scenarios) -> Scenarios:
    s = second_runs
    s.worse_head = s.housing.repo.push_change(
        "worse params", lambda p: set_train_params(p, n_estimators=8, max_depth=1), dvc_push=False
    )
    s.import_source.write_text("x,y\n1,2\n3,4\n")
    triggered = [(s.housing, s.housing.trigger(), "worse"), (s.imports, s.imports.trigger(), "source changed")]
    for scenario, run_id, name in triggered:
        scenario.wait(run_id, name)
    return s


@pytest.fixture(scope="module")
def fourth_run(third_runs: Scenarios) -> Scenarios:
    """The imports project once more, its source as the third run saw it."""
    third_runs.imports.wait(third_runs.imports.trigger(), "source unchanged again")
    return third_runs


# --- first runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["housing", "get_started"])
def test_one_run_spans_both_workers(first_runs, shape):
    scenario: Scenario = getattr(first_runs, shape)
    result = scenario.results["first"]
    assert result.state == "success", _explain(result)
    route = scenario.settings["task_queues"]
    for task_id in ("run_dvc_pipeline", "validate", "promote"):
        task = result.tasks[task_id]
        worker = first_runs.housing.cluster.workers[route[task_id]]
        assert (task.state, task.queue, task.worker) == ("success", worker.name, worker.name), _explain(result)
        assert task.hostname == worker.celery_hostname
    assert {result.tasks[t].worker for t in ("run_dvc_pipeline", "validate")} == {"w1", "w2"}
    # what the tasks themselves say: Airflow's hostname_callable, in their XCom
    for task_id in ("run_dvc_pipeline", "promote"):
        assert scenario.xcom("first", task_id)["worker"] == result.tasks[task_id].hostname


def test_housing_promotes_the_model_whose_out_the_committed_lock_names(first_runs, tmp_path):
    scenario = first_runs.housing
    result = scenario.results["first"]
    assert result.state == "success", _explain(result)
    assert _states(result) == {
        "run_dvc_pipeline": "success",
        "validate": "success",
        "promote": "success",
        "alert": "skipped",
    }
    registry = scenario.registry
    assert registry.versions() == ["1"]
    assert registry.alias("production") == "1"
    (run,) = registry.runs()
    assert "train" in run.data.tags["mlops.stages_ran"]
    version = registry.client().get_model_version(registry.model_name, "1")
    assert version.run_id == run.info.run_id
    assert version.tags["mlops.airflow_dag"] == "celery_housing"
    assert version.tags["mlops.airflow_run_id"] == result.run_id

    # the lock committed back ([skip ci]), and a fresh clone pulls every out it names
    lock_commit = version.tags["mlops.lock_commit"]
    assert lock_commit == scenario.xcom("first", "promote")["lock_commit"]  # promote commits it, after the gate
    pinned = version.tags["mlops.git_commit"]
    if lock_commit != pinned:  # the retrained lock differed from the committed one
        assert "[skip ci]" in scenario.repo.log(lock_commit)[0]
    clone = scenario.repo.fresh_clone(tmp_path / "clone", lock_commit)
    dvc_pull(clone)
    assert sh(["dvc", "status"], clone).stdout.strip().endswith("Data and pipelines are up to date.")
    model_md5 = lock_out_md5((clone / "dvc.lock").read_text(), "models/model.pkl")
    assert version.tags["mlops.ci_md5.models/model.pkl"] == model_md5
    # the registered model is that out: the same predictions on the test features
    import mlflow.sklearn
    import pandas

    with (clone / "models" / "model.pkl").open("rb") as handle:
        pulled = pickle.load(handle)
    mlflow.set_tracking_uri(registry.tracking_uri)
    registered = mlflow.sklearn.load_model(f"models:/{registry.model_name}/1")
    features = pandas.read_csv(clone / "data" / "features" / "test.csv").drop(columns=["median_house_value"])
    assert list(registered.predict(features)) == list(pulled.predict(features))


def test_get_started_promotes_the_dvc_remotes_model_at_the_hashes_on_the_run(first_runs, tmp_path):
    scenario = first_runs.get_started
    result = scenario.results["first"]
    assert result.state == "success", _explain(result)
    assert result.tasks["promote"].state == "success"
    registry = scenario.registry
    assert registry.alias("production") == "1"
    (run,) = registry.runs()
    pinned = scenario.xcom("first", "run_dvc_pipeline")["commit"]
    assert scenario.repo.head() == pinned  # commit_lock off: the branch is as it was
    record = lock_record_of_run(registry.client(), run.info.run_id, tmp_path)
    assert record["commit"] == pinned
    clone = scenario.repo.fresh_clone(tmp_path / "clone", pinned)
    for path, text in record["lockfiles"].items():
        (clone / path).write_text(text)
    dvc_pull(clone)
    assert sh(["dvc", "status"], clone).stdout.strip().endswith("Data and pipelines are up to date.")
    version = registry.client().get_model_version(registry.model_name, "1")
    assert version.tags["mlops.model_path"] == "models/model.json"
    import mlflow.artifacts

    served = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{registry.model_name}/1",
            dst_path=str(tmp_path / "served"),
            tracking_uri=registry.tracking_uri,
        )
    )
    (model_file,) = list(served.rglob("model.json"))
    assert model_file.read_bytes() == (clone / "models" / "model.json").read_bytes()


def test_two_runs_at_once_register_one_version(first_runs):
    scenario = first_runs.at_once
    first, second = scenario.results["first"], scenario.results["second"]
    for result in (first, second):
        assert result.state == "success", _explain(result)
        assert result.tasks["promote"].state == "success", _explain(result)
    registry = scenario.registry
    assert len(registry.runs()) == 2  # both built: neither saw a promoted version of these inputs
    assert registry.versions() == ["1"]  # the same outputs: one version
    assert registry.alias("production") == "1"
    promoted = [scenario.xcom(name, "promote") for name in ("first", "second")]
    assert sorted(p["reused"] for p in promoted) == [False, True], promoted
    assert {p["version"] for p in promoted} == {"1"}


def test_git_credentials_come_from_the_connection_and_are_never_printed(first_runs, git_server):
    at_once, wrong = first_runs.at_once, first_runs.wrong_token
    for name in ("first", "second"):
        result = at_once.results[name]
        assert result.state == "success", _explain(result)
        assert GIT_TOKEN not in _logs(result)
        assert GIT_TOKEN not in json.dumps([at_once.xcom(name, t) for t in ("run_dvc_pipeline", "promote")])
    assert any(r.status == 200 and r.authorization for r in git_server.requests)  # it did ask for the token

    result = wrong.results["first"]
    assert result.state == "failed", _explain(result)
    task = result.tasks["run_dvc_pipeline"]
    assert (task.state, task.try_number) == ("failed", 1), _explain(result)  # retries=2: never retried
    assert "rejected the credentials" in task.log, task.log[-3000:]
    assert WRONG_TOKEN not in _logs(result)
    # the wrong token was sent (and refused), not left out
    wrong_header = "Basic " + base64.b64encode(f"{GIT_USER}:{WRONG_TOKEN}".encode()).decode()
    assert any(r.status == 401 and r.authorization == wrong_header for r in git_server.requests)
    assert wrong.registry.runs() == []
    for worker in first_runs.housing.cluster.workers:
        log = first_runs.housing.cluster.processes[worker].log.read_text(errors="replace")
        assert GIT_TOKEN not in log
        assert WRONG_TOKEN not in log


# --- second runs: nothing changed -------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["housing", "get_started", "imports"])
def test_an_unchanged_second_run_skips_training(second_runs, shape):
    scenario: Scenario = getattr(second_runs, shape)
    result = scenario.results["unchanged"]
    assert result.state == "success", _explain(result)
    assert "nothing changed since v1" in result.tasks["run_dvc_pipeline"].log, _explain(result)
    assert result.tasks["promote"].state == "skipped"
    assert len(scenario.registry.runs()) == 1  # no new MLflow run
    assert scenario.registry.versions() == ["1"]


# --- third runs: a worse model, a changed import source ------------------------------------------------


def test_a_worse_model_alerts_and_fails_the_run(third_runs):
    scenario = third_runs.housing
    result = scenario.results["worse"]
    assert result.state == "failed", _explain(result)
    assert _states(result) == {
        "run_dvc_pipeline": "success",
        "validate": "success",
        "promote": "skipped",
        "alert": "failed",
    }
    (alert,) = scenario.alerts_sent()
    assert alert["run_id"] == result.run_id
    assert [check["metric"] for check in alert["failing"]] == ["metrics.r2_score"]
    assert scenario.registry.alias("production") == "1"
    assert scenario.registry.versions() == ["1"]
    assert len(scenario.registry.runs()) == 2
    assert scenario.repo.head() == third_runs.worse_head  # a rejected model's lock never reaches the branch


def test_a_changed_import_source_retrains(third_runs):
    scenario = third_runs.imports
    result = scenario.results["source changed"]
    assert result.state == "success", _explain(result)
    assert "nothing changed" not in result.tasks["run_dvc_pipeline"].log
    assert len(scenario.registry.runs()) == 2  # trained again
    assert result.tasks["promote"].state == "success"


def test_after_a_changed_source_rebuilt_the_same_model_the_next_run_is_unchanged(fourth_run):
    scenario = fourth_run.imports
    result = scenario.results["source unchanged again"]
    assert result.state == "success", _explain(result)
    assert "nothing changed since v1" in result.tasks["run_dvc_pipeline"].log
    assert len(scenario.registry.runs()) == 2  # no third training


def test_no_checkout_is_left_on_the_workers(fourth_run):
    """After every run: each worker's TMPDIR holds nothing but the Celery pool's own multiprocessing folder."""
    for name, worker in fourth_run.housing.cluster.workers.items():
        left = sorted(path.name for path in worker.tmp.iterdir() if not path.name.startswith("pymp-"))
        assert left == [], name
