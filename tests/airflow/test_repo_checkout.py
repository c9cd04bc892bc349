"""`repo_url`: every task works in a fresh checkout of the commit the first task pinned, removed when
it ends; what passes between tasks goes through XCom, the DVC remote (moto S3) and MLflow only.

Real Airflow (dag.test(), a fresh process per DAG run), real git (a bare repository is the only way
in), real DVC and the session's mlflow server. Each task gets a new, empty temporary root (the
DAG's pre_execute hook), as a worker that never saw the project; after each task the test records
what it left there (nothing), and deletes the root: the next task cannot use it."""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.support.airflow_repos import (
    GET_STARTED_SETTINGS,
    HOUSING_SETTINGS,
    RepoProject,
    build_get_started_origin,
    copy_repo_project,
    dvc_pull,
    lock_record_of_run,
)
from tests.support.project import lock_out_md5, set_train_params, sh

from .conftest import MlflowView, run_dag

pytestmark = pytest.mark.integration

REPO_DAG = textwrap.dedent("""
    import json, os, shutil, tempfile
    from datetime import timedelta
    from ci_helpers.airflow import mlops_pipeline_dag

    CONFIG = json.loads(os.environ["MLOPS_DAG_CONFIG"])
    RECORDS = CONFIG.pop("records")

    def _record(name, payload):
        with open(os.path.join(RECORDS, name), "a") as handle:
            handle.write(json.dumps(payload) + "\\n")

    def record_alert(failing_checks, context):
        _record("alerts.jsonl", {"failing": failing_checks, "report": context["report"]})

    def new_worker(context):
        # a worker that never saw the project: a new, empty temporary root for this task alone
        root = tempfile.mkdtemp(prefix=context["ti"].task_id + "-", dir=os.path.join(RECORDS, "workers"))
        os.environ["TMPDIR"] = root
        tempfile.tempdir = None

    def worker_vanishes(context, result=None):
        root = os.environ["TMPDIR"]
        _record("tasks.jsonl", {"task": context["ti"].task_id, "root": root, "left": sorted(os.listdir(root))})
        shutil.rmtree(root)

    dag = mlops_pipeline_dag(
        CONFIG.pop("dag_id"), alert=record_alert, retry_delay=timedelta(seconds=1), schedule=None,
        default_args={"pre_execute": new_worker, "post_execute": worker_vanishes}, **CONFIG,
    )
""")


@pytest.fixture(scope="session")
def get_started_origin(moto_endpoint, tmp_path_factory):
    from tests.conftest import TEMPLATE_BUCKET

    return build_get_started_origin(tmp_path_factory.mktemp("get-started-origin"), moto_endpoint, TEMPLATE_BUCKET)


class RepoScenario(MlflowView):
    """One test's repository, bucket, model name and experiment, and its DAG runs."""

    def __init__(self, airflow_env: dict, repo: RepoProject, tracking_uri: str, tmp_path: Path) -> None:
        self.airflow_env, self.repo, self.tracking_uri = airflow_env, repo, tracking_uri
        self.records = tmp_path / "records"
        (self.records / "workers").mkdir(parents=True)
        self.model_name = f"model-{uuid.uuid4().hex[:8]}"
        self.experiment = f"airflow-{uuid.uuid4().hex[:8]}"

    def run(self, dag_id: str, **config: object) -> dict:
        settings = {
            "dag_id": dag_id,
            "repo_url": self.repo.url,
            "model_name": self.model_name,
            "experiment": self.experiment,
            "tracking_uri": self.tracking_uri,
            "records": str(self.records),
            **config,
        }
        return run_dag(self.airflow_env, REPO_DAG, dag_id, {"MLOPS_DAG_CONFIG": json.dumps(settings)})

    def assert_no_checkout_left(self) -> None:
        """Every task's temporary root was empty when it ended, and no failed task left one behind."""
        for task in self.records_of("tasks.jsonl"):
            assert task["left"] == [], task
        for root in (self.records / "workers").iterdir():
            assert list(root.iterdir()) == [], f"{root.name} left {sorted(p.name for p in root.iterdir())}"


SETTINGS = {"housing": HOUSING_SETTINGS, "get_started": GET_STARTED_SETTINGS}


@pytest.fixture
def housing_repo(template, moto_endpoint, tmp_path) -> RepoProject:
    from tests.conftest import TEMPLATE_BUCKET

    return copy_repo_project(template / "origin.git", TEMPLATE_BUCKET, moto_endpoint, tmp_path / "housing")


@pytest.fixture
def get_started_repo(get_started_origin, moto_endpoint, tmp_path) -> RepoProject:
    from tests.conftest import TEMPLATE_BUCKET

    return copy_repo_project(get_started_origin, TEMPLATE_BUCKET, moto_endpoint, tmp_path / "get_started")


