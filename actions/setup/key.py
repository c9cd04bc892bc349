"""The cache key, folder and interpreter of the actions' private ci_helpers venv, as step outputs.

Run by the Python the venv is built from (key.sh picks it), so that the key describes the venv
that setup.sh builds and `actions/cache` restores:
- OS, CPU arch and C library (glibc, or the macOS release): compiled wheels are built for them;
- the interpreter: implementation and major.minor in the readable part of the key; its patch
  version and its location in the digest. A venv links to its base interpreter by path, and
  `actions/cache` never saves again over a key that was hit: a key blind to a setup-python
  upgrade would restore the dead venv and rebuild it on every run. With them, the upgrade is one
  miss, whose rebuilt venv is saved;
- the dependency lock (actions/requirements.lock) and the DVC remote extras picked (`dvc-remotes`).

Stdlib only, runs on any Python >= 3.10; hashlib, not sha256sum (macOS has no sha256sum).
Env: MLOPS_DVC_REMOTES (the input), MLOPS_ACTIONS_HOME or RUNNER_TOOL_CACHE (where venvs live),
RUNNER_OS, GITHUB_OUTPUT (stdout outside Actions). `key.py --list-remotes` prints the extras.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "actions" / "requirements.lock"
KEY_PREFIX = "mlops-actions-venv"
DIGEST_LENGTH = 16
# DVC's own extras for its remote types (`pip install dvc[gs]`); pyproject.toml has one extra of
# the same name for each. S3 is always installed: it is the remote the product is built around,
# and boto3 (for MLflow's s3:// artifacts) already brings its largest part, botocore.
REMOTES = ("azure", "gdrive", "gs", "hdfs", "oss", "s3", "ssh", "webdav", "webhdfs")
ALWAYS = ("s3",)
WINDOWS_REFUSAL = (
    "::error title=mlops-actions::Windows runners are not supported (Linux and macOS are): "
    "run this job on ubuntu-latest or macos-latest"
)


class InputError(ValueError):
    """Raised when an input of the action cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Interpreter:
    """What of the interpreter (and the machine it runs on) a built venv depends on."""

    system: str  # Linux, Darwin
    machine: str  # x86_64, arm64, aarch64
    libc: str  # glibc-2.39, or macos-14 (wheels' platform tags follow it)
    implementation: str  # cpython, pypy
    version: tuple[int, int, int]
    executable: str  # the base interpreter the venv links to, symlinks resolved

    @classmethod
    def current(cls) -> Interpreter:
        base = getattr(sys, "_base_executable", None) or sys.executable
        if platform.system() == "Darwin":
            libc = "macos-" + platform.mac_ver()[0].split(".")[0]
        else:
            name, version = platform.libc_ver()
            libc = f"{name or 'unknown'}-{version or 'unknown'}"
        return cls(
            system=platform.system(),
            machine=platform.machine().lower(),
            libc=libc,
            implementation=sys.implementation.name,
            version=(sys.version_info.major, sys.version_info.minor, sys.version_info.micro),
            executable=os.path.realpath(base),
        )


def parse_remotes(text: str) -> tuple[str, ...]:
    """The `dvc-remotes` input, comma or space separated, as a sorted tuple of DVC extras (s3 always in)."""
    names = {name.lower() for name in re.split(r"[\s,]+", text) if name}
    unknown = sorted(names - set(REMOTES))
    if unknown:
        raise InputError(
            f"unknown dvc-remotes value(s) {', '.join(repr(name) for name in unknown)}: use any of "
            f"{', '.join(REMOTES)} (comma or space separated); local and http(s) remotes need none"
        )
    return tuple(sorted(names | set(ALWAYS)))


def cache_key(interpreter: Interpreter, lock: bytes, remotes: tuple[str, ...]) -> str:
    """mlops-actions-venv-<OS>-<arch>-<implementation><major.minor>-<digest of everything else>."""
    major, minor, _ = interpreter.version
    parts = {
        "libc": interpreter.libc,
        "python": ".".join(map(str, interpreter.version)),
        "executable": interpreter.executable,
        "lock": hashlib.sha256(lock).hexdigest(),
        "remotes": sorted(remotes),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:DIGEST_LENGTH]
    return "-".join(
        [
            KEY_PREFIX,
            interpreter.system,
            interpreter.machine,
            f"{interpreter.implementation}{major}.{minor}",
            digest,
        ]
    )


def venv_home(env: dict[str, str]) -> Path:
    """$MLOPS_ACTIONS_HOME, else $RUNNER_TOOL_CACHE/mlops-actions, else ~/.cache/mlops-actions."""
    if env.get("MLOPS_ACTIONS_HOME"):
        return Path(env["MLOPS_ACTIONS_HOME"])
    base = env.get("RUNNER_TOOL_CACHE") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "mlops-actions"


def step_outputs(env: dict[str, str], interpreter: Interpreter, lock: bytes) -> dict[str, str]:
    remotes = parse_remotes(env.get("MLOPS_DVC_REMOTES", ""))
    key = cache_key(interpreter, lock, remotes)
    return {
        "key": key,
        "venv": str(venv_home(env) / f"venv-{key.rsplit('-', 1)[1]}"),
        "python": interpreter.executable,
        "extras": ",".join(remotes),
    }


def main(argv: list[str]) -> int:
    if argv[1:] == ["--list-remotes"]:
        print(" ".join(REMOTES))
        return 0
    env = dict(os.environ)
    if env.get("RUNNER_OS") == "Windows" or sys.platform in ("win32", "cygwin", "msys"):
        print(WINDOWS_REFUSAL)
        return 2
    try:
        outputs = step_outputs(env, Interpreter.current(), LOCK.read_bytes())
    except InputError as error:
        print(f"::error title=mlops-actions::{error}")
        return 2
    target = env.get("GITHUB_OUTPUT")
    lines = "".join(f"{name}={value}\n" for name, value in outputs.items())
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(lines)
    else:
        sys.stdout.write(lines)
    print(f"ci_helpers venv key: {outputs['key']} (DVC remotes: {outputs['extras']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
