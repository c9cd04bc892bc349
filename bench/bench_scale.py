"""Benchmark (issue 23): the push check and pr-validate as the training data grows, on a shared S3 remote.

Per N (--sizes, default 10000,20000,50000) a throw-away project is built once and pushed to a moto S3
server on 127.0.0.1 (bucket `bench-scale`, remote path `s3://bench-scale/dvc`):
  data/train/      N small CSV files (one row each, all different), `dvc add`-ed as one directory
  data/test.csv    a small test set, `dvc add`-ed
  train            deps data/train, src/train.py, params train.shrink -> out models/model.json
  evaluate         deps src/evaluate.py, models/model.json, data/test.csv -> metrics.json (cache: false)
The same remote path also holds a second, unrelated project: --shared-objects (default 30,000)
objects under `dvc/files/md5/`, written straight into moto's store, as another team's pushes would
have left them. Branches, each pushed (git and DVC):
  main             the project as built
  pr-same          (a) a new train.shrink, retrained: the training directory unchanged
  pr-ten           (b) 10 of the N training files changed (a row appended), retrained
Every timed command talks to S3 through a counting proxy (tests/support/proxy.py); a request is
a "list" when it is a GET on the bucket (ListObjectsV2), else "other" (HEAD, object GET, PUT).

PR side, --rounds rounds, each running both cases (a) and (b) and both sides from fresh clones (empty
DVC caches), in an order reversed every other round (after one untimed warm-up of each side):
  ours:  ci-helpers pr-validate --no-track --trend-builds 0 --eval-stage evaluate
             --threshold mse<=100 --max-regression mse=5 --baseline-ref main
  raw:   dvc status -c; dvc pull models/model.json data/test.csv; dvc repro -f -s evaluate;
         dvc metrics diff origin/main
MLflow is left out (--no-track, no trend): the raw sequence has no MLflow step, and the work that
grows with N is DVC's. Printed: medians, ratio ours/raw (goal <= 1.10 at every N), S3 requests
ours/raw (list + other), and case (b) / case (a) for pr-validate (goal <= 1.1).

Build side, --build-rounds rounds (default: --rounds), after an untimed warm-up; each round a new
main commit nudges train.shrink (a model no one pushed), then
  ours:  ci-helpers master-build --stage train --lock-mode none --threshold mse<=100 --trend-builds 0
         (MLflow on a sqlite file), in a fresh clone whose DVC cache holds the project's objects (as
         actions/cache restores it, so the N-file pull of train's input stays local). Its stderr is
         read line by line as it comes: the push phase is the time from its `==> Push CI-built
         outputs` header to its `==> Verify ...` header, the verification from there to the
         `mlops: done: pushed` line; the proxy's requests are split at the same lines.
  raw:   then, in the same clone, another train.shrink and `dvc repro -f -s train` (untimed: a
         model no one pushed), and `dvc push models/model.json` alone, timed.
Printed: the verification's time and requests against master-build's own push and the raw `dvc push`.
This times the verification as master-build runs it, inside the real command, not a stand-in such
as `check-remote` (which checks every out of the project, not only what a build pushed). Line
arrival times carry a few ms of pipe latency; the verification's end line is written right after it.

The code under test is taken from --code DIR (default: this checkout), or with --ref REF from
`git archive REF` (a branch another worktree is still editing), put first on the children's
PYTHONPATH. The machine's load (`uptime`) is printed before and after: the figures are wall times.
Set-up (generate, dvc add, dvc repro, upload, seed) is timed and printed. Every branch's DVC objects
are uploaded by copying the dev cache's objects into moto's store in this process (the keys and bytes
`dvc push` writes: the remote's layout is the cache's), since `dvc push -j 64` through moto takes
about 10 s per 1,000 files here; nothing is cached across runs (moto's store is in memory).

Run: .venv/bin/python -u bench/bench_scale.py [--sizes 10000,20000,50000] [--rounds 2] [--build-rounds N]
                                              [--shared-objects 30000] [--code DIR | --ref REF]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests
from _common import BIN, bench_env
from bench_targeted_pull import EVALUATE  # the same evaluate stage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.project import write_local_remote  # noqa: E402
from tests.support.proxy import Exchange, FlakyProxy  # noqa: E402
from tests.support.servers import FAKE_AWS, s3_client, start_moto  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request

DVC, CI_HELPERS = str(BIN / "dvc"), str(BIN / "ci-helpers")
BUCKET, REMOTE = "bench-scale", "storage"
REMOTE_URL = f"s3://{BUCKET}/dvc"
PR_GOAL, CHANGED_GOAL = 1.10, 1.10
EVAL_TARGETS = ("models/model.json", "data/test.csv")
THRESHOLD, REGRESSION = "mse<=100", "mse=5"

TRAIN = """\
import json
from pathlib import Path

