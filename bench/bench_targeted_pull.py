"""Benchmark (P4): `ci-helpers pull --eval-stage evaluate` beside a plain `dvc pull` of the same targets and
a full `dvc pull`, on a project with a big train set.

Builds a throw-away git + DVC project once (no network: a local-folder DVC remote, a bare git origin):
  data/train/       N small CSV files (default 10,000, one row each), `dvc add`-ed as one directory
  data/test.csv     a small test set, `dvc add`-ed
  train             deps data/train, src/train.py -> out models/model.json (a least-squares line)
  evaluate          deps src/evaluate.py, models/model.json, data/test.csv -> metrics.json (cache: false)
then `dvc repro`, `dvc push -j 8`, a git commit and a bare origin. Each round starts from a fresh
`git clone` of origin (an empty DVC cache) for each side, then times one command, the sides' order alternating between rounds:
  targeted: ci-helpers pull --eval-stage evaluate              (the model and the test set only)
  same:     dvc pull models/model.json data/test.csv          (the same targets, by hand)
  full:     dvc pull                                           (everything, the N train files included)
Goals: targeted <= 1.1x same (the helper's own cost), targeted <= 0.05x full.
After the targeted pull it asserts that the model and the test set are in the workspace and that no
file of data/train is in the workspace or in the cache; after the full pull, that all N files are.
Child processes keep their bytecode under the temporary folder (this machine sets
PYTHONDONTWRITEBYTECODE=1, which would make every dvc process compile its imports again).

Run: .venv/bin/python bench/bench_targeted_pull.py [--rounds 3] [--files 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, bench_env

DVC, CI_HELPERS = str(BIN / "dvc"), str(BIN / "ci-helpers")
GOAL_RATIO = 0.05
SAME_GOAL = 1.1
SAME_TARGETS = ["models/model.json", "data/test.csv"]
ENV = {**os.environ, **bench_env()}
for name in ("PYTHONDONTWRITEBYTECODE", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "GITHUB_ACTIONS"):
    ENV.pop(name, None)
for name in list(ENV):
    if name.startswith("CI_HELPERS_"):
        ENV.pop(name)
ENV["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this checkout's ci_helpers

TRAIN = """\
import json
from pathlib import Path

rows = []
for path in sorted(Path("data/train").glob("*.csv")):
    for line in path.read_text().splitlines()[1:]:
        x, y = line.split(",")
        rows.append((float(x), float(y)))
n = len(rows)
mean_x = sum(x for x, _ in rows) / n
mean_y = sum(y for _, y in rows) / n
slope = sum((x - mean_x) * (y - mean_y) for x, y in rows) / sum((x - mean_x) ** 2 for x, _ in rows)
Path("models").mkdir(exist_ok=True)
Path("models/model.json").write_text(json.dumps({"slope": slope, "intercept": mean_y - slope * mean_x, "rows": n}))
"""

EVALUATE = """\
import json
from pathlib import Path

model = json.loads(Path("models/model.json").read_text())
errors = []
for line in Path("data/test.csv").read_text().splitlines()[1:]:
    x, y = (float(value) for value in line.split(","))
    errors.append((model["slope"] * x + model["intercept"] - y) ** 2)
Path("metrics.json").write_text(json.dumps({"mse": sum(errors) / len(errors), "rows": len(errors)}))
"""

DVC_YAML = """\
stages:
  train:
    cmd: python src/train.py
    deps: [data/train, src/train.py]
    outs: [models/model.json]
  evaluate:
    cmd: python src/evaluate.py
    deps: [src/evaluate.py, models/model.json, data/test.csv]
    metrics:
      - metrics.json:
          cache: false
"""


def run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}) in {cwd}:\n{done.stdout}{done.stderr}")


def row(index: int) -> str:
    x = index % 997 / 10
    return f"{x},{2.5 * x + 1 + (index * 7919 % 13 - 6) / 10:.2f}\n"


def build(base: Path, files: int) -> tuple[Path, set[str]]:
    """The project, pushed to base/store, with its bare origin; returns origin and the train files' md5s."""
    dev, store, origin = base / "dev", base / "store", base / "origin.git"
    dev.mkdir()
    run(["git", "init", "-q", "-b", "main"], dev)
    run([DVC, "init", "-q"], dev)
    run([DVC, "remote", "add", "-d", "store", str(store)], dev)
    (dev / "data" / "train").mkdir(parents=True)
    train_md5s = set()
    for index in range(files):
        text = f"x,y\n{row(index)}"
        (dev / "data" / "train" / f"part-{index:05d}.csv").write_text(text)
        train_md5s.add(hashlib.md5(text.encode()).hexdigest())
    (dev / "data" / "test.csv").write_text("x,y\n" + "".join(row(index * 31 + 5) for index in range(200)))
    (dev / "src").mkdir()
    (dev / "src" / "train.py").write_text(TRAIN)
    (dev / "src" / "evaluate.py").write_text(EVALUATE)
    (dev / "dvc.yaml").write_text(DVC_YAML)
    run([DVC, "add", "-q", "data/train", "data/test.csv"], dev)
    run([DVC, "repro", "-q"], dev)
    run([DVC, "push", "-q", "-j", "8"], dev)
    run(["git", "add", "-A"], dev)
    run(["git", "commit", "-qm", "bench project"], dev)
    run(["git", "clone", "-q", "--bare", str(dev), str(origin)], base)
    return origin, train_md5s


