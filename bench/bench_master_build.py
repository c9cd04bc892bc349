"""Benchmark (P5): `ci-helpers master-build` on the example project against the raw sequence it replaces.

The project is examples/housing as the integration tests build it (tests/support/project.py:
generate -> featurize -> train -> evaluate, main pushed to a bare git origin and to a DVC remote on a
moto S3 server), with a real `mlflow server` (sqlite backend, artifacts proxied to the moto bucket);
both servers listen on 127.0.0.1 only. Before each side of each round, a new main commit nudges
`train.learning_rate` by 0.0001 (the same training work, a different model), so every
side rebuilds a model of its own, pushes a new object and commits a new dvc.lock. Each side starts
from a fresh clone of that commit (an empty DVC cache) and runs, timed:
  raw:    create an MLflow run (MlflowClient, in the bench process);
          dvc pull --remote storage <pull targets>        (master-build's plan: train's and
                                                           evaluate's inputs)
          dvc repro --pull --allow-missing <upstream>     (reuse of generate, featurize)
          dvc repro --force --downstream train            (MLFLOW_RUN_ID etc. as master-build sets them)
          dvc push --remote storage <rebuilt cached outputs>
          git add + git commit dvc.lock (and the rebuilt git-tracked outs) + git push origin main
          python -c "<MlflowClient: create_registered_model if missing, find the run's logged model,
                      create_model_version, set_registered_model_alias>"
  helper: ci-helpers master-build --model-name <fresh name> --tracking-uri <server> --remote storage
          (the example's mlops.yaml applies: its gate, with main as the baseline)
The helper does more than the raw sequence: the preflight, the provenance tags on the run, the gate
and its baseline, the check that every out of the new lock is on the remote, the alias history, the
report. A fresh model name per side and round. The sides alternate which goes first each round,
after one untimed warm-up of each (bytecode compiled, MLflow experiments created). Prints the
medians, their ratio (goal <= 1.15), the median CPU time (user+sys) of each side's child processes
(steadier than wall time on a busy machine: raise --rounds when the load average is high), and each
side's phases, the helper's timed from its `==> ` headers.

Run: .venv/bin/python bench/bench_master_build.py [--rounds 3] [--ref HEAD] [--log FILE]
(--ref: run ci_helpers from `git archive REF`, not from the working tree, e.g. while it is being edited)
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from _common import BIN, bench_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOAL_RATIO = 1.15
REMOTE = "storage"
ALIAS = "staging"
RAW_EXPERIMENT = "housing-raw-build"

os.environ.update(
    bench_env(
        AWS_EC2_METADATA_DISABLED="true",
        no_proxy="127.0.0.1,localhost",
        GIT_CONFIG_NOSYSTEM="1",
        PYTHONUNBUFFERED="1",  # line timestamps of the children's output
    )
)
for _name in list(os.environ):
    if _name.startswith(("CI_HELPERS_", "MLFLOW_TRACKING_", "GITHUB_")) or _name in (
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        os.environ.pop(_name)

from tests.support.project import build_template, set_train_params  # noqa: E402
from tests.support.servers import FAKE_AWS, MlflowServer, s3_client, start_moto  # noqa: E402

os.environ.update(FAKE_AWS)
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request

REGISTER = """\
import sys
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

uri, name, alias, run_id = sys.argv[1:5]
client = MlflowClient(uri, registry_uri=uri)
try:
    client.get_registered_model(name)
except MlflowException:
    client.create_registered_model(name)
run = client.get_run(run_id)
logged = client.search_logged_models(
    experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
)
model = max(logged, key=lambda m: m.creation_timestamp or 0)
version = client.create_model_version(name, f"models:/{model.model_id}", run_id=run_id, model_id=model.model_id)
client.set_registered_model_alias(name, alias, version.version)
print(f"registered {name} version {version.version}, alias {alias}")
"""


@dataclass
class Timed:
    """One side's run: total seconds, and (label, seconds since start) marks."""

    seconds: float = 0.0
    cpu: float = 0.0  # user + sys seconds of its child processes (less sensitive to a busy machine)
    marks: list[tuple[str, float]] = field(default_factory=list)
    lines: list[tuple[float, str]] = field(default_factory=list)


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}) in {cwd}:\n{done.stdout}{done.stderr}")
    return done.stdout


