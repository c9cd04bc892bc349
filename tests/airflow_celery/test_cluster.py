"""The Celery test deployment itself: one run's tasks land on both workers, each task sees only its
worker's HOME and TMPDIR, and XCom carries a value from one worker to the other; a broken DAG file
fails with its import error; a server that dies at start fails the start with its log."""

from __future__ import annotations

import socket
import textwrap

import pytest

from .cluster import CeleryCluster, ClusterError
from .conftest import requires_celery_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow, requires_celery_cluster]

SMOKE_DAG = textwrap.dedent("""
    import os, socket, tempfile
    from airflow.sdk import dag, task

    def where():
        return {"host": socket.gethostname(), "home": os.environ["HOME"], "tmpdir": os.environ["TMPDIR"],
                "gettempdir": tempfile.gettempdir(), "extra": os.environ.get("MLOPS_CELERY_SMOKE")}

    @dag(dag_id="celery_smoke", schedule=None)
    def celery_smoke():
        @task(queue="w1")
        def first():
            return where()

        @task(queue="w2")
        def second(upstream):
            print("second got", upstream["tmpdir"])
            return {**where(), "upstream": upstream}

        @task  # the default queue: either worker
        def third(upstream):
            return {**where(), "upstream": upstream}

        third(second(first()))

    celery_smoke()
""")


@pytest.fixture(scope="module")
def celery_worker_env():
    """The test's own environment for the workers (the product tests pass their services' here)."""
    return {"MLOPS_CELERY_SMOKE": "set by the test"}


def test_a_server_that_dies_at_start_fails_the_start_with_its_log_and_stops_the_rest(tmp_path):
    cluster = CeleryCluster(tmp_path, {"AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "soon"})

    with pytest.raises(
        ClusterError, match=r"(?s)^scheduler exited with code \d+; the last lines of .*scheduler\.log:.*soon"
    ):
        cluster.start()

    assert cluster.processes  # it had started the others
    assert all(process.popen.poll() is not None for process in cluster.processes.values())


def test_a_run_spreads_over_both_workers_that_share_only_the_dags_folder(celery_cluster):
    assert celery_cluster.put_dag("celery_smoke", SMOKE_DAG) == ["celery_smoke"]

    run_id = celery_cluster.trigger("celery_smoke")
    result = celery_cluster.wait("celery_smoke", run_id, timeout=120)

    assert result.state == "success", {key: (task.state, task.log[-2000:]) for key, task in result.tasks.items()}
    assert sorted(result.tasks) == ["first", "second", "third"]
    host = socket.gethostname()
    first, second, third = (result.tasks[name] for name in ("first", "second", "third"))
    assert (first.hostname, first.queue, first.worker) == (f"w1@{host}", "w1", "w1")
    assert (second.hostname, second.queue, second.worker) == (f"w2@{host}", "w2", "w2")
    assert third.queue == "default"
    assert third.hostname == f"{third.worker}@{host}"
    assert all(task.state == "success" and task.try_number == 1 for task in result.tasks.values())

    # each task saw its own worker's HOME and temp dir, none of the test process's
    seen = {name: celery_cluster.xcom("celery_smoke", run_id, name) for name in ("first", "second", "third")}
    for name, task in result.tasks.items():
        worker = celery_cluster.workers[task.worker]
        assert seen[name]["home"] == str(worker.home), name
        assert seen[name]["tmpdir"] == seen[name]["gettempdir"] == str(worker.tmp), name
        assert seen[name]["host"] == host
        assert seen[name]["extra"] == "set by the test", name

    # XCom carried first's value from w1 to w2, and on to the third task
    assert seen["second"]["upstream"] == seen["first"]
    assert seen["third"]["upstream"] == seen["second"]
    # the worker's own log folder holds the task's log, with what the task printed
    assert f"second got {celery_cluster.workers['w1'].tmp}" in second.log
    assert "Done. Returned value was" in third.log


def test_a_dag_file_that_fails_to_import_fails_with_its_error(celery_cluster):
    with pytest.raises(ClusterError, match=r"(?s)celery_broken\.py failed to import.*no_such_module_here"):
        celery_cluster.put_dag("celery_broken", "from airflow.sdk import dag\nimport no_such_module_here\n", timeout=60)
