"""Benchmark: `ci-helpers master-build` on the `foreach` project shape, against the raw commands it wraps.

Builds the `foreach_list` shape of tests/shapes (prep -> train@small, train@large -> evaluate, raw
data `dvc add`-ed, a merged feature branch) with a bare git origin and a local-folder DVC remote
(no network). Each round starts from a fresh clone of origin main with an empty DVC cache and a
fresh copy of the remote, then times each side, in an order that rotates from round to round:
  raw:    dvc pull <train's inputs>; dvc repro -f --downstream train; dvc push
  raw+run: the same three commands inside an MLflow run on the same sqlite store, as a hand-written
          workflow that logs to MLflow does it at best: one Python step that imports MLflow, opens
          the run, runs them with MLFLOW_RUN_ID set (as master-build sets it) and ends the run
  ci:     ci-helpers master-build --stage train --lock-mode none (one sqlite MLflow store, created
          by a warm-up build outside the timed rounds), ci_helpers from this working tree
  ci@REF: the same, ci_helpers from `git archive REF` (with --compare REF: before/after in one run)
ci does more than raw (an MLflow run with provenance tags, the upstream reuse check, the check that
every out of the new lock is on the remote), which is the overhead the ratio shows. Prints the
medians, the ratios (goal <= 1.5 against raw) and each side's phases, the helper's timed from its
`==> ` headers. It also prints a floor: the run has to exist before the forced stage starts (its
MLFLOW_RUN_ID), so no build that logs to MLflow can take less than raw+run's time to an open run
plus raw's `dvc repro` and `dvc push`; on the sqlite default that floor is about 1.5x raw by itself.

Run: .venv/bin/python -u bench/bench_master_build_foreach.py [--rounds 5] [--compare REF]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import BIN, bench_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(bench_env())
for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "GITHUB_ACTIONS"):
    os.environ.pop(name, None)

from tests.shapes.builders import build_shape  # noqa: E402

GOAL_RATIO = 1.5


def run(args: list[str], cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def fresh_clone(base: Path, origin: Path, store: Path, name: str) -> Path:
    """A CI-style checkout: a new clone of main, an empty cache, its own copy of the remote."""
    clone, remote = base / name, base / f"{name}-store"
    shutil.copytree(store, remote)
    run(["git", "clone", "-q", "--branch", "main", str(origin), str(clone)], base)
    run([str(BIN / "dvc"), "remote", "add", "--local", "-f", "-d", "bench", str(remote)], clone)
    return clone


RAW_COMMANDS = (("dvc pull", ["pull", "data/prepared.csv"]), ("dvc repro", ["repro", "-f", "--downstream", "train"]))
RAW_COMMANDS += (("dvc push", ["push"]),)


def raw_sequence(clone: Path) -> tuple[float, list[tuple[str, float]]]:
    started = time.perf_counter()
    marks = []  # (the next command, when it starts), as the helper's headers
    for index, (_, args) in enumerate(RAW_COMMANDS):
        run([str(BIN / "dvc"), *args], clone)
        following = RAW_COMMANDS[index + 1][0] if index + 1 < len(RAW_COMMANDS) else "(exit)"
        marks.append((following, time.perf_counter() - started))
    return time.perf_counter() - started, marks


# What a hand-written workflow that logs to MLflow runs at best: one Python step that opens the
# run, runs the raw commands inside it (MLFLOW_RUN_ID set, as master-build sets it) and ends it.
RAW_IN_A_RUN = """
import os, subprocess, sys, time
started = time.perf_counter()
from mlflow.tracking import MlflowClient
uri, dvc = sys.argv[1], sys.argv[2]
client = MlflowClient(uri)
experiment = client.get_experiment_by_name("raw-foreach")
experiment_id = experiment.experiment_id if experiment else client.create_experiment("raw-foreach")
run = client.create_run(experiment_id, run_name="raw")
print(f"run open {time.perf_counter() - started:.3f}")
env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_RUN_ID": run.info.run_id}
for args in (["pull", "data/prepared.csv"], ["repro", "-f", "--downstream", "train"], ["push"]):
    subprocess.run([dvc, *args], env=env, check=True, capture_output=True)