def streamed(args: list[str], cwd: Path, timed: Timed, started: float, env: dict[str, str] | None = None) -> None:
    """Run a command, recording when each line of its output (stdout and stderr) arrived."""
    with subprocess.Popen(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            timed.lines.append((time.perf_counter() - started, line.rstrip("\n")))
        code = process.wait()
    if code:
        tail = "\n".join(text for _, text in timed.lines[-40:])
        raise SystemExit(f"{' '.join(args)} failed ({code}) in {cwd}:\n{tail}")


@dataclass(frozen=True)
class Bench:
    base: Path
    origin: Path
    dev: Path
    tracking_uri: str
    pull_targets: tuple[str, ...]
    upstream: tuple[str, ...]
    push_targets: tuple[str, ...]
    commit_paths: tuple[str, ...]

    def new_main_commit(self, step: int) -> str:
        """A new tip of origin's main: the last build's lock, train.learning_rate nudged (dvc.lock now stale)."""
        run(["git", "fetch", "-q", "origin", "main"], self.dev)
        run(["git", "reset", "-q", "--hard", "origin/main"], self.dev)
        rate = f"{0.1 + step / 10000:.4f}"
        set_train_params(self.dev, learning_rate=rate)
        run(["git", "commit", "-qam", f"train.learning_rate={rate}"], self.dev)
        run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], self.dev)
        return self.head()

    def head(self) -> str:
        return run(["git", "rev-parse", "refs/heads/main"], self.origin).strip()

    def clone(self, name: str) -> Path:
        """A CI-style checkout: a fresh clone of main, an empty DVC cache (the remote is in .dvc/config)."""
        target = self.base / name
        run(["git", "clone", "-q", "--branch", "main", str(self.origin), str(target)], self.base)
        return target


def raw_sequence(bench: Bench, checkout: Path, model: str) -> Timed:
    from mlflow import MlflowClient

    dvc = str(BIN / "dvc")
    timed = Timed()
    started = time.perf_counter()

    def mark(label: str) -> None:
        timed.marks.append((label, time.perf_counter() - started))

    client = MlflowClient(bench.tracking_uri, registry_uri=bench.tracking_uri)
    experiment = client.get_experiment_by_name(RAW_EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(RAW_EXPERIMENT)
    mlflow_run = client.create_run(experiment_id, run_name=f"raw-build-{model}")
    run_env = {
        "MLFLOW_TRACKING_URI": bench.tracking_uri,
        "MLFLOW_RUN_ID": mlflow_run.info.run_id,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
    }
    mark("create the MLflow run")
    streamed([dvc, "pull", "--remote", REMOTE, *bench.pull_targets], checkout, timed, started)
    mark("dvc pull <inputs>")
    if bench.upstream:
        streamed([dvc, "repro", "--pull", "--allow-missing", *bench.upstream], checkout, timed, started, run_env)
        mark("dvc repro --pull --allow-missing <upstream>")
    streamed([dvc, "repro", "--force", "--downstream", "train"], checkout, timed, started, run_env)
    mark("dvc repro --force --downstream train")
    streamed([dvc, "push", "--remote", REMOTE, *bench.push_targets], checkout, timed, started)
    mark("dvc push <rebuilt outputs>")
    streamed(["git", "add", "--", *bench.commit_paths], checkout, timed, started)
    streamed(
        ["git", "commit", "-q", "-m", "Update dvc.lock [skip ci]", "--", *bench.commit_paths], checkout, timed, started
    )
    streamed(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], checkout, timed, started)
    mark("git commit + push dvc.lock")
    streamed(
        [str(BIN / "python"), "-c", REGISTER, bench.tracking_uri, model, ALIAS, mlflow_run.info.run_id],
        checkout,
        timed,
        started,
    )
    mark("register + alias (python snippet)")
    timed.seconds = time.perf_counter() - started
    return timed


