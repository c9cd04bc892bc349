"""Benchmark: `ci-helpers pr-validate` against the raw commands a hand-written workflow would run.

Both sides do the same work on a fresh CI-style clone of the example project's PR branch, against
a moto S3 server and an `mlflow server` on 127.0.0.1:
  raw: dvc status -c; dvc status; dvc pull <eval inputs>; dvc repro -f -s evaluate;
       a python step that gates metrics.json and logs the run to MLflow.
Prints the median of each, their ratio, and `ci-helpers --help` against `dvc --version`. With
--compare REF, ci_helpers from `git archive REF` is a third side (before/after in one run); the
sides' order rotates from round to round. ci_helpers comes from this working tree otherwise.

Run: .venv/bin/python -u bench/bench_pr_validate.py [--rounds N] [--compare REF]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import bench_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(bench_env(AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(ROOT)))

from tests.support.project import Project, build_template, sh  # noqa: E402
from tests.support.servers import FAKE_AWS, MlflowServer, s3_client, start_moto  # noqa: E402

os.environ.update(FAKE_AWS)
logging.getLogger("werkzeug").setLevel(logging.ERROR)

RAW_GATE_AND_LOG = """
import json, sys, time, yaml
from mlflow.tracking import MlflowClient
from mlflow.entities import Metric, Param
uri, experiment = sys.argv[1], sys.argv[2]
metrics = json.load(open("metrics.json"))["metrics"]
base = json.loads(__import__("subprocess").check_output(["git", "show", "origin/main:metrics.json"]))["metrics"]
passed = metrics["r2_score"] >= 0.75 and metrics["rmse"] <= 0.45 and metrics["r2_score"] >= base["r2_score"] - 0.02
client = MlflowClient(uri)
exp = client.get_experiment_by_name(experiment)
exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
run = client.create_run(exp_id, tags={"pr": "1"})
now = int(time.time() * 1000)
params = yaml.safe_load(open("params.yaml"))
client.log_batch(run.info.run_id, metrics=[Metric("metrics." + k, v, now, 0) for k, v in metrics.items()],
                 params=[Param(f"{s}.{k}", str(v)) for s, d in params.items() for k, v in d.items()])
open("report.json", "w").write(json.dumps({"passed": passed, "metrics": metrics}))
client.log_artifact(run.info.run_id, "report.json")
client.set_terminated(run.info.run_id)
sys.exit(0 if passed else 1)
"""


def timed(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def raw_workflow(checkout: Path, uri: str) -> float:
    start = time.perf_counter()
    for args in (
        ["dvc", "status", "-c", "--json"],
        ["dvc", "status", "--json"],
        ["dvc", "pull", "data/features/test.csv", "models/model.pkl"],
        ["dvc", "repro", "-f", "-s", "evaluate"],
        [sys.executable, "-c", RAW_GATE_AND_LOG, uri, "bench-raw"],
    ):
        subprocess.run(args, cwd=checkout, check=True, capture_output=True)
    return time.perf_counter() - start


def helper_workflow(checkout: Path, uri: str, source: Path = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["ci-helpers", "pr-validate", "--pr", "1", "--tracking-uri", uri, "--experiment", "bench-helper"],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(source)},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def snapshot(base: Path, ref: str) -> Path:
    """ci_helpers as `git archive REF` has it, in a folder of its own."""
    source = base / "ci_helpers-ref"
    source.mkdir()
    archive = subprocess.run(["git", "archive", ref, "ci_helpers"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", metavar="REF", help="also time ci_helpers from this git ref (e.g. main)")
    options = parser.parse_args()
    rounds = options.rounds
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        server, endpoint = start_moto()
        s3_client(endpoint).create_bucket(Bucket="bench-template")
        s3_client(endpoint).create_bucket(Bucket="bench-mlflow")
        mlflow = MlflowServer(base, endpoint, "bench-mlflow")
        try:
            (base / "template").mkdir()
            print("building the example project (main + one PR branch)...", file=sys.stderr)
            build_template(base / "template", endpoint, "bench-template", base / "train.db", full=False)
            mlflow.wait_ready()
            project = Project.copy_of(base / "template", base / "p", endpoint, "bench-template")
            # the interpreter compiles the worktree's modules afresh in every process unless they are cached
            os.environ["PYTHONDONTWRITEBYTECODE"] = ""
            os.environ["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
            sides = {"raw": raw_workflow, "helper": helper_workflow}
            if options.compare:
                before = snapshot(base, options.compare)
                sides[f"helper@{options.compare}"] = lambda checkout, uri: helper_workflow(checkout, uri, before)
            for name, run in sides.items():  # untimed: bytecode, the experiments
                run(project.checkout("pr-better", name=f"warm-{name.replace('@', '-')}"), mlflow.url)
            times: dict[str, list[float]] = {name: [] for name in sides}
            names = list(sides)
            for i in range(rounds):
                # fresh clones, rotating order, so no side benefits from warm caches or a quiet moment
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    checkout = project.checkout("pr-better", name=f"{name.replace('@', '-')}-{i}")
                    sh(["git", "fetch", "-q", "origin", "main:refs/remotes/origin/main"], checkout)
                    times[name].append(sides[name](checkout, mlflow.url))
                    print(f"round {i + 1}: {name} {times[name][-1]:.2f}s", file=sys.stderr)
            help_times = [timed(["ci-helpers", "--help"], base) for _ in range(7)]
            dvc_times = [timed(["dvc", "--version"], base) for _ in range(7)]
        finally:
            mlflow.stop()
            server.stop()
    raw_m = statistics.median(times["raw"])
    help_m, dvc_m = statistics.median(help_times), statistics.median(dvc_times)
    for name in names[1:]:
        helper_m = statistics.median(times[name])
        print(
            f"pr-validate ({name}) median {helper_m:.2f}s vs raw commands median {raw_m:.2f}s "
            f"-> overhead ratio {helper_m / raw_m:.3f} (goal <= 1.15)"
        )
    print(
        f"ci-helpers --help median {help_m:.3f}s vs dvc --version median {dvc_m:.3f}s "
        f"-> ratio {help_m / dvc_m:.3f} (goal <= 1.5)"
    )


if __name__ == "__main__":
    main()
