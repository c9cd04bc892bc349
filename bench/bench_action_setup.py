"""Benchmark: the actions' set-up (actions/setup/setup.sh: private venv with uv) with a cold and a
warm uv cache, against a plain `pip install` of the same requirements.

The benchmark itself sends no traffic: a wheelhouse of actions/requirements.lock is filled once
first (`pip download`, the same registry access .ci/run uses to install), then every timed install
reads only that folder (`--no-index --find-links`). "Cold" is an empty uv cache and a new venv;
"warm" is a new venv with the cache the cold run left (what actions/cache restores).

Run: .venv/bin/python bench/bench_action_setup.py [--rounds N] [--wheelhouse DIR]
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

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "actions" / "requirements.lock"
# The machine's own Python (with pip), not this uv venv's, which has no pip.
BASE_PYTHON = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, env={**os.environ, **env}, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wheelhouse", type=Path, default=Path(tempfile.gettempdir()) / "mlops-actions-wheelhouse")
    options = parser.parse_args()
    house = options.wheelhouse
    if not (house / ".complete").exists():
        print(f"filling the wheelhouse {house} (one-off, from the package registry)...", file=sys.stderr)
        house.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [BASE_PYTHON, "-m", "pip", "download", "-q", "-d", str(house), "-r", str(LOCK), "setuptools>=68", "wheel"],
            check=True,
        )
        (house / ".complete").touch()
    offline = {"UV_NO_INDEX": "1", "UV_FIND_LINKS": str(house), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(house)}
    cold, warm, pip = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for i in range(options.rounds):
            home = base / f"home-{i}"
            env = {**offline, "MLOPS_HOME": str(home), "UV_CACHE_DIR": str(home / "uv-cache")}
            cold.append(timed(["bash", str(ROOT / "actions/setup/setup.sh")], {**env, "MLOPS_VENV": str(home / "v1")}))
            warm.append(timed(["bash", str(ROOT / "actions/setup/setup.sh")], {**env, "MLOPS_VENV": str(home / "v2")}))
            venv = base / f"pip-{i}"
            subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True)
            pip.append(
                timed(
                    [str(venv / "bin/pip"), "install", "-q", "-r", str(LOCK), str(ROOT)],
                    {**offline, "PIP_NO_CACHE_DIR": "1"},
                )
            )
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(venv, ignore_errors=True)
            print(f"round {i + 1}: cold {cold[-1]:.1f}s warm {warm[-1]:.1f}s pip {pip[-1]:.1f}s", file=sys.stderr)
    c, w, p = statistics.median(cold), statistics.median(warm), statistics.median(pip)
    print(f"action set-up, cold uv cache: median {c:.1f}s (goal <= 15 s); ratio to plain pip {c / p:.2f}")
    print(f"action set-up, warm uv cache: median {w:.1f}s (goal <= 3 s); ratio to plain pip {w / p:.2f}")
    print(f"plain pip install of the same requirements: median {p:.1f}s")


if __name__ == "__main__":
    main()