HELPER_PHASES = (
    ("Pull the inputs", "preflight + open the MLflow run"),
    ("Reuse", "dvc pull <inputs>"),  # "Reuse upstream stages" (judged in-process) or "Reuse or rebuild ..."
    ("Force-rebuild", "dvc repro upstream (reuse)"),
    ("Push CI-built", "dvc repro --force --downstream + gate"),
    ("Verify that every out", "dvc push"),
    ("Commit dvc.lock back", "verify outs on the remote"),
    ("Register model", "git commit + push dvc.lock"),
)


def helper(bench: Bench, checkout: Path, model: str) -> Timed:
    timed = Timed()
    started = time.perf_counter()
    streamed(
        [
            str(BIN / "ci-helpers"),
            "master-build",
            "--model-name",
            model,
            "--tracking-uri",
            bench.tracking_uri,
            "--remote",
            REMOTE,
        ],
        checkout,
        timed,
        started,
    )
    timed.seconds = time.perf_counter() - started
    # Each `==> ` header ends the phase before it (the label says which).
    for at, text in timed.lines:
        for prefix, label in HELPER_PHASES:
            if text.startswith(f"==> {prefix}"):
                timed.marks.append((label, at))
    timed.marks.append(("register + alias + report, to exit", timed.seconds))
    return timed


def check_side(bench: Bench, before: str, model: str) -> None:
    """The side really did the work: a new lock commit on origin's main, a version behind the alias."""
    from mlflow import MlflowClient

    tip = bench.head()
    if tip == before or run(["git", "rev-parse", f"{tip}^"], bench.origin).strip() != before:
        raise SystemExit(f"origin main did not get one lock commit on top of {before[:12]}")
    if run(["git", "diff", "--name-only", before, tip], bench.origin).split().count("dvc.lock") != 1:
        raise SystemExit(f"the commit on top of {before[:12]} does not change dvc.lock")
    client = MlflowClient(bench.tracking_uri, registry_uri=bench.tracking_uri)
    client.get_model_version_by_alias(model, ALIAS)


def setup(base: Path, endpoint: str, tracking_uri: str) -> Bench:
    from ci_helpers.project import load_project
    from ci_helpers.rebuild_plan import plan_rebuild

    origin, dev = build_template(base / "template", endpoint, "bench-dvc", base / "dev-mlflow.db", full=False)
    project = load_project(dev)
    plan = plan_rebuild(project, ["train"])
    uncached = [path for path in plan.rebuilt_outputs if path not in plan.rebuilt_cached_outputs]
    return Bench(
        base,
        origin,
        dev,
        tracking_uri,
        plan.pull_targets,
        plan.upstream,
        plan.rebuilt_cached_outputs,
        tuple(project.git_path(path) for path in (*project.lockfiles, *uncached)),
    )


def phases(marks: list[tuple[str, float]]) -> list[tuple[str, float]]:
    out, previous = [], 0.0
    for label, at in marks:
        out.append((label, at - previous))
        previous = at
    return out


def print_phases(title: str, runs: list[Timed]) -> None:
    print(title)
    per_run = [phases(timed.marks) for timed in runs]
    for index, (label, _) in enumerate(per_run[0]):
        values = [items[index][1] for items in per_run if index < len(items)]
        print(f"  {label:<45} median {statistics.median(values):6.2f} s   ({', '.join(f'{v:.2f}' for v in values)})")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_rounds(bench: Bench, rounds: int, log: Path | None) -> dict[str, list[Timed]]:
    """One untimed warm-up of each side, then `rounds` rounds alternating which side goes first."""
    token = uuid.uuid4().hex[:6]
    results: dict[str, list[Timed]] = {"raw": [], "helper": []}
    sides = {"raw": raw_sequence, "helper": helper}
    step = 0
    log_lines: list[str] = []
    for index in range(-1, rounds):  # round 0: the warm-up
        for name in ["raw", "helper"] if index % 2 == 0 else ["helper", "raw"]:
            step += 1
            before = bench.new_main_commit(step)
            checkout = bench.clone(f"{name}-{index + 1}")
            model = f"bench-{token}-{name}-{index + 1}"
            cpu_before = children_cpu()
            timed = sides[name](bench, checkout, model)
            timed.cpu = children_cpu() - cpu_before
            check_side(bench, before, model)
            log_lines += [f"### {name} round {index + 1}: {timed.seconds:.2f} s"]
            log_lines += [f"{at:7.2f} {text}" for at, text in timed.lines]
            if index < 0:
                print(f"warm-up: {name} {timed.seconds:.2f} s", file=sys.stderr)
                continue
            results[name].append(timed)
            print(f"round {index + 1}: {name} {timed.seconds:.2f} s (cpu {timed.cpu:.2f} s)", file=sys.stderr)
    if log:
        log.write_text("\n".join(log_lines) + "\n")
    return results


