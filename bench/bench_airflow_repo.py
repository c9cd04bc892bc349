"""Benchmark: the Airflow repo mode's unchanged run on a fresh worker against a first run (goal: <= 0.2x).

Issue 25, point 3. The DAG is `mlops_pipeline_dag(repo_url=...)`: every task clones the commit the
first task pinned into a new folder under the temporary directory and removes it when it ends,
which is what a worker that never saw the project does. Set up per round, untimed: examples/housing
as a git repository with `dvc init`, a DVC remote that is a local folder (its absolute path
committed in .dvc/config, so a fresh clone finds it), `dvc repro` and `dvc push`, main pushed to a
bare origin; MLflow's store a sqlite file outside every checkout. Timed, with real Airflow
(`dag.test()`):
  first:     pin, clone, the plan's pull, the forced train and evaluate inside the MLflow run,
             `dvc push` and its check, the gate, the registration and the alias (+ the checkouts of
             validate and promote);
  unchanged: the same DAG again: pin, clone, the project read and the inputs fingerprint, one
             registry lookup ("nothing changed since v1"), nothing else; promote and alert skipped;
  cached:    optional (--no-cache-variant skips it): a second model with `cache_dir=` a per-worker
             DVC cache, its first run (which fills the cache) and its unchanged run.
All runs of a round happen in one fresh process, after an untimed warm-up dag.test() of a one-task
DAG (dag.test() starts an in-process execution API on its first use, which a worker does not do per
task). The unchanged run must say "nothing changed since v1" in its log and skip promote, and no
checkout may be left in the temporary directory, or the bench fails.

In that process the unchanged run finds MLflow and DVC imported by the first run; a worker's new
task process does not. So each round also runs the unchanged run once more in a new process (after
the same warm-up): "in a new process", the figure closest to a worker that never saw the project.

Then, in another fresh process per round (so imports are paid as a new task process pays them), the
pieces of the unchanged run_dvc_pipeline task timed one by one, cold and then warm: pin_commit,
fresh_checkout (clone + checkout; removal), load_project, inputs_fingerprint, alias_version_tags,
with its imports timed apart (mlflow.tracking, then the store's modules), and the rest of the
path (remote lookup, plan, outputs fingerprint).

Run: .venv/bin/python bench/bench_airflow_repo.py [--rounds 3] [--no-cache-variant]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from _common import BIN, bench_env

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 0.2
MODEL = "housing"
CACHED_MODEL = "housing_cached"
UNCHANGED = "nothing changed since v1"

DAG_FILE = """
import os
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from ci_helpers.airflow import mlops_pipeline_dag

with DAG("warm_up", schedule=None) as warm_up:
    EmptyOperator(task_id="nothing")

SETTINGS = dict(
    repo_url=os.environ["BENCH_ORIGIN"], branch="main", alias="production",
    thresholds=["metrics.r2_score>=0.75"], max_regressions=["metrics.r2_score=0.02"],
    baseline_alias="production", allow_missing_baseline=True, force_stages=["train"],
    tracking_uri=os.environ["BENCH_TRACKING_URI"], schedule=None, retries=0,
)
pipeline = mlops_pipeline_dag("housing_bench", model_name="housing", **SETTINGS)
cached = mlops_pipeline_dag(
    "housing_bench_cached", model_name="housing_cached", cache_dir=os.environ["BENCH_CACHE_DIR"], **SETTINGS
)
"""


def _sh(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _task_seconds(run) -> float:
    ran = [ti for ti in run.get_task_instances() if ti.start_date and ti.end_date]
    return (max(ti.end_date for ti in ran) - min(ti.start_date for ti in ran)).total_seconds()


def _task_states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state).rsplit(".", 1)[-1] for ti in run.get_task_instances()}


class _Lines(logging.Handler):
    """What ci_helpers logs during one DAG run (dag.test() runs the tasks in this process)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _timed_run(dag, name: str, timings: dict, unchanged: bool) -> None:
    logger = logging.getLogger("ci_helpers")
    lines = _Lines()
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.INFO)
    captured = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(captured):
            run = dag.test()
    finally:
        timings[name] = time.perf_counter() - start
        logger.removeHandler(lines)
        logger.setLevel(level)
    timings[f"{name}_tasks"] = _task_seconds(run)
    states = _task_states(run)
    log = "\n".join(lines.lines) + "\n" + captured.getvalue()
    if not str(run.state).endswith("success"):
        raise SystemExit(f"the {name} run ended {run.state} ({states}):\n{log[-4000:]}")
    said = next((line.strip() for line in log.splitlines() if UNCHANGED in line), None)
    if unchanged:
        if said is None or states.get("promote") != "skipped":
            raise SystemExit(f"the {name} run did not take the unchanged path ({states}):\n{log[-4000:]}")
        timings[f"{name}_said"] = said[said.index("nothing changed") :]
    elif said is not None or states.get("promote") != "success":
        raise SystemExit(f"the {name} run did not build and promote ({states}):\n{log[-4000:]}")


