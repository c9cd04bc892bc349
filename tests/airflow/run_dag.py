"""Run one DAG with dag.test() in a fresh process and print its task states as JSON.

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
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("RESULT " + json.dumps({"state": str(run.state), "tasks": states, "seconds": time.perf_counter() - start}))
