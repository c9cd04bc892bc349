"""Benchmark P3: the actions' set-up (actions/setup/key.sh, then setup.sh, as every action runs
them) cold and warm, and the size of the private venv. Goals: <= 10 s cold, <= 2 s warm, <= 250 MB.

- cold: what a runner does on a cache miss. No venv, an empty uv cache, every wheel fetched and
  installed; the runner's uv is used. "cold, no uv" also installs the pinned uv with pip first
  (a runner without uv on PATH).
- warm: actions/cache restored the venv: the scripts check it and reuse it. The restore itself
  happens in actions/cache, before the scripts; its local half (unpacking the cache archive) is
  timed beside it, from an archive made as actions/cache makes it (tar | zstd).
- size: the venv on disk (du), and that archive, which is what a restore downloads.

The timings send no traffic: a wheelhouse of exactly what the venv installs is filled once first
(`pip download` of the lock's pins for this platform, from the package index), then every timed
install reads only that folder (uv offline, --find-links). A cold run on a real runner adds the
download of about the archive's size.

Run: .venv/bin/python bench/bench_action_setup.py [--rounds N] [--remotes s3] [--wheelhouse DIR]
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
UV_LOCK = ROOT / "actions" / "setup" / "uv-bootstrap.lock"
KEY_SH = ROOT / "actions" / "setup" / "key.sh"
SETUP_SH = ROOT / "actions" / "setup" / "setup.sh"
# The machine's own Python (with pip), not this uv venv's, which has no pip.
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
GOALS = {"cold": 10.0, "warm": 2.0, "size": 250.0}


def run(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def uv() -> str:
    found = ROOT / ".venv" / "bin" / "uv"
    return str(found) if found.exists() else shutil.which("uv") or sys.exit("no uv (bash scripts/setup.sh)")


def fill_wheelhouse(house: Path, remotes: str) -> None:
    """The wheels of this platform's resolution of the venv, hashes checked, plus the pinned uv."""
    stamp = house / f".complete-{remotes}"
    if stamp.exists():
        return
    print(f"filling the wheelhouse {house} (one-off, from the package index)...", file=sys.stderr)
    house.mkdir(parents=True, exist_ok=True)
    selection = house / f"selection-{remotes}.txt"
    extras = [arg for name in remotes.split(",") for arg in ("--extra", name)]
    run(
        [
            uv(),
            "pip",
            "compile",
            "--quiet",
            "--no-config",
            "--python",
            BASE_PYTHON,
            "--generate-hashes",
            "-c",
            str(LOCK),
            str(ROOT / "pyproject.toml"),
            *extras,
            "-o",
            str(selection),
        ],
        dict(os.environ),
    )

    def pip_download(*args: str) -> None:
        run(
            [BASE_PYTHON, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d", str(house), *args],
            dict(os.environ),
        )

    # what uv builds those in (build isolation, offline from the wheelhouse too)
    pip_download("--only-binary", ":all:", "setuptools>=68", "wheel")
    for requirements in (selection, UV_LOCK):
        # a few pins have no wheel (antlr4-python3-runtime 4.9.3): uv builds them
        pip_download("--no-deps", "--prefer-binary", "-r", str(requirements))
    stamp.touch()


def set_up(env: dict[str, str], out: Path) -> float:
    """key.sh then setup.sh with key.sh's outputs, as the action's steps run them; seconds taken."""
    out.write_text("")
    start = time.perf_counter()
    run(["bash", str(KEY_SH)], {**env, "GITHUB_OUTPUT": str(out)})
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    step = {
        "MLOPS_VENV": outputs["venv"],
        "MLOPS_KEY": outputs["key"],
        "MLOPS_PYTHON": outputs["python"],
        "MLOPS_EXTRAS": outputs["extras"],
        "GITHUB_OUTPUT": os.devnull,
    }
    run(["bash", str(SETUP_SH)], {**env, **step})
    return time.perf_counter() - start


def disk_usage(path: Path) -> int:
    """Bytes on disk, each hard-linked file once, as du counts."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def runner_path(folder: Path, with_uv: bool) -> str:
    """A PATH as a runner's after actions/setup-python: the base interpreter as python3 first, the
    system tools, and uv (the runner's) or none."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "python3").symlink_to(BASE_PYTHON)
    if with_uv:
        (folder / "uv").symlink_to(uv())
    return os.pathsep.join([str(folder), "/usr/bin", "/bin"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--remotes", default="s3", help="the dvc-remotes input (comma separated)")
    parser.add_argument("--wheelhouse", type=Path, default=Path(tempfile.gettempdir()) / "mlops-actions-wheelhouse")
    options = parser.parse_args()
    fill_wheelhouse(options.wheelhouse, options.remotes)
    offline = {
        "UV_OFFLINE": "1",
        "UV_FIND_LINKS": str(options.wheelhouse),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(options.wheelhouse),
        "MLOPS_DVC_REMOTES": options.remotes,
    }
    times: dict[str, list[float]] = {"cold": [], "cold, no uv": [], "warm": [], "unpack": []}
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        for i in range(options.rounds):
            round_dir = base / f"round-{i}"
            (round_dir / "temp").mkdir(parents=True)
            env = {
                **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},  # unset on runners
                **offline,
                "PATH": runner_path(round_dir / "bin", with_uv=True),
                "MLOPS_ACTIONS_HOME": str(round_dir / "home"),
                "UV_CACHE_DIR": str(round_dir / "uv-cache"),
                "RUNNER_TEMP": str(round_dir / "temp"),
            }
            times["cold"].append(set_up(env, round_dir / "out"))
            times["warm"].append(set_up(env, round_dir / "out"))
            (venv,) = (round_dir / "home").glob("venv-*")
            size = disk_usage(venv)
            archive = round_dir / "cache.tzst"  # as actions/cache packs a path: tar, then zstd
            subprocess.run(f"tar -cf - -C {venv.parent} {venv.name} | zstd -q -T0 -o {archive}", shell=True, check=True)
            shutil.rmtree(venv)
            start = time.perf_counter()
            subprocess.run(f"zstd -q -d -c {archive} | tar -xf - -C {venv.parent}", shell=True, check=True)
            times["unpack"].append(time.perf_counter() - start)
            bare = {
                **env,
                "PATH": runner_path(round_dir / "bin-no-uv", with_uv=False),
                "MLOPS_ACTIONS_HOME": str(round_dir / "home-no-uv"),
                "UV_CACHE_DIR": str(round_dir / "uv-cache-no-uv"),
            }
            times["cold, no uv"].append(set_up(bare, round_dir / "out"))
            archive_size = archive.stat().st_size
            shutil.rmtree(round_dir, ignore_errors=True)
            print(
                f"round {i + 1}: cold {times['cold'][-1]:.1f} s, cold without uv {times['cold, no uv'][-1]:.1f} s, "
                f"warm {times['warm'][-1]:.2f} s, unpack {times['unpack'][-1]:.1f} s; "
                f"venv {size / 1e6:.0f} MB, archive {archive_size / 1e6:.0f} MB",
                file=sys.stderr,
            )
    cold, warm = statistics.median(times["cold"]), statistics.median(times["warm"])
    print(f"P3, dvc-remotes {options.remotes}, {options.rounds} rounds, medians:")
    print(f"  set-up, cold (cache miss, uv on PATH): {cold:.1f} s (goal <= {GOALS['cold']:.0f} s)")
    print(f"  set-up, cold, uv installed first:      {statistics.median(times['cold, no uv']):.1f} s")
    print(f"  set-up, warm (venv restored):          {warm:.2f} s (goal <= {GOALS['warm']:.0f} s)")
    print(f"  unpacking the restored cache archive:  {statistics.median(times['unpack']):.1f} s (actions/cache's part)")
    print(
        f"  venv size: {size / 1e6:.0f} MB on disk (goal <= {GOALS['size']:.0f} MB); cache archive {archive_size / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