def test_housing_from_the_repository_promotes_skips_then_alerts(housing_repo, airflow_env, mlflow_server, tmp_path):
    scenario = RepoScenario(airflow_env, housing_repo, mlflow_server.url, tmp_path)
    pinned = housing_repo.head()

    first = scenario.run("housing_repo", **SETTINGS["housing"])

    assert first["state"].endswith("success"), first["log"][-6000:]
    assert first["tasks"]["promote"].endswith("success")
    assert scenario.versions() == ["1"]
    assert scenario.alias("production") == "1"
    (run,) = scenario.runs()
    assert run.data.tags["mlops.git_commit"] == pinned
    assert "train" in run.data.tags["mlops.stages_ran"]
    version = scenario.client().get_model_version(scenario.model_name, "1")
    assert version.run_id == run.info.run_id  # the model the forced training logged
    assert version.tags["mlops.git_commit"] == pinned
    assert version.tags["mlops.airflow_dag"] == "housing_repo"
    assert version.tags["mlops.airflow_run_id"]
    assert version.tags["mlops.inputs_sha256"] == run.data.tags["mlops.inputs_sha256"]
    scenario.assert_no_checkout_left()

    # the lock committed back to main ([skip ci], on top of the pinned commit), and a fresh clone
    # pulls every out it names from the DVC remote
    lock_commit = version.tags.get("mlops.lock_commit")
    assert lock_commit == housing_repo.head()
    if lock_commit != pinned:
        assert "[skip ci]" in housing_repo.log()[0]
    clone = housing_repo.fresh_clone(tmp_path / "clone")
    dvc_pull(clone)
    model_md5 = lock_out_md5((clone / "dvc.lock").read_text(), "models/model.pkl")
    assert version.tags["mlops.ci_md5.models/model.pkl"] == model_md5
    assert sh(["dvc", "status"], clone).stdout.strip().endswith("Data and pipelines are up to date.")

    # a second scheduled run on new workers: nothing changed, nothing trained or registered
    second = scenario.run("housing_repo", **SETTINGS["housing"])

    assert second["state"].endswith("success"), second["log"][-6000:]
    assert second["tasks"]["promote"].endswith("skipped")
    assert "nothing changed since v1" in second["log"]
    assert len(scenario.runs()) == 1
    assert scenario.versions() == ["1"]
    scenario.assert_no_checkout_left()

    # a worse model pushed to main: trained, gated, the alert, the DAG run failed; the alias stays
    housing_repo.push_change("worse params", lambda p: set_train_params(p, n_estimators=8, max_depth=1), dvc_push=False)
    worse = scenario.run("housing_repo", **SETTINGS["housing"])

    assert worse["state"].endswith("failed"), worse["log"][-6000:]
    assert worse["tasks"]["alert"].endswith("failed")
    assert worse["tasks"]["promote"].endswith("skipped")
    assert len(scenario.records_of("alerts.jsonl")) == 1
    assert scenario.alias("production") == "1"
    assert scenario.versions() == ["1"]
    assert len(scenario.runs()) == 2
    scenario.assert_no_checkout_left()


def test_get_started_from_the_repository_keeps_the_lock_on_the_run(
    get_started_repo, airflow_env, mlflow_server, tmp_path
):
    scenario = RepoScenario(airflow_env, get_started_repo, mlflow_server.url, tmp_path)
    pinned = get_started_repo.head()

    first = scenario.run("get_started_repo", **SETTINGS["get_started"])

    assert first["state"].endswith("success"), first["log"][-6000:]
    assert scenario.alias("production") == "1"
    assert get_started_repo.head() == pinned  # commit_lock off: the branch is as it was
    (run,) = scenario.runs()
    record = lock_record_of_run(scenario.client(), run.info.run_id, tmp_path)
    assert record["commit"] == pinned
    assert "dvc.lock" in record["lockfiles"]
    # the registered model is the DVC remote's out at the lock's hash
    clone = get_started_repo.fresh_clone(tmp_path / "clone", pinned)
    for path, text in record["lockfiles"].items():
        (clone / path).write_text(text)
    dvc_pull(clone, "models/model.json")
    served = Path(scenario.client().download_artifacts(run.info.run_id, "", str(tmp_path / "served")))
    (model_file,) = list(served.rglob("model.json"))
    assert model_file.read_bytes() == (clone / "models" / "model.json").read_bytes()
    version = scenario.client().get_model_version(scenario.model_name, "1")
    assert version.tags["mlops.model_path"] == "models/model.json"
    scenario.assert_no_checkout_left()

    second = scenario.run("get_started_repo", **SETTINGS["get_started"])

    assert second["state"].endswith("success"), second["log"][-6000:]
    assert "nothing changed since v1" in second["log"]
    assert len(scenario.runs()) == 1