client.set_terminated(run.info.run_id)
"""


def raw_in_a_run(clone: Path, tracking_uri: str) -> tuple[float, list[tuple[str, float]]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RAW_IN_A_RUN, tracking_uri, str(BIN / "dvc")],
        cwd=clone,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    opened = float(done.stdout.split("run open ")[1].split()[0])
    return seconds, [("dvc pull, repro, push; the run ended", opened), ("(exit)", seconds)]


def master_build(clone: Path, tracking_uri: str, source: Path) -> tuple[float, list[tuple[str, float]]]:
    """The helper's seconds, and (header, seconds since the start) for each `==> ` header."""
    started = time.perf_counter()
    headers = []
    with subprocess.Popen(
        [
            str(BIN / "ci-helpers"),
            "master-build",
            "--stage",
            "train",
            "--remote",
            "bench",
            "--lock-mode",
            "none",
            "--tracking-uri",
            tracking_uri,
        ],
        cwd=clone,
        env={**os.environ, "PYTHONPATH": str(source)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            output.append(line)
            if line.startswith("==> "):
                headers.append((line[4:].split(":")[0].strip()[:40], time.perf_counter() - started))
        if process.wait():
            raise SystemExit(f"master-build failed in {clone}:\n{''.join(output)[-3000:]}")
    seconds = time.perf_counter() - started
    return seconds, [*headers, ("(exit)", seconds)]


def snapshot(base: Path, ref: str) -> Path:
    """ci_helpers as `git archive REF` has it, in a folder of its own."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    source = base / f"ci_helpers-{commit[:12]}"
    source.mkdir()
    archive = subprocess.run(["git", "archive", commit, "ci_helpers"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    return source


def print_phases(name: str, runs: list[list[tuple[str, float]]], first: str) -> None:
    """Each phase, from one mark to the next (the first, `first`, from the start), as a median."""
    if not runs or not runs[0]:
        return
    print(f"{name} phases (median seconds):")
    labels = [first] + [label for label, _ in runs[0][:-1]]
    for index, label in enumerate(labels):
        spans = [marks[index][1] - (marks[index - 1][1] if index else 0.0) for marks in runs if index < len(marks)]
        print(f"  {label:<42} {statistics.median(spans):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", metavar="REF", help="also time ci_helpers from this git ref (e.g. main)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        store, origin = base / "store", base / "origin.git"
        build_shape("foreach_list", base / "dev", store, origin=origin)
        # the interpreter compiles the worktree's modules afresh in every process unless they are cached
        os.environ["PYTHONDONTWRITEBYTECODE"] = ""
        os.environ["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        tracking_uri = f"sqlite:///{base / 'mlflow.db'}"
        sides: dict[str, Callable[[Path], tuple[float, list[tuple[str, float]]]]] = {"raw": raw_sequence}
        sides["raw+run"] = lambda clone: raw_in_a_run(clone, tracking_uri)
        sides["ci"] = lambda clone: master_build(clone, tracking_uri, ROOT)
        if options.compare:
            before = snapshot(base, options.compare)
            sides[f"ci@{options.compare}"] = lambda clone: master_build(clone, tracking_uri, before)
        # A first build of each helper creates MLflow's sqlite schema and the bytecode caches.
        for name, side in sides.items():
            if name.startswith("ci") or name == "raw+run":
                side(fresh_clone(base, origin, store, f"warm-up-{name.replace('@', '-')}"))
        times: dict[str, list[float]] = {name: [] for name in sides}
        marks: dict[str, list[list[tuple[str, float]]]] = {name: [] for name in sides}
        names = list(sides)
        for index in range(options.rounds):
            for name in names[index % len(names) :] + names[: index % len(names)]:
                seconds, headers = sides[name](fresh_clone(base, origin, store, f"{name.replace('@', '-')}-{index}"))
                times[name].append(seconds)
                marks[name].append(headers)
                print(f"round {index + 1}: {name} {seconds:.2f} s", file=sys.stderr)
    raw_s, in_run_s = statistics.median(times["raw"]), statistics.median(times["raw+run"])
    print(f"foreach shape (train@small, train@large + downstream evaluate), {options.rounds} rounds, sides rotating")
    print(f"raw dvc pull + repro -f --downstream + push:  median {raw_s:.2f} s")
    print(f"the same inside an MLflow run (one python step): median {in_run_s:.2f} s, {in_run_s / raw_s:.2f}x raw")
    for name in [name for name in names if name.startswith("ci")]:
        median = statistics.median(times[name])
        verdict = "ok" if median / raw_s <= GOAL_RATIO else "MISSED"
        print(
            f"{'ci-helpers master-build (' + name + ')':<45} median {median:.2f} s, ratio {median / raw_s:.2f} ({verdict}), "
            f"{median / in_run_s:.2f}x the raw sequence inside an MLflow run"
        )
    # The run has to exist before the forced stage starts (MLFLOW_RUN_ID): no ordering can beat
    # MLflow's own time to a run, then the raw repro, then the raw push.
    opened = statistics.median(run_marks[0][1] for run_marks in marks["raw+run"])
    # raw's marks: pull ends at [0], repro at [1], push at [2]
    repro = statistics.median(run_marks[1][1] - run_marks[0][1] for run_marks in marks["raw"])
    push = statistics.median(run_marks[2][1] - run_marks[1][1] for run_marks in marks["raw"])
    floor = opened + repro + push
    print(
        f"floor for any build that logs to MLflow: run open {opened:.2f} s (a fresh python: import, the sqlite store, "
        f"the run) + dvc repro {repro:.2f} s + dvc push {push:.2f} s = {floor:.2f} s, {floor / raw_s:.2f}x raw"
    )
    print(f"load average at the end: {' '.join(f'{load:.1f}' for load in os.getloadavg())} ({os.cpu_count()} cpus)")
    firsts = {"raw": RAW_COMMANDS[0][0], "raw+run": "MLflow imported, store opened, run created"}
    for name in names:
        print_phases(name, marks[name], firsts.get(name, "(start, the project read)"))


if __name__ == "__main__":
    main()