import yaml

shrink = yaml.safe_load(Path("params.yaml").read_text())["train"]["shrink"]
rows = []
for path in sorted(Path("data/train").glob("*.csv")):
    for line in path.read_text().splitlines()[1:]:
        _, x, y = line.split(",")
        rows.append((float(x), float(y)))
n = len(rows)
mean_x = sum(x for x, _ in rows) / n
mean_y = sum(y for _, y in rows) / n
slope = sum((x - mean_x) * (y - mean_y) for x, y in rows) / sum((x - mean_x) ** 2 for x, _ in rows)
slope *= 1 - shrink
Path("models").mkdir(exist_ok=True)
Path("models/model.json").write_text(json.dumps({"slope": slope, "intercept": mean_y - slope * mean_x, "rows": n}))
"""


DVC_YAML = """\
stages:
  train:
    cmd: python src/train.py
    deps: [data/train, src/train.py]
    params: [train.shrink]
    outs: [models/model.json]
  evaluate:
    cmd: python src/evaluate.py
    deps: [src/evaluate.py, models/model.json, data/test.csv]
    metrics:
      - metrics.json:
          cache: false
"""

ENV = {**os.environ, **bench_env(AWS_EC2_METADATA_DISABLED="true"), **FAKE_AWS}
for _name in ("PYTHONDONTWRITEBYTECODE", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "GITHUB_ACTIONS"):
    ENV.pop(_name, None)
for _name in list(ENV):
    if _name.startswith(("CI_HELPERS_", "GITHUB_", "AWS_ENDPOINT_URL")):
        ENV.pop(_name)


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}) in {cwd}:\n{done.stdout}{done.stderr}")
    return done


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


# --- S3 requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requests:
    lists: int  # ListObjectsV2 pages
    other: int  # HEAD, object GET, PUT...

    @property
    def total(self) -> int:
        return self.lists + self.other

    def __str__(self) -> str:
        return f"{self.total} ({self.lists} list)"


def count(exchanges: list[Exchange]) -> Requests:
    lists = sum(1 for e in exchanges if e.method == "GET" and urlparse(e.path).path.rstrip("/") == f"/{BUCKET}")
    return Requests(lists, len(exchanges) - lists)


@dataclass(frozen=True)
class Sample:
    seconds: float
    requests: Requests


def measured(proxy: FlakyProxy, call: Callable[[], None]) -> Sample:
    before = len(proxy.exchanges)
    started = time.perf_counter()
    call()
    return Sample(time.perf_counter() - started, count(proxy.exchanges[before:]))


# --- the project -------------------------------------------------------------------------------


def point(index: int) -> str:
    x = index % 997 / 10
    return f"{x},{2.5 * x + 1 + (index * 7919 % 13 - 6) / 10:.2f}"


def train_file(index: int) -> str:
    return f"id,x,y\n{index},{point(index)}\n"  # the id keeps every file's content different


def write_params(dev: Path, shrink: float) -> None:
    (dev / "params.yaml").write_text(f"train:\n  shrink: {shrink}\n")


def _moto_store():
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def seed_shared_project(objects: int, seed: int) -> None:
    """Another project's pushes under the same remote path, written into moto's store directly
    (this process runs the server): the keys `dvc push` would write, without 30,000 PUTs."""
    store, rng = _moto_store(), random.Random(seed)
    for index in range(objects):
        body = f"other project {seed} object {index} {rng.random()}\n".encode()
        md5 = hashlib.md5(body).hexdigest()
        store.put_object(BUCKET, f"dvc/files/md5/{md5[:2]}/{md5[2:]}", body)


def upload_cache(dev: Path) -> int:
    """What `dvc push` of every branch uploads, written into moto's store directly: the remote's
    layout is the cache's (files/md5/XX/REST, `.dir` manifests included). A `dvc push` of 50,000
    files through moto takes minutes; this takes seconds."""
    store, objects = _moto_store(), sorted((dev / ".dvc" / "cache" / "files" / "md5").glob("*/*"))
    for path in objects:
        store.put_object(BUCKET, f"dvc/files/md5/{path.parent.name}/{path.name}", path.read_bytes())
    return len(objects)


@dataclass(frozen=True)
class Built:
    root: Path
    origin: Path
    dev: Path
    files: int
    seconds: dict[str, float]


def build(root: Path, files: int, moto: str, shared: int) -> Built:
    """main, pr-same and pr-ten, pushed to a bare origin and (every branch's DVC objects) to the
    shared remote."""
    dev, origin = root / "dev", root / "origin.git"
    seconds: dict[str, float] = {}

    def step(name: str, call: Callable[[], object]) -> None:
        started = time.perf_counter()
        call()
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

    dev.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main"], dev)
    run([DVC, "init", "-q"], dev)
    run([DVC, "remote", "add", "-d", REMOTE, REMOTE_URL], dev)
    run([DVC, "remote", "modify", REMOTE, "endpointurl", moto], dev)

    def generate() -> None:
        train = dev / "data" / "train"
        train.mkdir(parents=True)
        for index in range(files):
            (train / f"part-{index:05d}.csv").write_text(train_file(index))
        (dev / "data" / "test.csv").write_text("x,y\n" + "".join(point(index * 31 + 5) + "\n" for index in range(200)))
        (dev / "src").mkdir()
        (dev / "src" / "train.py").write_text(TRAIN)
        (dev / "src" / "evaluate.py").write_text(EVALUATE)
        (dev / "dvc.yaml").write_text(DVC_YAML)
        write_params(dev, 0.0)

    step("generate", generate)
    step("dvc add", lambda: run([DVC, "add", "-q", "data/train", "data/test.csv"], dev))
    step("dvc repro", lambda: run([DVC, "repro", "-q"], dev))
    run(["git", "add", "-A"], dev)
    run(["git", "commit", "-qm", "bench project"], dev)
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], root)
    run(["git", "remote", "add", "origin", str(origin)], dev)
    run(["git", "push", "-q", "-u", "origin", "main"], dev)

    # (a) the model retrained with another parameter, the training directory unchanged
    run(["git", "checkout", "-q", "-b", "pr-same", "main"], dev)
    write_params(dev, 0.01)
    step("dvc repro", lambda: run([DVC, "repro", "-q"], dev))
    run(["git", "commit", "-qam", "pr-same: shrink 0.01"], dev)
    run(["git", "push", "-q", "origin", "pr-same"], dev)

    # (b) 10 training files changed, retrained
    run(["git", "checkout", "-q", "-b", "pr-ten", "main"], dev)
    step("dvc repro", lambda: run([DVC, "checkout", "-q", "models/model.json"], dev))
    for index in range(0, files, files // 10)[:10]:
        with (dev / "data" / "train" / f"part-{index:05d}.csv").open("a") as handle:
            handle.write(f"{index},1.0,3.6\n")
    step("dvc add", lambda: run([DVC, "add", "-q", "data/train"], dev))
    step("dvc repro", lambda: run([DVC, "repro", "-q"], dev))
    run(["git", "commit", "-qam", "pr-ten: 10 training files changed"], dev)
    run(["git", "push", "-q", "origin", "pr-ten"], dev)
    run(["git", "checkout", "-q", "main"], dev)
    step("dvc repro", lambda: run([DVC, "checkout", "-q", "--force"], dev))
    step("upload", lambda: upload_cache(dev))
    step("seed shared", lambda: seed_shared_project(shared, files))
    return Built(root, origin, dev, files, seconds)


class Clones:
    def __init__(self, built: Built, proxy: FlakyProxy) -> None:
        self.built, self.proxy, self.made = built, proxy, 0

    def fresh(self, branch: str, with_cache: bool = False) -> Path:
        """A CI-style clone talking to S3 through the proxy; with_cache: the project's DVC objects
        restored into its cache, as actions/cache would (hard links: nothing is copied)."""
        self.made += 1
        clone = self.built.root / f"c{self.made}-{branch}"
        run(["git", "clone", "-q", "--branch", branch, str(self.built.origin), str(clone)], self.built.root)
        write_local_remote(clone, REMOTE_URL, endpoint=self.proxy.url)
        if with_cache:
            run(["cp", "-al", str(self.built.dev / ".dvc" / "cache"), str(clone / ".dvc" / "cache")], clone)
        return clone

    def remove(self, clone: Path) -> None:
        shutil.rmtree(clone, ignore_errors=True)


# --- the PR side -------------------------------------------------------------------------------

PR_VALIDATE = [
    CI_HELPERS,
    "pr-validate",
    "--no-track",
    "--trend-builds",
    "0",
    "--eval-stage",
    "evaluate",
    "--threshold",
    THRESHOLD,
    "--max-regression",
    REGRESSION,
    "--baseline-ref",
    "main",
]

RAW_PR = [
    [DVC, "status", "-c"],
    [DVC, "pull", *EVAL_TARGETS],
    [DVC, "repro", "-f", "-s", "evaluate"],
    [DVC, "metrics", "diff", "origin/main"],
]


def pr_validate(clone: Path) -> None:
    run(PR_VALIDATE, clone)


def raw_pr(clone: Path) -> None:
    for args in RAW_PR:
        run(args, clone)


@dataclass
class PRCase:
    ours: list[Sample]
    raw: list[Sample]


def median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def most(samples: list[Sample]) -> Requests:
    return max((s.requests for s in samples), key=lambda r: r.total)


def bench_pr(clones: Clones, branches: tuple[str, ...], rounds: int, with_raw: bool = True) -> dict[str, PRCase]:
    """Each round runs every branch's two sides, in an order that alternates between rounds, so
    that a change of the machine's load weighs on both cases and both sides alike."""
    cases = {branch: PRCase([], []) for branch in branches}
    runs = [
        (branch, name, call, samples)
        for branch, case in cases.items()
        for name, call, samples in (("ours", pr_validate, case.ours), ("raw", raw_pr, case.raw))
        if with_raw or name == "ours"
    ]
    for index in range(rounds):
        for branch, name, call, samples in runs if index % 2 == 0 else runs[::-1]:
            clone = clones.fresh(branch)
            samples.append(measured(clones.proxy, lambda c=clone, f=call: f(c)))
            print(f"  {branch} round {index + 1}: {name} {samples[-1].seconds:.2f}s, {samples[-1].requests}")
            clones.remove(clone)
    return cases


# --- the build side ----------------------------------------------------------------------------

PUSH_HEADER, VERIFY_HEADER, PUSHED_LINE = "==> Push CI-built outputs", "==> Verify ", "mlops: done: pushed"


@dataclass(frozen=True)
class BuildSample:
    push: Sample  # master-build's own `dvc push`
    verify: Sample  # its verification
    raw_push: Sample  # `dvc push models/model.json` alone, in another clone


def nudge_main(built: Built, value: float) -> None:
    """A new main commit whose model no one has pushed yet (params changed, lock not rebuilt)."""
    write_params(built.dev, value)
    run(["git", "commit", "-qam", f"main: shrink {value}"], built.dev)
    run(["git", "push", "-q", "origin", "main"], built.dev)


def master_build_phases(clone: Path, proxy: FlakyProxy) -> tuple[Sample, Sample]:
    """Run master-build, timestamping its stderr lines (and the proxy's request count) as they come."""
    args = [
        CI_HELPERS,
        "master-build",
        "--stage",
        "train",
        "--lock-mode",
        "none",
        "--threshold",
        THRESHOLD,
        "--trend-builds",
        "0",
        "--tracking-uri",
        f"sqlite:///{clone / 'mlflow.db'}",
    ]
    env = {**ENV, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(args, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout: list[str] = []
    reader = threading.Thread(target=lambda: stdout.append(process.stdout.read()), daemon=True)
    reader.start()
    marks: dict[str, tuple[float, int]] = {}
    lines = []
    for line in process.stderr:
        lines.append(line)
        for mark in (PUSH_HEADER, VERIFY_HEADER, PUSHED_LINE):
            if line.startswith(mark) and mark not in marks:
                marks[mark] = (time.perf_counter(), len(proxy.exchanges))
    process.wait()
    reader.join()
    if process.returncode or len(marks) < 3:
        raise SystemExit(
            f"master-build exited {process.returncode} (phases seen: {list(marks)}) in {clone}:\n"
            f"{''.join(stdout)}{''.join(lines[-40:])}"
        )

    def between(start: str, end: str) -> Sample:
        (t0, n0), (t1, n1) = marks[start], marks[end]
        return Sample(t1 - t0, count(proxy.exchanges[n0:n1]))

    return between(PUSH_HEADER, VERIFY_HEADER), between(VERIFY_HEADER, PUSHED_LINE)


def bench_build(clones: Clones, rounds: int, warm_up: bool) -> list[BuildSample]:
    built, samples = clones.built, []
    nudges = iter(range(1, 1000))
    for index in range(0 if warm_up else 1, rounds + 1):  # round 0: the untimed warm-up
        nudge_main(built, next(nudges) / 10_000)
        clone = clones.fresh("main", with_cache=True)
        push, verify = master_build_phases(clone, clones.proxy)
        # the raw side in the same clone (its inputs are in place): another model no one pushed
        write_params(clone, next(nudges) / 10_000)
        run([DVC, "repro", "-q", "-f", "-s", "train"], clone)
        raw_push = measured(clones.proxy, lambda c=clone: run([DVC, "push", "models/model.json"], c))
        clones.remove(clone)
        if index == 0:
            continue
        samples.append(BuildSample(push, verify, raw_push))
        print(
            f"  build round {index}: master-build push {push.seconds:.2f}s {push.requests}, "
            f"verify {verify.seconds:.2f}s {verify.requests}; raw dvc push {raw_push.seconds:.2f}s {raw_push.requests}"
        )
    return samples


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeResult:
    files: int
    setup: dict[str, float]
    same: PRCase
    ten: PRCase
    builds: list[BuildSample]


def code_under_test(code: Path) -> str:
    probe = "import ci_helpers, pathlib; print(pathlib.Path(ci_helpers.__file__).parent.parent)"
    return run([str(BIN / "python"), "-c", probe], code).stdout.strip()


def snapshot(ref: str, into: Path) -> str:
    """ci_helpers as committed at `ref` (any branch of this repository's worktrees), extracted
    into `into`, so that edits in progress in a worktree are not what is measured; its commit."""
    commit = run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], ROOT).stdout.strip()
    archive = subprocess.run(["git", "archive", commit, "ci_helpers"], cwd=ROOT, capture_output=True, check=True)
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def bench_size(
    base: Path,
    files: int,
    shared: int,
    rounds: int,
    build_rounds: int,
    moto: str,
    proxy: FlakyProxy,
    warm_up: bool,
    pr_only: bool = False,
) -> SizeResult:
    print(f"N={files:,}: building (shared remote: +{shared:,} objects of another project)...")
    built = build(base / f"n{files}", files, moto, shared)
    print("  set-up " + ", ".join(f"{k} {v:.1f}s" for k, v in built.seconds.items()))
    clones = Clones(built, proxy)
    for call in (pr_validate, raw_pr) if warm_up else ():  # bytecode compiled, not timed
        clone = clones.fresh("pr-same")
        call(clone)
        clones.remove(clone)
    cases = bench_pr(clones, ("pr-same", "pr-ten"), rounds, with_raw=not pr_only)
    same, ten = cases["pr-same"], cases["pr-ten"]
    builds = [] if pr_only else bench_build(clones, build_rounds, warm_up)
    shutil.rmtree(built.root, ignore_errors=True)
    return SizeResult(files, built.seconds, same, ten, builds)


def print_tables(results: list[SizeResult], rounds: int, build_rounds: int) -> None:
    print()
    print(
        f"medians of {rounds} rounds (master-build: {build_rounds}); S3 requests: the most in a round, "
        "total (of which ListObjectsV2 pages)"
    )
    print()
    print("| N files | case | pr-validate | raw | ratio | S3 requests ours | S3 requests raw |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        for label, case in (("(a) dir unchanged", r.same), ("(b) 10 files changed", r.ten)):
            if not case.raw:  # --pr-only
                print(f"| {r.files:,} | {label} | {median(case.ours):.1f} s | - | - | {most(case.ours)} | - |")
                continue
            ours, raw = median(case.ours), median(case.raw)
            print(
                f"| {r.files:,} | {label} | {ours:.1f} s | {raw:.1f} s | {ours / raw:.2f}x "
                f"| {most(case.ours)} | {most(case.raw)} |"
            )
    print()
    print(
        "| N files | pr-validate (b) / (a) | master-build push | its verification | verification requests "
        "| raw `dvc push` | verification / raw push |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        changed = median(r.ten.ours) / median(r.same.ours)
        if not r.builds:  # --pr-only
            print(f"| {r.files:,} | {changed:.2f}x | - | - | - | - | - |")
            continue
        push = statistics.median(b.push.seconds for b in r.builds)
        verify = statistics.median(b.verify.seconds for b in r.builds)
        raw_push = statistics.median(b.raw_push.seconds for b in r.builds)
        requests = max((b.verify.requests for b in r.builds), key=lambda q: q.total)
        print(
            f"| {r.files:,} | {changed:.2f}x | {push:.1f} s | {verify:.1f} s | {requests} "
            f"| {raw_push:.1f} s | {verify / raw_push:.2f}x |"
        )
    print()
    for r in results:
        changed = median(r.ten.ours) / median(r.same.ours)
        if r.same.raw:
            worst = max(median(c.ours) / median(c.raw) for c in (r.same, r.ten))
            print(
                f"N={r.files:,}: pr-validate/raw worst {worst:.2f}x (goal <= {PR_GOAL}: "
                f"{'ok' if worst <= PR_GOAL else 'MISSED'})"
            )
        print(
            f"N={r.files:,}: (b)/(a) {changed:.2f}x (goal <= {CHANGED_GOAL}: "
            f"{'ok' if changed <= CHANGED_GOAL else 'MISSED'})"
        )
        # a round's runs are seconds apart: their ratios suffer less from the load changing
        for side in ("ours", "raw") if r.same.raw else ("ours",):
            ratios = [b.seconds / a.seconds for a, b in zip(getattr(r.same, side), getattr(r.ten, side), strict=True)]
            print(f"  (b)/(a) per round, {side}: {', '.join(f'{x:.2f}x' for x in ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,20000,50000", help="comma-separated N (training files)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--build-rounds", type=int, default=0, help="master-build rounds (default: --rounds)")
    parser.add_argument("--shared-objects", type=int, default=30_000, help="the other project's objects")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose ci_helpers is measured")
    parser.add_argument("--ref", help="measure ci_helpers as committed at this git ref instead of --code")
    parser.add_argument(
        "--pr-only", action="store_true", help="pr-validate's (a) and (b) only: no raw side, no master-build"
    )
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",") if size]
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        base = Path(folder)
        if options.ref:
            code = base / "code"
            what = f"{options.ref} at {snapshot(options.ref, code)[:12]} (git archive)"
        else:
            code = options.code.resolve()
            what = f"{code} at " + run(["git", "log", "-1", "--format=%h %s"], code).stdout.strip()[:80]
        ENV["PYTHONPATH"] = str(code)
        if Path(code_under_test(code)) != code:
            raise SystemExit(f"ci_helpers does not resolve to {code}")
        print(f"code under test: {what}")
        print(f"load before: {load()}")
        # this machine sets PYTHONDONTWRITEBYTECODE=1: every process would compile its imports again
        ENV["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
        server, moto = start_moto()
        try:
            with FlakyProxy(moto) as proxy:
                # HTTP/1.1, so that the proxy answers `Expect: 100-continue`: s3fs sends it with
                # every PUT and would wait for ever on an HTTP/1.0 server
                proxy.server.RequestHandlerClass.protocol_version = "HTTP/1.1"
                for files in sizes:
                    s3 = s3_client(moto)
                    s3.create_bucket(Bucket=BUCKET)
                    results.append(
                        bench_size(
                            base,
                            files,
                            options.shared_objects,
                            options.rounds,
                            options.build_rounds or options.rounds,
                            moto,
                            proxy,
                            warm_up=not results,
                            pr_only=options.pr_only,
                        )
                    )
                    requests.post(f"{moto}/moto-api/reset", timeout=60)  # the next N starts on an empty store
                    print(f"  load: {load()}")
        finally:
            server.stop()
    print_tables(results, options.rounds, options.build_rounds or options.rounds)
    print(f"\nload after: {load()}; whole run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
