"""Benchmark: `ci-helpers master-build` on the `foreach` project shape, against the raw commands it wraps.

Builds the `foreach_list` shape of tests/shapes (prep -> train@small, train@large -> evaluate, raw
data `dvc add`-ed, a merged feature branch) with a bare git origin and a local-folder DVC remote
(no network). Each round starts from a fresh clone of origin main with an empty DVC cache and a
fresh copy of the remote, then times one side:
  raw:    dvc pull <train's inputs>; dvc repro -f --downstream train; dvc push
  ci:     ci-helpers master-build --stage train --lock-mode none (one sqlite MLflow store, created
          by a warm-up build outside the timed rounds)
ci does more than raw (an MLflow run with provenance tags, the upstream reuse check, the check that
every out of the new lock is on the remote), which is the overhead the ratio shows.

Run: .venv/bin/python bench/bench_master_build_foreach.py [--rounds 3]
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
from pathlib import Path

from _common import BIN, bench_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(bench_env())
for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "GITHUB_ACTIONS"):
    os.environ.pop(name, None)

from tests.shapes.builders import build_shape  # noqa: E402


def run(args: list[str], cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def fresh_clone(base: Path, origin: Path, store: Path, name: str) -> Path:
    """A CI-style checkout: a new clone of main, an empty cache, its own copy of the remote."""
    clone, remote = base / name, base / f"{name}-store"
    shutil.copytree(store, remote)
    run(["git", "clone", "-q", "--branch", "main", str(origin), str(clone)], base)
    run([str(BIN / "dvc"), "remote", "add", "--local", "-f", "-d", "bench", str(remote)], clone)
    return clone


def raw_sequence(clone: Path) -> float:
    dvc = str(BIN / "dvc")
    started = time.perf_counter()
    run([dvc, "pull", "data/prepared.csv"], clone)
    run([dvc, "repro", "-f", "--downstream", "train"], clone)
    run([dvc, "push"], clone)
    return time.perf_counter() - started


def master_build(clone: Path, tracking_uri: str) -> float:
    started = time.perf_counter()
    run(
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
        clone,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        store, origin = base / "store", base / "origin.git"
        build_shape("foreach_list", base / "dev", store, origin=origin)
        # A first master-build creates MLflow's sqlite schema; keep that one-off cost out of the rounds.
        tracking_uri = f"sqlite:///{base / 'mlflow.db'}"
        master_build(fresh_clone(base, origin, store, "warm-up"), tracking_uri)
        raw, ci = [], []
        for index in range(options.rounds):
            raw.append(raw_sequence(fresh_clone(base, origin, store, f"raw-{index}")))
            ci.append(master_build(fresh_clone(base, origin, store, f"ci-{index}"), tracking_uri))
        raw_s, ci_s = statistics.median(raw), statistics.median(ci)
        print(f"foreach shape (train@small, train@large + downstream evaluate), {options.rounds} rounds")
        print(f"raw dvc pull + repro -f --downstream + push:  median {raw_s:.2f} s")
        print(f"ci-helpers master-build:                      median {ci_s:.2f} s")
        print(f"ratio master-build / raw:                     {ci_s / raw_s:.2f}")


if __name__ == "__main__":
    main()