def use_snapshot(base: Path, ref: str) -> str:
    """Import ci_helpers (here and in every child) from `git archive REF`; returns the commit."""
    commit = run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], ROOT).strip()
    source = base / "ci_helpers_src"
    source.mkdir()
    archive = subprocess.run(["git", "archive", commit, "ci_helpers"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    os.environ["PYTHONPATH"] = str(source)  # before the editable install's finder, which comes last
    sys.path.insert(0, str(source))
    return commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ref", help="run ci_helpers from this git ref, not from the working tree")
    parser.add_argument("--log", type=Path, help="write every side's timestamped output to this file")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        source = f"{options.ref} ({use_snapshot(base, options.ref)[:12]})" if options.ref else "the working tree"
        # this machine sets PYTHONDONTWRITEBYTECODE=1: every process would compile its imports again
        os.environ["PYTHONDONTWRITEBYTECODE"] = ""
        os.environ["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        (base / "template").mkdir()
        (base / "mlflow").mkdir()
        moto, endpoint = start_moto()
        mlflow_server = None
        try:
            for bucket in ("bench-dvc", "bench-mlflow"):
                s3_client(endpoint).create_bucket(Bucket=bucket)
            mlflow_server = MlflowServer(base / "mlflow", endpoint, "bench-mlflow")
            started = time.perf_counter()
            bench = setup(base, endpoint, mlflow_server.url)
            mlflow_server.wait_ready()
            print(f"built the example project in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            print(
                f"pull targets: {' '.join(bench.pull_targets)}; upstream: {' '.join(bench.upstream)}; "
                f"push: {' '.join(bench.push_targets)}; commit: {' '.join(bench.commit_paths)}",
                file=sys.stderr,
            )
            results = run_rounds(bench, options.rounds, options.log)
        finally:
            if mlflow_server is not None:
                mlflow_server.stop()
            moto.stop()
    raw_s = statistics.median(t.seconds for t in results["raw"])
    helper_s = statistics.median(t.seconds for t in results["helper"])
    ratio = helper_s / raw_s
    verdict = "ok" if ratio <= GOAL_RATIO else "MISSED"
    print(f"examples/housing, {options.rounds} rounds, each side from a fresh clone of a new main commit")
    print(f"ci_helpers from {source}")
    print(f"raw:    pull + repro + push + git commit/push + register/alias:  median {raw_s:.2f} s")
    print(f"helper: ci-helpers master-build:                                 median {helper_s:.2f} s")
    print(f"ratio master-build / raw = {ratio:.2f}x (goal <= {GOAL_RATIO}) -> {verdict}")
    raw_cpu = statistics.median(t.cpu for t in results["raw"])
    helper_cpu = statistics.median(t.cpu for t in results["helper"])
    print(
        f"cpu (user+sys of the child processes): raw median {raw_cpu:.2f} s, helper median {helper_cpu:.2f} s, "
        f"ratio {helper_cpu / raw_cpu:.2f}x"
    )
    print(
        f"load average at the end: {' '.join(f'{load:.1f}' for load in os.getloadavg())} (this machine has {os.cpu_count()} cpus)"
    )
    print_phases("raw phases:", results["raw"])
    print_phases("master-build phases (from its `==> ` headers):", results["helper"])


if __name__ == "__main__":
    main()
