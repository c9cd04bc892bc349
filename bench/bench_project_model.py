"""Benchmark: the project read of a 500-item `foreach` project, beside the DVC commands it stands for.

Builds a throw-away git + DVC project whose `train` stage has `foreach` over N items (default 500,
each with a dvc.lock entry, written by `dvc commit`: `dvc repro` of 500 items takes over 20 minutes),
then times two pairs, each side in a fresh process as a CI step runs it, the sides alternating
within each round:
  load:       `load_project()` (imports DVC, reads every dvc.yaml, dvc.lock and .dvc file, the graph)
              beside `dvc stage list --all`                       goal: <= 1.2x
  check-lock: `ci-helpers check-lock` (the project model, then the pipeline status)
              beside `dvc status`                                 goal: <= 1.1x
Prints the medians and their ratios. --code PATH times another checkout's ci_helpers (an older
commit's, for a before/after figure); by default this one's.

Run: python -u bench/bench_project_model.py [--items 500] [--rounds 5] [--code PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # else every process compiles its imports again
LOAD_GOAL, STATUS_GOAL = 1.2, 1.1

LOAD = """
import sys, time
from pathlib import Path
started = time.perf_counter()
from ci_helpers.project import load_project
project = load_project(Path(sys.argv[1]))
assert len(project.stages) >= int(sys.argv[2]), len(project.stages)
print(time.perf_counter() - started)
"""


def sh(*args: str, cwd: Path) -> None:
    subprocess.run(list(args), cwd=cwd, env=ENV, check=True, capture_output=True)


def build(root: Path, items: int) -> None:
    sh("git", "init", "-q", "-b", "main", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    (root / "data").mkdir()
    (root / "data" / "raw.csv").write_text("x,y\n1,2\n")
    sh("dvc", "add", "-q", "data/raw.csv", cwd=root)
    names = [f"model{i:03d}" for i in range(items)]
    (root / "params.yaml").write_text(
        "models:\n" + "".join(f"  {n}: {{depth: {i % 7 + 1}}}\n" for i, n in enumerate(names))
    )
    (root / "dvc.yaml").write_text(
        "vars:\n  - params.yaml\n"
        "stages:\n"
        "  train:\n"
        "    foreach: ${models}\n"
        "    do:\n"
        "      cmd: python -c \"open('models/${key}.txt', 'w').write('${item.depth}')\"\n"
        "      deps: [data/raw.csv]\n"
        "      params: ['models.${key}.depth']\n"
        "      outs: ['models/${key}.txt']\n"
        "  report:\n"
        "    cmd: python -c \"open('report.json', 'w').write('{}')\"\n"
        "    deps: [models]\n"
        "    metrics: [{report.json: {cache: false}}]\n"
    )
    (root / "models").mkdir()
    for i, name in enumerate(names):
        (root / "models" / f"{name}.txt").write_text(str(i % 7 + 1))
    (root / "report.json").write_text("{}")
    sh("dvc", "commit", "-q", "-f", cwd=root)  # a lock entry per item, without running 200 commands
    sh("git", "add", "-A", cwd=root)
    sh("git", "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "bench", cwd=root)


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=ENV, check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - started


def compare(name: str, ours: list[str], raw: list[str], root: Path, rounds: int, goal: float) -> None:
    timed(ours, root), timed(raw, root)  # untimed: bytecode compiled, files in the page cache
    ours_s, raw_s = [], []
    for index in range(rounds):
        pair = [(ours, ours_s), (raw, raw_s)]
        for args, into in pair if index % 2 == 0 else reversed(pair):
            into.append(timed(args, root))
    ours_m, raw_m = statistics.median(ours_s), statistics.median(raw_s)
    ratio = ours_m / raw_m
    print(f"{name}: ours median {ours_m:.2f} s, raw median {raw_m:.2f} s, ratio {ratio:.2f} (goal <= {goal}x)", end="")
    print(f" -> {'ok' if ratio <= goal else 'MISSED'}")
    print(f"  ours {' '.join(f'{t:.2f}' for t in ours_s)} | raw {' '.join(f'{t:.2f}' for t in raw_s)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose ci_helpers is timed")
    parser.add_argument("--only", choices=("load", "check-lock"), default=None)
    options = parser.parse_args()
    code = options.code.resolve()
    ENV["PYTHONPATH"] = str(code)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "project"
        root.mkdir()
        ENV["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        build(root, options.items)
        print(f"project: {options.items}-item foreach + 1 downstream stage + 1 .dvc file; code: {code}")
        print(f"{options.rounds} rounds, each side in a fresh process, sides alternating")
        if options.only in (None, "load"):
            load = [sys.executable, "-c", LOAD, str(root), str(options.items)]
            compare(
                "load_project / dvc stage list --all",
                load,
                ["dvc", "stage", "list", "--all"],
                root,
                options.rounds,
                LOAD_GOAL,
            )
        if options.only in (None, "check-lock"):
            check = [sys.executable, "-m", "ci_helpers", "check-lock"]
            compare("ci-helpers check-lock / dvc status", check, ["dvc", "status"], root, options.rounds, STATUS_GOAL)


if __name__ == "__main__":
    main()
