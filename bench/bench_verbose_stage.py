"""Benchmark (issue 21, item 3): a stage that prints ~100 MB of log lines, run raw and through ci-helpers.

The project: git + DVC, a local-folder DVC remote, one stage `train` (python train.py) that prints
--megabytes of log lines (85-byte lines, a planted secret among them) and writes model.txt and
metrics.json. All output of every side goes to a log file, as a CI runner's log collector takes it.
Sides, alternating which goes first each round, after one untimed warm-up of each:
  raw:     dvc repro --force train
  runner:  the same through the runner, as master-build calls it (ci_helpers.adapters.dvc.repro, the
           CLI's redacting streams installed), in a python process of its own
  build:   ci-helpers master-build --stage train --lock-mode none (embedded sqlite MLflow store)
  raw-quiet, runner-quiet, build-quiet: the same with a stage that prints nothing (fixed costs)
The requirement ("a stage printing 100 MB costs <= 1.2x plain `dvc repro`") is about the stage's cost:
runner / raw. The whole command is shown too: (build - build-quiet) is what printing 100 MB costs
master-build, against (raw - raw-quiet) for plain dvc. Peak RSS is each ci_helpers process's own
(ru_maxrss of the process, the stage's children excluded), for the verbose and the quiet stage.
Also checks that the planted secret reached none of ci_helpers' logs (raw dvc prints it).

Run: .venv/bin/python bench/bench_verbose_stage.py [--rounds 3] [--megabytes 100]
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

from _common import BIN, bench_env

ROOT = Path(__file__).resolve().parents[1]
GOAL_RATIO = 1.2
SECRET = "bench-PLANTED-secret-4242"
LINE_BYTES = 85

TRAIN = """\
import json, os, sys
lines = int(os.environ.get("BENCH_LINES", "0"))
out = sys.stdout
for i in range(lines):
    out.write(f"step {i:09d}: loss=0.123456 acc=0.987654 lr=0.00100 grad_norm=1.2345 tokens=4096 ok\\n")
    if i == lines // 2:
        out.write("aws key " + os.environ["AWS_SECRET_ACCESS_KEY"] + "\\n")
open("model.txt", "w").write("model\\n")
json.dump({"score": 0.9}, open("metrics.json", "w"))
"""

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    outs: [model.txt]
    metrics:
      - metrics.json:
          cache: false
"""

# The runner side: the CLI's streams, then the one call master-build makes for the forced stage.
RUNNER = """\
import atexit, resource, sys
from pathlib import Path
atexit.register(lambda: open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
from ci_helpers.adapters.redact import install_redacting_streams
install_redacting_streams()
from ci_helpers.adapters.dvc import repro
repro(Path("."), ["train"], ["--force"])
"""

# master-build, with its peak RSS written at exit (click's main ends in sys.exit).
BUILD = """\
import atexit, resource, sys
rss = sys.argv.pop(1)
atexit.register(lambda: open(rss, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
from ci_helpers.cli import main
sys.argv[0] = "ci-helpers"
main()
"""


def sh(args: list[str], cwd: Path, **extra: str) -> None:
    subprocess.run(args, cwd=cwd, env={**os.environ, **extra}, check=True, capture_output=True)


def make_project(base: Path) -> Path:
    project = base / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    (project / "dvc.yaml").write_text(DVC_YAML)
    sh(["git", "init", "-q", "-b", "main"], project)
    sh([str(BIN / "dvc"), "init", "-q"], project)
    sh([str(BIN / "dvc"), "remote", "add", "-d", "local", str(base / "remote")], project)
    sh([str(BIN / "dvc"), "repro", "-q"], project)
    sh([str(BIN / "dvc"), "push", "-q"], project)
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-qm", "project"], project)
    return project