def fresh_clone(base: Path, origin: Path, name: str) -> Path:
    clone = base / name
    run(["git", "clone", "-q", "--branch", "main", str(origin), str(clone)], base)
    return clone


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    run(args, cwd)
    return time.perf_counter() - started


def cached_md5s(clone: Path) -> set[str]:
    objects = clone / ".dvc" / "cache" / "files" / "md5"
    return {path.parent.name + path.name for path in objects.glob("*/*")} if objects.is_dir() else set()


def check_targeted(clone: Path, train_md5s: set[str]) -> None:
    assert (clone / "models" / "model.json").is_file(), "targeted pull did not fetch the model"
    assert (clone / "data" / "test.csv").is_file(), "targeted pull did not fetch the test set"
    in_workspace = list((clone / "data" / "train").glob("*")) if (clone / "data" / "train").exists() else []
    assert not in_workspace, f"targeted pull checked out {len(in_workspace)} files of data/train"
    in_cache = cached_md5s(clone) & train_md5s
    assert not in_cache, f"targeted pull fetched {len(in_cache)} train files into the cache"


def check_full(clone: Path, files: int) -> None:
    assert (clone / "models" / "model.json").is_file(), "dvc pull did not fetch the model"
    found = len(list((clone / "data" / "train").glob("*.csv")))
    assert found == files, f"dvc pull checked out {found} of {files} train files"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=10000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        ENV["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        started = time.perf_counter()
        origin, train_md5s = build(base, options.files)
        build_s = time.perf_counter() - started
        # One untimed targeted pull compiles ci_helpers' imports; the build already ran dvc's.
        warm_up = fresh_clone(base, origin, "warm-up")
        run([CI_HELPERS, "pull", "--eval-stage", "evaluate"], warm_up)
        check_targeted(warm_up, train_md5s)
        targeted, same, full = [], [], []
        sides = [
            (
                "targeted",
                [CI_HELPERS, "pull", "--eval-stage", "evaluate"],
                targeted,
                lambda c: check_targeted(c, train_md5s),
            ),
            ("same", [DVC, "pull", *SAME_TARGETS], same, lambda c: check_targeted(c, train_md5s)),
            ("full", [DVC, "pull"], full, lambda c: check_full(c, options.files)),
        ]
        for index in range(options.rounds):
            for name, args, into, check in sides if index % 2 == 0 else reversed(sides):
                clone = fresh_clone(base, origin, f"{name}-{index}")
                into.append(timed(args, clone))
                check(clone)
        targeted_s, same_s, full_s = statistics.median(targeted), statistics.median(same), statistics.median(full)
        ratio = targeted_s / full_s
        print(
            f"project: data/train of {options.files} files + data/test.csv, train -> evaluate, "
            f"built in {build_s:.1f} s; {options.rounds} rounds, each from a fresh clone"
        )
        print(
            f"targeted: ci-helpers pull --eval-stage evaluate:  median {targeted_s:.2f} s  ({' '.join(f'{t:.2f}' for t in targeted)})"
        )
        print(
            f"same:     dvc pull {' '.join(SAME_TARGETS)}:  median {same_s:.2f} s  ({' '.join(f'{t:.2f}' for t in same)})"
        )
        print(f"full:     dvc pull:                               median {full_s:.2f} s")
        same_ratio = targeted_s / same_s
        same_verdict = "ok" if same_ratio <= SAME_GOAL else "MISSED"
        print(
            f"ratio targeted / same targets:                    {same_ratio:.3f} (goal <= {SAME_GOAL}x -> {same_verdict})"
        )
        print(f"ratio targeted / full:                            {ratio:.3f}")
        verdict = "ok" if ratio <= GOAL_RATIO else "MISSED"
        print(f"goal: <= {GOAL_RATIO}x -> {verdict}")


if __name__ == "__main__":
    main()
