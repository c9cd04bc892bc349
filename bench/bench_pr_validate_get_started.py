"""Benchmark (P1): `ci-helpers pr-validate` on the get-started shape against the raw sequence it replaces.

The project is the test suite's `get_started` shape (tests/shapes/builders.py): data via a .dvc
file, prepare -> featurize -> train -> evaluate, its metrics declared at the top level and living in
the cached `eval/` directory; its DVC remote is a bucket on a moto S3 server on 127.0.0.1. Each round
starts from a fresh clone of the `pr-harmless` branch (an empty DVC cache) for each side:
  raw:    dvc pull eval/metrics.json; dvc status; dvc metrics diff origin/main
  helper: ci-helpers pr-validate --no-track --max-regression avg_prec.test=5% --baseline-ref origin/main
The helper does more than the raw sequence: it also checks that every out is on the remote (every
file of the directory outs), reads main's cached metrics through DVC and the params diff, and writes
the report. MLflow logging is off on the helper side (--no-track): the raw sequence logs nothing.
The sides alternate which goes first each round. Prints the medians and their ratio (goal <= 1.15).

Run: .venv/bin/python bench/bench_pr_validate_get_started.py [--rounds 5]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.shapes.builders import PR_BRANCHES, SHAPES, build_shape, tool_env  # noqa: E402
from tests.support.project import write_local_remote  # noqa: E402
from tests.support.servers import FAKE_AWS, s3_client, start_moto  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request

GOAL_RATIO = 1.15
SHAPE = SHAPES["get_started"]
BRANCH = PR_BRANCHES["harmless"]


def environment(base: Path) -> dict[str, str]:
    env = {
        **os.environ,
        **FAKE_AWS,
        **tool_env(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        # this machine sets PYTHONDONTWRITEBYTECODE=1: every process would compile its imports again
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(base / "pycache"),
    }
    for name in ("MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_BASE_REF"):
        env.pop(name, None)
    return {name: value for name, value in env.items() if not name.startswith("CI_HELPERS_")}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}) in {cwd}:\n{done.stdout}{done.stderr}")


def raw_sequence(checkout: Path, env: dict[str, str]) -> None:
    for args in (
        ["dvc", "pull", "-q", SHAPE.metrics_file],
        ["dvc", "status"],
        ["dvc", "metrics", "diff", "origin/main"],
    ):
        run(args, checkout, env)


def helper(checkout: Path, env: dict[str, str]) -> None:
    run(
        [
            "ci-helpers",
            "pr-validate",
            "--no-track",
            "--max-regression",
            f"{SHAPE.metric}=5%",
            "--baseline-ref",
            "origin/main",
            "--report-json",
            str(checkout / ".." / f"{checkout.name}.json"),
        ],
        checkout,
        env,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        env = environment(base)
        os.environ.update(FAKE_AWS)
        server, endpoint = start_moto()
        try:
            s3_client(endpoint).create_bucket(Bucket="bench-get-started")
            remote = "s3://bench-get-started/dvc"
            started = time.perf_counter()
            build_shape("get_started", base / "dev", remote, endpoint=endpoint, origin=base / "origin.git")
            print(f"built the get_started shape in {time.perf_counter() - started:.1f} s", file=sys.stderr)

            def clone(name: str) -> Path:
                target = base / name
                run(["git", "clone", "-q", "--branch", BRANCH, str(base / "origin.git"), str(target)], base, env)
                write_local_remote(target / SHAPE.project, remote, endpoint)
                return target

            for side in (raw_sequence, helper):  # untimed: compile the imports once
                side(clone(f"warm-{side.__name__}"), env)
            times: dict[str, list[float]] = {"raw": [], "helper": []}
            for index in range(rounds):
                pair = [("raw", raw_sequence), ("helper", helper)]
                for name, side in pair if index % 2 == 0 else pair[::-1]:
                    checkout = clone(f"{name}-{index}")
                    started = time.perf_counter()
                    side(checkout, env)
                    times[name].append(time.perf_counter() - started)
                    print(f"round {index + 1}: {name} {times[name][-1]:.2f} s", file=sys.stderr)
        finally:
            server.stop()
    raw_s, helper_s = statistics.median(times["raw"]), statistics.median(times["helper"])
    ratio = helper_s / raw_s
    print(f"get_started shape, {rounds} rounds, each from a fresh clone of {BRANCH}")
    print(f"raw:    dvc pull {SHAPE.metrics_file} + dvc status + dvc metrics diff:  median {raw_s:.2f} s")
    print(f"helper: ci-helpers pr-validate --no-track:                       median {helper_s:.2f} s")
    print(f"ratio helper / raw: {ratio:.3f} (goal <= {GOAL_RATIO}) -> {'ok' if ratio <= GOAL_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