def timed(args: list[str], cwd: Path, log: Path, lines: int) -> float:
    env = {**os.environ, "BENCH_LINES": str(lines)}
    with log.open("wb") as sink:
        started = time.perf_counter()
        done = subprocess.run(args, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, check=False)
        seconds = time.perf_counter() - started
    if done.returncode:
        tail = log.read_bytes()[-3000:].decode(errors="replace")
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}:\n{tail}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=100)
    options = parser.parse_args()
    lines = options.megabytes * 1_000_000 // LINE_BYTES
    os.environ.update(bench_env(PYTHONPATH=str(ROOT), AWS_SECRET_ACCESS_KEY=SECRET))
    for name in list(os.environ):
        if name.startswith(("CI_HELPERS_", "MLFLOW_TRACKING_", "GITHUB_")):
            os.environ.pop(name)
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        project = make_project(base)
        build = [
            str(BIN / "python"),
            "-c",
            BUILD,
            str(base / "rss-build"),
            "master-build",
            "--stage",
            "train",
            "--lock-mode",
            "none",
            "--tracking-uri",
            f"sqlite:///{base / 'mlflow.db'}",
        ]
        sides = {
            "raw": ([str(BIN / "dvc"), "repro", "--force", "train"], lines),
            "runner": ([str(BIN / "python"), "-c", RUNNER, str(base / "rss-runner")], lines),
            "build": (build, lines),
            "raw-quiet": ([str(BIN / "dvc"), "repro", "--force", "train"], 0),
            "runner-quiet": ([str(BIN / "python"), "-c", RUNNER, str(base / "rss-runner")], 0),
            "build-quiet": (build, 0),
        }
        results: dict[str, list[float]] = {name: [] for name in sides}
        rss: dict[str, list[int]] = {"runner": [], "build": [], "build-quiet": []}
        for index in range(-1, options.rounds):  # -1: the warm-up
            order = list(sides) if index % 2 == 0 else list(reversed(sides))
            for name in order:
                args, count = sides[name]
                log = base / f"{name}.log"
                seconds = timed(args, project, log, count)
                with log.open("rb") as shown:  # raw dvc shows it; ours must not
                    leaked = any(SECRET.encode() in block for block in iter(lambda: shown.read(1 << 24), b""))
                if leaked and not name.startswith("raw"):
                    raise SystemExit(f"the planted secret is in the log of {name}")
                if name in rss:
                    rss[name].append(int((base / f"rss-{name.split('-')[0]}").read_text()))
                if index >= 0:
                    results[name].append(seconds)
                size = log.stat().st_size / 1e6
                print(f"round {index + 1}: {name:<12} {seconds:6.2f} s   log {size:6.1f} MB", file=sys.stderr)
    median = {name: statistics.median(values) for name, values in results.items()}
    ratio = median["runner"] / median["raw"]
    print(f"stage printing {options.megabytes} MB ({lines} lines), {options.rounds} rounds, medians:")
    for name, seconds in median.items():
        print(f"  {name:<12} {seconds:6.2f} s   ({', '.join(f'{v:.2f}' for v in results[name])})")
    verdict = "ok" if ratio <= GOAL_RATIO else "MISSED"
    printing = (median["runner"] - median["runner-quiet"]) / (median["raw"] - median["raw-quiet"])
    print(f"printing alone (each side minus its quiet run): runner / raw = {printing:.2f}x")
    print(f"the stage's cost: runner / raw dvc repro = {ratio:.2f}x (goal <= {GOAL_RATIO}) -> {verdict}")
    extra_build = median["build"] - median["build-quiet"]
    extra_raw = median["raw"] - median["raw-quiet"]
    print(
        f"whole command: master-build {median['build']:.2f} s (quiet stage {median['build-quiet']:.2f} s); "
        f"printing costs it {extra_build:.2f} s against {extra_raw:.2f} s for plain dvc repro "
        f"({extra_build / extra_raw:.2f}x)"
    )
    for name, values in rss.items():
        print(f"peak RSS of the ci_helpers process, {name}: max {max(values) / 1024:.0f} MB")
    print(
        f"the planted secret reached no log of ci_helpers; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
