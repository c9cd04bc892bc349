"""Benchmark: a second `ci-helpers pr-validate` of the same PR with the first run's DVC cache restored.

The example project (examples/housing, main plus the pushed PR branch pr-better) has its DVC remote
on a moto S3 server on 127.0.0.1, reached through a counting proxy (tests/support/proxy.py), so the
bytes are measured at the S3 side: every answer's body, object GETs told apart from listings.
Each round:
  run 1: a fresh clone, an empty cache: `ci-helpers dvc-cache-key`, then `ci-helpers pr-validate`;
  run 2: another fresh clone, the first clone's cache folder (the key's `path`) copied into the
         second's, as actions/cache restores it under the same key; then `ci-helpers pr-validate`.
  run 3: a fresh clone, with a cache of main's pull targets restored (the action's `restore-keys`
         prefix match: another key of this OS), as on a PR's next push: only what changed downloads;
and, for reference, the raw `dvc pull` of the same targets in two more clones, cold and restored.
MLflow logging is off (--no-track) unless --track (the embedded sqlite store, a file per run).
A warm-up run (not timed) first, so that no timed run pays for compiling bytecode.
Prints per run the bytes downloaded from the remote and the time, the second run's time against
the first as a ratio (of the medians, and the median of each round's ratio), and the raw `dvc pull`
times. --n-samples N retrains the PR on N rows (the example has 3000), for bigger objects.

Run: .venv/bin/python bench/bench_dvc_cache.py [--rounds 3] [--n-samples N] [--track]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pr_validate import helper_workflow, timed  # sets the loopback-only environment

from ci_helpers.flows.pr import PRValidationOptions, validate_inputs
from tests.support.project import Project, build_template, set_train_params, sh, write_local_remote
from tests.support.proxy import Exchange, FlakyProxy
from tests.support.servers import s3_client, start_moto

BRANCH = "pr-better"
BIG_BRANCH = "pr-big"


@dataclass(frozen=True)
class Transfer:
    seconds: float
    objects: int  # object GETs answered
    object_bytes: int  # their bodies
    other_bytes: int  # listings and other metadata answers

    def describe(self) -> str:
        return (
            f"{self.object_bytes:>10,} B in {self.objects} objects (+{self.other_bytes:,} B of listings), "
            f"{self.seconds:6.2f}s"
        )


def measured(proxy: FlakyProxy, bucket: str, call: Callable[[], float]) -> Transfer:
    before = len(proxy.exchanges)
    seconds = call()
    seen: list[Exchange] = proxy.exchanges[before:]
    objects = [e for e in seen if e.method == "GET" and urlparse(e.path).path.startswith(f"/{bucket}/")]
    object_bytes = sum(e.sent for e in objects)
    return Transfer(seconds, len(objects), object_bytes, sum(e.sent for e in seen) - object_bytes)


def pr_validate(checkout: Path, tracking: str | None) -> float:
    if tracking:
        return helper_workflow(checkout, tracking)
    return timed(["ci-helpers", "pr-validate", "--pr", "1", "--no-track"], checkout)


def cache_path(checkout: Path) -> Path:
    """The key's `path` output, as the action hands it to actions/cache."""
    out = sh(["ci-helpers", "dvc-cache-key"], checkout).stdout
    return Path(dict(line.split("=", 1) for line in out.splitlines())["path"])


def add_big_pr(project: Project, samples: int) -> None:
    """A PR branch retrained on `samples` rows, pushed (git and DVC)."""
    dev = project.dev
    sh(["git", "checkout", "-q", "-b", BIG_BRANCH, BRANCH], dev)
    set_train_params(dev, n_samples=samples)
    sh(["dvc", "repro", "-q"], dev, {"MLFLOW_TRACKING_URI": f"sqlite:///{project.root / 'train.db'}"})
    sh(["git", "commit", "-qam", f"{BIG_BRANCH}: {samples} rows"], dev)
    sh(["git", "push", "-q", "origin", BIG_BRANCH], dev)
    sh(["dvc", "push", "-q"], dev)


@dataclass
class Rounds:
    first: list[Transfer]  # pr-validate, empty cache
    second: list[Transfer]  # pr-validate, the first run's cache restored
    prefix: list[Transfer]  # pr-validate, a cache of main's pull targets restored
    cold: list[Transfer]  # dvc pull, empty cache
    restored: list[Transfer]  # dvc pull, the first run's cache restored
    targets: list[str]
    cache_bytes: int  # what actions/cache would save