def _warm_dags(env: dict[str, str]):
    os.environ.update(env)
    spec = importlib.util.spec_from_file_location("bench_dags", Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.warm_up.test()
    return module


def one_round(env: dict[str, str], cache_variant: bool) -> dict:
    """In this process: warm up, then the first run and the unchanged run (+ the cached pair), timed."""
    module = _warm_dags(env)
    timings: dict = {}
    _timed_run(module.pipeline, "first", timings, unchanged=False)
    _timed_run(module.pipeline, "unchanged", timings, unchanged=True)
    if cache_variant:
        _timed_run(module.cached, "cached_first", timings, unchanged=False)
        _timed_run(module.cached, "cached_unchanged", timings, unchanged=True)
    return timings


def cold_round(env: dict[str, str], which: str) -> dict:
    """In a new process, after the same warm-up: the unchanged run of `which` DAG again, paying the
    imports of MLflow and DVC a new task process pays (in one_round the first run paid them)."""
    module = _warm_dags(env)
    timings: dict = {}
    name = "unchanged_cold" if which == "pipeline" else "cached_unchanged_cold"
    _timed_run(getattr(module, which), name, timings, unchanged=True)
    return timings


class _Laps:
    """Consecutive laps of one pass, by name."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self.last
        self.last = now


def _pieces(source, uri: str, cache_dir: str | None = None) -> dict[str, float]:
    """One pass over the unchanged path of reproduce_from_repo, each piece timed."""
    from ci_helpers.adapters import dvc
    from ci_helpers.adapters.git_checkout import fresh_checkout, pin_commit
    from ci_helpers.adapters.registry import alias_version_tags
    from ci_helpers.adapters.registry_rest import answers_over_rest
    from ci_helpers.adapters.tracking import preload_store
    from ci_helpers.flows.scheduled import outputs_fingerprint
    from ci_helpers.pipeline_inputs import INPUTS_TAG, import_stages, inputs_fingerprint
    from ci_helpers.project import load_project
    from ci_helpers.rebuild_plan import plan_rebuild

    lap = _Laps()
    commit = pin_commit(source)
    lap("pin_commit")
    with contextlib.ExitStack() as stack:
        stack.callback(lap, "checkout removed")  # last out (LIFO): after the removal
        root = stack.enter_context(fresh_checkout(source, commit, cache_dir=cache_dir))
        lap("fresh_checkout (clone)")
        project = load_project(root)
        lap("load_project")
        plan_rebuild(project, ["train"], "force_stages")
        dvc.remote_endpoint(root, dvc.resolve_remote(root, None))
        import_stages(project)
        lap("remote, plan, imports")
        inputs = inputs_fingerprint(project)
        lap("inputs_fingerprint")
        outputs_fingerprint(project)
        lap("outputs_fingerprint")
        if not answers_over_rest(uri):
            # alias_version_tags' own imports, timed apart: MLflow's client, then its SQL store's modules
            # (an http(s) server is asked over REST, without them: registry_rest)
            import mlflow.tracking  # noqa: F401

            lap("  import mlflow.tracking")
            preload_store(uri)
            lap("  store modules")
        held = alias_version_tags(uri, MODEL, "production")
        lap("alias_version_tags")
        if not held or held[1].get(INPUTS_TAG) != inputs:
            raise SystemExit(f"the breakdown's fingerprint does not match the version behind the alias: {held}")
        del project
    return lap.times


def breakdown(env: dict[str, str]) -> dict:
    """The unchanged run_dvc_pipeline task's pieces, timed one by one in this (fresh) process:
    pass 1 cold (imports and first connections paid), pass 2 warm, pass 3 warm with cache_dir=."""
    os.environ.update(env)
    start = time.perf_counter()
    from ci_helpers.adapters.git_checkout import RepoSource
    from ci_helpers.flows import scheduled_build  # noqa: F401  (what the operator imports)

    imports = time.perf_counter() - start
    source = RepoSource(env["BENCH_ORIGIN"], "main")
    uri = env["BENCH_TRACKING_URI"]
    cold = _pieces(source, uri)
    warm = _pieces(source, uri)
    cached = _pieces(source, uri, env["BENCH_CACHE_DIR"])
    return {"imports": imports, "cold": cold, "warm": warm, "warm, cache_dir=": cached}


def _setup(base: Path, env: dict[str, str]) -> None:
    """examples/housing as a repository on a bare origin, its DVC remote a local folder, built and pushed."""
    dev = base / "dev"
    shutil.copytree(ROOT / "examples" / "housing", dev, ignore=shutil.ignore_patterns("mlflow.db", "mlruns"))
    storage = base / "dvc-remote"
    storage.mkdir()
    # the stages' own MLflow runs of this untimed build go to a throwaway store
    build_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'setup-mlflow.db'}"}
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["dvc", "init", "-q"],
        ["dvc", "remote", "add", "-d", "storage", str(storage)],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "housing"],
        ["dvc", "repro", "-q"],
        ["dvc", "push", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "built"],
        ["git", "init", "-q", "--bare", "-b", "main", str(base / "origin.git")],
        ["git", "push", "-q", str(base / "origin.git"), "main"],
    ):
        _sh(command, dev, build_env)
    (base / "airflow" / "dags").mkdir(parents=True)
    (base / "airflow" / "dags" / "bench.py").write_text(DAG_FILE)
    _sh([str(BIN / "airflow"), "db", "migrate"], base, env)


@contextlib.contextmanager
def _mlflow_server(base: Path, env: dict[str, str]) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 (sqlite backend, artifacts proxied to a local folder), as the
    tracking server workers that share no disk would share; its URL. Stopped (its process group,
    which this bench started) when the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = base / "mlflow-server.log"
    command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{base / 'mlflow-server.db'}"]
    command += ["--artifacts-destination", str(base / "mlflow-artifacts")]
    server_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=server_env, cwd=base, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mlflow server did not start: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _round_env(base: Path) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID"))}
    return {
        **inherited,
        **bench_env(
            AIRFLOW_HOME=str(base / "airflow"),
            AIRFLOW__CORE__DAGS_FOLDER=str(base / "airflow" / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:8080/execution/",
            SCARF_ANALYTICS="false",
            BENCH_ORIGIN=str(base / "origin.git"),
            BENCH_TRACKING_URI=f"sqlite:///{base / 'mlflow.db'}",
            BENCH_CACHE_DIR=str(base / "worker-cache"),
            # each task's checkout lands here; the bench checks it is empty after every run
            TMPDIR=str(base / "tmp"),
        ),
    }


def _in_fresh_process(flags: list[str], env: dict[str, str], number: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, *flags], env=env, capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("TIMINGS ")), None)
    if line is None:
        raise SystemExit(f"round {number} ({' '.join(flags)}) failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[8:])


def _measured_round(number: int, base: Path, env: dict[str, str], no_cache_variant: bool) -> tuple[dict, dict]:
    (base / "tmp").mkdir()
    _setup(base, env)
    timing = _in_fresh_process(["--round-in"] + (["--no-cache-variant"] if no_cache_variant else []), env, number)
    timing.update(_in_fresh_process(["--cold-in", "pipeline"], env, number))
    if not no_cache_variant:
        timing.update(_in_fresh_process(["--cold-in", "cached"], env, number))
    left = [path.name for path in (base / "tmp").iterdir() if path.name.startswith("mlops-checkout-")]
    if left:
        raise SystemExit(f"round {number}: checkouts left behind in the temporary directory: {left}")
    return timing, _in_fresh_process(["--breakdown-in"], env, number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-cache-variant", action="store_true", help="skip the cache_dir= pair of runs")
    parser.add_argument("--keep", action="store_true", help="keep each round's folder (printed)")
    parser.add_argument(
        "--tracking",
        choices=("sqlite", "http"),
        default="sqlite",
        help="MLflow's store: a sqlite file (default) or an `mlflow server` on 127.0.0.1 in front of one",
    )
    parser.add_argument("--round-in", action="store_true", help=argparse.SUPPRESS)  # internal
    parser.add_argument("--breakdown-in", action="store_true", help=argparse.SUPPRESS)  # internal
    parser.add_argument("--cold-in", choices=("pipeline", "cached"), help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.round_in:
        print("TIMINGS " + json.dumps(one_round(dict(os.environ), not args.no_cache_variant)))
        return
    if args.cold_in:
        print("TIMINGS " + json.dumps(cold_round(dict(os.environ), args.cold_in)))
        return
    if args.breakdown_in:
        print("TIMINGS " + json.dumps(breakdown(dict(os.environ))))
        return

    print(
        f"tracking: {args.tracking}; load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)",
        flush=True,
    )
    results, breakdowns = [], []
    for number in range(1, args.rounds + 1):
        base = Path(tempfile.mkdtemp(prefix="bench-airflow-repo-"))
        try:
            with contextlib.ExitStack() as stack:
                env = _round_env(base)
                if args.tracking == "http":
                    env["BENCH_TRACKING_URI"] = stack.enter_context(_mlflow_server(base, env))
                timing, pieces = _measured_round(number, base, env, args.no_cache_variant)
            results.append(timing)
            breakdowns.append(pieces)
            first = timing["first"]
            text = (
                f"round {number}: first {first:.2f}s (tasks {timing['first_tasks']:.2f}s); unchanged "
                f"{timing['unchanged']:.2f}s (tasks {timing['unchanged_tasks']:.2f}s) {timing['unchanged'] / first:.3f}x, "
                f"in a new process {timing['unchanged_cold']:.2f}s (tasks {timing['unchanged_cold_tasks']:.2f}s) "
                f"{timing['unchanged_cold'] / first:.3f}x"
            )
            if "cached_first" in timing:
                text += (
                    f"; cache_dir=: first {timing['cached_first']:.2f}s, unchanged {timing['cached_unchanged']:.2f}s "
                    f"{timing['cached_unchanged'] / first:.3f}x, in a new process "
                    f"{timing['cached_unchanged_cold']:.2f}s {timing['cached_unchanged_cold'] / first:.3f}x"
                )
            print(text + f"; load {os.getloadavg()[0]:.2f}", flush=True)
            if args.keep:
                print(f"  kept {base}")
        finally:
            if not args.keep:
                shutil.rmtree(base, ignore_errors=True)

    _report(results, breakdowns)


def _report(results: list[dict], breakdowns: list[dict]) -> None:
    def median(key: str) -> float:
        return statistics.median(result[key] for result in results)

    def verdict(ratio: float) -> str:
        return f"ratio {ratio:.3f}x (goal <= {GOAL_RATIO}x) {'met' if ratio <= GOAL_RATIO else 'NOT met'}"

    said = {result[key] for result in results for key in result if key.endswith("_said")}
    print(f"every unchanged run said {' / '.join(sorted(map(repr, said)))}; promote skipped, no checkout left")
    first = median("first")
    print(
        f"median: first run {first:.2f}s, unchanged run on fresh workers {median('unchanged'):.2f}s: "
        f"{verdict(median('unchanged') / first)}"
    )
    print(
        f"  the unchanged run in a new process (MLflow's and DVC's imports paid again, as a new task "
        f"process pays them): {median('unchanged_cold'):.2f}s: {verdict(median('unchanged_cold') / first)}"
    )
    print(
        f"task time (first task's start to last task's end): first {median('first_tasks'):.2f}s, "
        f"unchanged {median('unchanged_tasks'):.2f}s: {median('unchanged_tasks') / median('first_tasks'):.3f}x; "
        f"in a new process {median('unchanged_cold_tasks'):.2f}s: "
        f"{median('unchanged_cold_tasks') / median('first_tasks'):.3f}x"
    )
    if "cached_first" in results[0]:
        print(
            f"with cache_dir= (a per-worker DVC cache, warm from its own first run): first "
            f"{median('cached_first'):.2f}s, unchanged {median('cached_unchanged'):.2f}s "
            f"({median('cached_unchanged') / first:.3f}x the first run without it), in a new process "
            f"{median('cached_unchanged_cold'):.2f}s ({median('cached_unchanged_cold') / first:.3f}x)"
        )
    print(
        "breakdown of the unchanged run_dvc_pipeline task (its pieces timed in a fresh process; medians; "
        f"importing the modules first: {statistics.median(b['imports'] for b in breakdowns):.2f}s):"
    )
    kinds = ("cold", "warm", "warm, cache_dir=")
    print(f"  {'':<26}" + "".join(f"{kind:>17}" for kind in kinds))
    for name in breakdowns[0]["cold"]:
        cells = [statistics.median(b[kind][name] for b in breakdowns) for kind in kinds]
        print(f"  {name:<26}" + "".join(f"{cell:16.3f}s" for cell in cells))
    totals = [statistics.median(sum(b[kind].values()) for b in breakdowns) for kind in kinds]
    print(f"  {'total':<26}" + "".join(f"{cell:16.3f}s" for cell in totals))


if __name__ == "__main__":
    main()