def test_a_changed_import_source_retrains(housing_repo, airflow_env, mlflow_server, tmp_path):
    """`update_imports`: the nightly run picks up new upstream data; an unchanged source stays unchanged."""
    source = tmp_path / "upstream" / "extra.csv"
    source.parent.mkdir()
    source.write_text("x,y\n1,2\n")

    def add_import(project: Path) -> None:
        sh(["dvc", "import-url", str(source), "data/extra.csv"], project)

    housing_repo.push_change("import upstream data", add_import)
    scenario = RepoScenario(airflow_env, housing_repo, mlflow_server.url, tmp_path)
    settings = {**SETTINGS["housing"], "update_imports": True}

    first = scenario.run("imports", **settings)
    assert first["state"].endswith("success"), first["log"][-6000:]
    assert len(scenario.runs()) == 1

    unchanged = scenario.run("imports", **settings)
    assert unchanged["state"].endswith("success"), unchanged["log"][-6000:]
    assert "nothing changed since v1" in unchanged["log"]
    assert len(scenario.runs()) == 1

    source.write_text("x,y\n1,2\n3,4\n")
    changed = scenario.run("imports", **settings)
    assert changed["state"].endswith("success"), changed["log"][-6000:]
    assert len(scenario.runs()) == 2  # trained again
    assert "nothing changed" not in changed["log"]

    # the new source's inputs are now behind the alias (the same outputs: v1 again)
    again = scenario.run("imports", **settings)
    assert again["state"].endswith("success"), again["log"][-6000:]
    assert "nothing changed since v" in again["log"]
    assert len(scenario.runs()) == 2
    scenario.assert_no_checkout_left()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"repo_url": "http://127.0.0.1:9/nothing.git"}, "127.0.0.1:9"),
        ({"branch": "mian"}, "branch 'mian'"),
        ({"subdir": "no/such/folder"}, "no/such/folder"),
    ],
    ids=["unreachable", "missing-branch", "subdir-without-dvc-yaml"],
)
def test_bad_repository_settings_fail_the_first_task_once(
    change, expected, housing_repo, airflow_env, mlflow_server, tmp_path
):
    scenario = RepoScenario(airflow_env, housing_repo, mlflow_server.url, tmp_path)
    before = (housing_repo.head(), housing_repo.s3_keys())

    result = scenario.run("bad_repo", **{**SETTINGS["housing"], "retries": 2, **change})

    assert result["state"].endswith("failed"), result["log"][-6000:]
    assert result["tasks"]["run_dvc_pipeline"].endswith("failed")
    assert result["tries"]["run_dvc_pipeline"] == 1  # bad input: never retried
    assert "MlopsConfigError" in result["log"]
    assert expected in result["log"]
    assert scenario.runs() == []
    assert (housing_repo.head(), housing_repo.s3_keys()) == before
    scenario.assert_no_checkout_left()


def test_a_url_holding_a_secret_is_refused_when_the_dag_is_parsed(airflow_env, tmp_path):
    scenario_env = {**airflow_env}
    secret = "s3cr3t-t0ken"
    result = run_dag(
        scenario_env,
        REPO_DAG,
        "secret_url",
        {
            "MLOPS_DAG_CONFIG": json.dumps(
                {
                    "dag_id": "secret_url",
                    "repo_url": f"https://user:{secret}@127.0.0.1:9/repo.git",
                    "model_name": "m",
                    "records": str(tmp_path),
                }
            )
        },
        expect_result=False,
    )
    assert "git_conn_id" in result["log"]
    assert secret not in result["log"]


def test_the_checkout_is_removed_even_when_a_stage_fails(housing_repo, airflow_env, mlflow_server, tmp_path):
    def break_training(project: Path) -> None:
        train = project / "src" / "train.py"
        train.write_text("raise SystemExit('training broke')\n")

    housing_repo.push_change("broken training", break_training, dvc_push=False)
    scenario = RepoScenario(airflow_env, housing_repo, mlflow_server.url, tmp_path)
    before = housing_repo.head()

    result = scenario.run("broken", **SETTINGS["housing"])

    assert result["state"].endswith("failed"), result["log"][-6000:]
    assert result["tries"]["run_dvc_pipeline"] == 1
    assert "MlopsStageFailed" in result["log"]
    assert housing_repo.head() == before  # no lock committed
    (run,) = scenario.runs()
    assert run.info.status == "FAILED"
    scenario.assert_no_checkout_left()
    shutil.rmtree(tmp_path / "records", ignore_errors=True)
