"""Benchmark: `ci-helpers master-build` on the `foreach` project shape, against the raw commands it wraps.

Builds the `foreach_list` shape of tests/shapes (prep -> train@small, train@large -> evaluate, raw
data `dvc add`-ed, a merged feature branch) with a bare git origin and a local-folder DVC remote
(no network). Each round starts from a fresh clone of origin main with an empty DVC cache and a
fresh copy of the remote, then times each side, in an order that rotates from round to round:
  raw:    dvc pull <train's inputs>; dvc repro -f --downstream train; dvc push
  ci:     ci-helpers master-build --stage train --lock-mode none (one sqlite MLflow store, created
          by a warm-up build outside the timed rounds), ci_helpers from this working tree
  ci@REF: the same, ci_helpers from `git archive REF` (with --compare REF: before/after in one run)
ci does more than raw (an MLflow run with provenance tags, the upstream reuse check, the check that
every out of the new lock is on the remote), which is the overhead the ratio shows. Prints the
medians, the ratios (goal <= 1.5) and the helper's phases, timed from its `==> ` headers.

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


def raw_sequence(clone: Path) -> tuple[float, list[tuple[str, float]]]:
    dvc = str(BIN / "dvc")
    started = time.perf_counter()
    run([dvc, "pull", "data/prepared.csv"], clone)
    run([dvc, "repro", "-f", "--downstream", "train"], clone)
    run([dvc, "push"], clone)
    return time.perf_counter() - started, []


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


def print_phases(name: str, runs: list[list[tuple[str, float]]]) -> None:
    """Each phase, from one `==> ` header to the next (the first from the start), as a median."""
    if not runs or not runs[0]:
        return
    print(f"{name} phases (median seconds):")
    labels = ["(start, the project read)"] + [label for label, _ in runs[0][:-1]]
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
        sides["ci"] = lambda clone: master_build(clone, tracking_uri, ROOT)
        if options.compare:
            before = snapshot(base, options.compare)
            sides[f"ci@{options.compare}"] = lambda clone: master_build(clone, tracking_uri, before)
        # A first build of each helper creates MLflow's sqlite schema and the bytecode caches.
        for name, side in sides.items():
            if name != "raw":
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
    raw_s = statistics.median(times["raw"])
    print(f"foreach shape (train@small, train@large + downstream evaluate), {options.rounds} rounds, sides rotating")
    print(f"raw dvc pull + repro -f --downstream + push:  median {raw_s:.2f} s")
    for name in names[1:]:
        median = statistics.median(times[name])
        verdict = "ok" if median / raw_s <= GOAL_RATIO else "MISSED"
        print(
            f"{'ci-helpers master-build (' + name + ')':<45} median {median:.2f} s, ratio {median / raw_s:.2f} ({verdict})"
        )
    print(f"load average at the end: {' '.join(f'{load:.1f}' for load in os.getloadavg())} ({os.cpu_count()} cpus)")
    for name in names[1:]:
        print_phases(name, marks[name])


if __name__ == "__main__":
    main()