def run_rounds(project: Project, branch: str, proxy: FlakyProxy, rounds: int, tracking_dir: Path | None) -> Rounds:
    names = iter(range(10_000))

    def clone() -> Path:
        checkout = project.checkout(branch, name=f"c{next(names)}")
        write_local_remote(checkout, project.remote_url, endpoint=proxy.url)
        sh(["git", "fetch", "-q", "origin", "main:refs/remotes/origin/main"], checkout)
        return checkout

    def validate(checkout: Path) -> Transfer:
        tracking = f"sqlite:///{tracking_dir / (checkout.name + '.db')}" if tracking_dir else None
        return measured(proxy, project.bucket, partial(pr_validate, checkout, tracking))

    warm = clone()
    validate(warm)  # not timed: bytecode compiled, the OS's file cache warm
    inputs = validate_inputs(PRValidationOptions(repo=warm, eval_stage="evaluate"), need_remote=False)
    pull = ["dvc", "pull", *inputs.pull_targets]
    result = Rounds([], [], [], [], [], list(inputs.pull_targets), 0)
    main = project.checkout("main", name="main-cache")
    write_local_remote(main, project.remote_url, endpoint=proxy.url)
    sh(["dvc", "pull", "-q", *inputs.pull_targets], main)  # the cache a run on main leaves
    main_cache = cache_path(main)
    for i in range(rounds):
        one, two = clone(), clone()
        started = time.perf_counter()
        path_one, path_two = cache_path(one), cache_path(two)
        key_seconds = (time.perf_counter() - started) / 2
        result.first.append(validate(one))
        shutil.copytree(path_one, path_two, symlinks=True, dirs_exist_ok=True)  # what actions/cache restores
        result.second.append(validate(two))
        three = clone()
        shutil.copytree(main_cache, cache_path(three), symlinks=True, dirs_exist_ok=True)
        result.prefix.append(validate(three))
        cold, four = clone(), clone()
        result.cold.append(measured(proxy, project.bucket, partial(timed, pull, cold)))
        shutil.copytree(path_one, cache_path(four), symlinks=True, dirs_exist_ok=True)
        result.restored.append(measured(proxy, project.bucket, partial(timed, pull, four)))
        print(
            f"round {i + 1}: pr-validate {result.first[-1].seconds:.2f}s -> {result.second[-1].seconds:.2f}s "
            f"(prefix-restored {result.prefix[-1].seconds:.2f}s); "
            f"dvc pull {result.cold[-1].seconds:.2f}s -> {result.restored[-1].seconds:.2f}s; "
            f"dvc-cache-key {key_seconds:.2f}s",
            file=sys.stderr,
        )
        result.cache_bytes = sum(p.stat().st_size for p in path_one.rglob("*") if p.is_file())
    return result


def summary(runs: list[Transfer]) -> Transfer:
    """The median time, the most bytes."""
    return Transfer(
        statistics.median(r.seconds for r in runs),
        max(r.objects for r in runs),
        max(r.object_bytes for r in runs),
        max(r.other_bytes for r in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=0, help="retrain the PR on this many rows (0: as is)")
    parser.add_argument("--track", action="store_true", help="log to the embedded sqlite MLflow store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        # this machine sets PYTHONDONTWRITEBYTECODE=1: every process would compile its imports again
        os.environ.update({"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(base / "pycache")})
        server, endpoint = start_moto()
        s3_client(endpoint).create_bucket(Bucket="bench-template")
        try:
            (base / "template").mkdir()
            print("building the example project (main + one PR branch)...", file=sys.stderr)
            build_template(base / "template", endpoint, "bench-template", base / "train.db", full=False)
            project = Project.copy_of(base / "template", base / "p", endpoint, "bench-template")
            branch = BRANCH
            if args.n_samples:
                print(f"retraining the PR on {args.n_samples} rows...", file=sys.stderr)
                add_big_pr(project, args.n_samples)
                branch = BIG_BRANCH
            with FlakyProxy(endpoint) as proxy:
                rounds = run_rounds(project, branch, proxy, args.rounds, base if args.track else None)
        finally:
            server.stop()

    one, two = summary(rounds.first), summary(rounds.second)
    print(f"pull targets: {', '.join(rounds.targets)}; the DVC cache folder to save: {rounds.cache_bytes:,} B")
    print(f"pr-validate, empty cache:    {one.describe()}  (median time, most bytes of {args.rounds} rounds)")
    print(f"pr-validate, restored cache: {two.describe()}")
    # each round's two runs are seconds apart: their ratio suffers less from the machine's load changing
    ratios = [b.seconds / a.seconds for a, b in zip(rounds.first, rounds.second, strict=True)]
    print(
        f"-> second run / first run: {two.seconds / one.seconds:.3f} (medians), {statistics.median(ratios):.3f} "
        f"(median of the rounds' ratios {', '.join(f'{r:.2f}' for r in ratios)}); {two.object_bytes:,} B of objects"
    )
    print(f"pr-validate, main's cache restored (restore-keys): {summary(rounds.prefix).describe()}")
    print(f"dvc pull alone, empty cache:    {summary(rounds.cold).describe()}")
    print(f"dvc pull alone, restored cache: {summary(rounds.restored).describe()}")


if __name__ == "__main__":
    main()
