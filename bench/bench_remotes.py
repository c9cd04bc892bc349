"""Benchmark: pr-validate on each DVC remote type this machine can serve, beside the raw DVC work.

For each remote type in REMOTES (a registry: add a type by name, with a function that
starts its server and returns its tests.remotes.contract.RemoteKind), the example housing project
is built and pushed to a fresh store once (tests/remotes/contract.py's template). Each round, from
fresh clones of pr-better (empty DVC caches), alternating which side goes first:
  pr-validate:  ci-helpers pr-validate --no-track       (preflight, push check, targeted pull,
                                                         evaluation, gate, report)
  raw dvc:      dvc status -c  +  dvc pull <the targets evaluation needs>
Prints, per remote, the median of each side and their ratio. All servers listen on 127.0.0.1.

Run: .venv/bin/python bench/bench_remotes.py [--rounds 3] [--remotes ssh,webdav]
"""

from __future__ import annotations

import argparse
import os
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

from tests.remotes.contract import RemoteKind, RemoteProject, build_template  # noqa: E402

DVC, CI_HELPERS = str(BIN / "dvc"), str(BIN / "ci-helpers")
TARGETS = ("models/model.pkl", "data/features/test.csv")  # what the housing evaluate stage reads
os.environ.update(bench_env(PYTHONPATH=str(ROOT)))
for name in ("MLFLOW_TRACKING_URI", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
    os.environ.pop(name, None)


def _ssh(base: Path) -> tuple[RemoteKind, Callable[[], None]]:
    from tests.remotes.kinds import ssh_kind
    from tests.support.remote_servers import start_sshd

    server = start_sshd(base / "sshd")
    (base / "ssh-stores").mkdir()
    return ssh_kind(server, base / "ssh-stores"), server.stop


def _webdav(base: Path) -> tuple[RemoteKind, Callable[[], None]]:
    from tests.remotes.kinds import webdav_kind
    from tests.support.remote_servers import start_webdav

    server = start_webdav(base / "wsgidav", "bench-dav-password")
    return webdav_kind(server), server.stop


def _azure(base: Path) -> tuple[RemoteKind, Callable[[], None]]:
    from tests.remotes.cloud_kinds import azure_kind
    from tests.support.cloud_emulators import start_azurite

    server = start_azurite(base / "azurite")
    return azure_kind(server), server.stop


def _gs(base: Path) -> tuple[RemoteKind, Callable[[], None]]:
    from tests.remotes.cloud_kinds import gcs_kind
    from tests.support.cloud_emulators import start_gcs_emulator

    server = start_gcs_emulator(base / "gcs")
    (base / "gcs-keys").mkdir()
    return gcs_kind(server, base / "gcs-keys"), server.stop


# remote type -> start its server under a folder: (its RemoteKind, stop)
REMOTES: dict[str, Callable[[Path], tuple[RemoteKind, Callable[[], None]]]] = {
    "ssh": _ssh,
    "webdav": _webdav,
    "azure": _azure,
    "gs": _gs,
}


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}) in {cwd}:\n{done.stdout}{done.stderr}")
    return elapsed


def bench_remote(name: str, base: Path, rounds: int) -> tuple[float, float]:
    kind, stop = REMOTES[name](base)
    try:
        (base / "template").mkdir(parents=True)
        template = build_template(kind, base / "template")
        project = RemoteProject.copy_of(template, base / "project")
        env = {**kind.env, "CI_HELPERS_NO_TRACK": ""}
        timed([CI_HELPERS, "pr-validate", "--no-track"], project.checkout("pr-better"), env)  # warm-up
        ours, raw = [], []
        for index in range(rounds):

            def ci() -> None:
                ours.append(timed([CI_HELPERS, "pr-validate", "--no-track"], project.checkout("pr-better"), env))

            def plain() -> None:
                clone = project.checkout("pr-better")
                raw_env = {**env, **kind.raw_dvc_env}
                raw.append(
                    timed([DVC, "status", "-c"], clone, raw_env) + timed([DVC, "pull", *TARGETS], clone, raw_env)
                )

            for side in (ci, plain) if index % 2 == 0 else (plain, ci):
                side()
        return statistics.median(ours), statistics.median(raw)
    finally:
        stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--remotes", default=",".join(REMOTES), help=f"of: {', '.join(REMOTES)}")
    options = parser.parse_args()
    names = [name for name in options.remotes.split(",") if name]
    unknown = sorted(set(names) - set(REMOTES))
    if unknown:
        raise SystemExit(f"unknown remote types {unknown}; known: {', '.join(REMOTES)}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            ours, raw = bench_remote(name, Path(folder) / name, options.rounds)
            rows.append((name, ours, raw))
    print(f"pr-validate vs dvc status -c + dvc pull {' '.join(TARGETS)}; medians of {options.rounds} rounds")
    print(f"{'remote':<8} {'pr-validate':>12} {'raw dvc':>10} {'ratio':>7}")
    for name, ours, raw in rows:
        print(f"{name:<8} {ours:>11.2f}s {raw:>9.2f}s {ours / raw:>6.2f}x")


if __name__ == "__main__":
    main()
