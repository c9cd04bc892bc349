"""Benchmark: the Airflow DAG's unchanged re-run against its first run (goal: <= 0.2x).

Each round copies examples/housing into a fresh git + DVC repo and runs `mlops_pipeline_dag` on it
with real Airflow (`dag.test()`), MLflow on the embedded sqlite default (no server, nothing leaves
the machine):
  first:     every stage runs (generate, featurize, train, evaluate) inside the MLflow run the DAG
             opens; the gate passes; the model is registered and the alias moved;
  unchanged: the same DAG again with nothing changed: no stage, no MLflow run, no registry call
             ("nothing changed since v1"); promote and alert are skipped.
All runs of a round happen in one process, after one untimed warm-up dag.test() of a one-task DAG:
dag.test() starts an in-process execution API on its first use (~5 s), which a scheduler does not
do per run. Prints each round, the medians and the ratio; also each run's task time (first task's
start to last task's end, as Airflow records them).

Run: .venv/bin/python bench/bench_airflow.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOAL_RATIO = 0.2

DAG_FILE = """
import os
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from ci_helpers.airflow import mlops_pipeline_dag

with DAG("warm_up", schedule=None) as warm_up:
    EmptyOperator(task_id="nothing")

pipeline = mlops_pipeline_dag(
    "housing_bench", os.environ["BENCH_PROJECT"], model_name="housing", alias="production",
    thresholds=["metrics.r2_score>=0.75"], max_regressions=["metrics.r2_score=0.02"],
    baseline_alias="production", allow_missing_baseline=True, schedule=None, retries=0,
)
"""


def _sh(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)


def _task_seconds(run) -> float:
    ran = [ti for ti in run.get_task_instances() if ti.start_date and ti.end_date]
    return (max(ti.end_date for ti in ran) - min(ti.start_date for ti in ran)).total_seconds()


def one_round(base: Path, env: dict[str, str]) -> dict[str, float]:
    """In this process: warm up, then the first run and the unchanged re-run, timed."""
    os.environ.update(env)
    spec = importlib.util.spec_from_file_location("bench_dags", Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.warm_up.test()
    timings: dict[str, float] = {}
    for name in ("first", "unchanged"):
        start = time.perf_counter()
        run = module.pipeline.test()
        timings[name] = time.perf_counter() - start
        timings[f"{name}_tasks"] = _task_seconds(run)
        if not str(run.state).endswith("success"):
            raise SystemExit(f"the {name} run ended {run.state}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-in", help=argparse.SUPPRESS)  # internal: run one round in this process
    args = parser.parse_args()
    if args.round_in:
        import json

        print("TIMINGS " + json.dumps(one_round(Path(args.round_in), dict(os.environ))))
        return

    results = []
    for number in range(1, args.rounds + 1):
        base = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
        try:
            project = base / "housing"
            shutil.copytree(
                ROOT / "examples" / "housing", project, ignore=shutil.ignore_patterns("mlflow.db", "mlruns")
            )
            env = {
                **os.environ,
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                "AIRFLOW_HOME": str(base / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(base / "airflow" / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
                "SCARF_ANALYTICS": "false",
                "DO_NOT_TRACK": "true",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DVC_NO_ANALYTICS": "1",
                "NO_PROXY": "127.0.0.1,localhost",
                "BENCH_PROJECT": str(project),
                "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
                "GIT_AUTHOR_NAME": "bench",
                "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                "GIT_COMMITTER_NAME": "bench",
                "GIT_COMMITTER_EMAIL": "bench@example.invalid",
            }
            (base / "airflow" / "dags").mkdir(parents=True)
            (base / "airflow" / "dags" / "bench.py").write_text(DAG_FILE)
            for command in (["git", "init", "-q", "-b", "main"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
                _sh(command, project, env)
            _sh(["git", "commit", "-qm", "housing"], project, env)
            _sh([str(BIN / "airflow"), "db", "migrate"], base, env)
            proc = subprocess.run(
                [sys.executable, __file__, "--round-in", str(base)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            line = next((x for x in proc.stdout.splitlines() if x.startswith("TIMINGS ")), None)
            if line is None:
                raise SystemExit(f"round {number} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
            import json

            timing = json.loads(line[8:])
            results.append(timing)
            print(
                f"round {number}: first {timing['first']:.2f}s (tasks {timing['first_tasks']:.2f}s), "
                f"unchanged {timing['unchanged']:.2f}s (tasks {timing['unchanged_tasks']:.2f}s): "
                f"{timing['unchanged'] / timing['first']:.3f}x",
                flush=True,
            )
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def median(key: str) -> float:
        return statistics.median(result[key] for result in results)

    ratio = median("unchanged") / median("first")
    print(
        f"median: first run {median('first'):.2f}s, unchanged re-run {median('unchanged'):.2f}s: "
        f"ratio {ratio:.3f}x (goal <= {GOAL_RATIO}x) {'met' if ratio <= GOAL_RATIO else 'NOT met'}"
    )
    print(
        f"task time (first task's start to last task's end): first {median('first_tasks'):.2f}s, "
        f"unchanged {median('unchanged_tasks'):.2f}s: {median('unchanged_tasks') / median('first_tasks'):.3f}x"
    )


if __name__ == "__main__":
    main()
