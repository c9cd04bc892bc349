"""Run one DAG with dag.test() in a fresh process and print its task states, tries and the gate's
XCom as JSON.

Usage: python run_dag.py DAG_FILE DAG_ID   (AIRFLOW_HOME and the dags folder come from the env)
"""

import importlib.util
import json
import sys
import time

spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = next(value for value in vars(module).values() if getattr(value, "dag_id", None) == sys.argv[2])
start = time.perf_counter()
run = dag.test()
seconds = time.perf_counter() - start


def gate_xcom():
    """The validate task's gate result (XCom key 'gate'), as the next tasks read it."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    query = XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, task_ids="validate", key="gate")
    with create_session() as session:
        row = session.scalars(query).first()
        if row is None:
            return None
        value = row.value
        return json.loads(value) if isinstance(value, str) else value


tis = run.get_task_instances()
ran = [ti for ti in tis if ti.start_date and ti.end_date]
# from the first task's start to the last one's end: what a scheduler's run takes, without
# dag.test()'s one-off start of its in-process execution API (~5 s before the first task)
span = (max(ti.end_date for ti in ran) - min(ti.start_date for ti in ran)).total_seconds() if ran else 0.0
print(
    "RESULT "
    + json.dumps(
        {
            "state": str(run.state),
            "tasks": {ti.task_id: str(ti.state) for ti in tis},
            "tries": {ti.task_id: ti.try_number for ti in tis},
            "gate": gate_xcom(),
            "seconds": seconds,
            "task_seconds": span,
            "task_times": {ti.task_id: [str(ti.start_date), str(ti.end_date), ti.duration] for ti in ran},
        }
    )
)
