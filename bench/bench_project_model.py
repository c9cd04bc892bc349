"""Benchmark: reading the project model of a 200-item `foreach` project, beside `dvc stage list`.

Builds a throw-away git + DVC project whose `train` stage has `foreach` over 200 items (each with
a dvc.lock entry, written by `dvc commit`), then times, each in a fresh process as a CI step
would run them:
  model: `load_project()` (imports DVC, reads every dvc.yaml, dvc.lock and .dvc file, the graph)
  raw:   `dvc stage list --all`
Prints the medians, their ratio, and whether the model stays under the 2 s goal.

Run: .venv/bin/python bench/bench_project_model.py [--items 200] [--rounds 5]
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
GOAL_SECONDS = 2.0

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
    subprocess.run(args, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        build(root, options.items)
        model, raw = [], []
        for _ in range(options.rounds):
            model.append(timed([sys.executable, "-c", LOAD, str(root), str(options.items)], ROOT))
            raw.append(timed([str(BIN / "dvc"), "stage", "list", "--all"], root))
        model_s, raw_s = statistics.median(model), statistics.median(raw)
        print(f"project: {options.items}-item foreach + 1 downstream stage + 1 .dvc file, {options.rounds} rounds")
        print(f"load_project (fresh process):  median {model_s:.2f} s")
        print(f"dvc stage list --all:          median {raw_s:.2f} s")
        print(f"ratio model / dvc stage list:  {model_s / raw_s:.2f}")
        verdict = "ok" if model_s < GOAL_SECONDS else "MISSED"
        print(f"goal: under {GOAL_SECONDS:.0f} s -> {verdict}")


if __name__ == "__main__":
    main()
