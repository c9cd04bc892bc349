"""actions/requirements.lock (and the uv the set-up bootstraps) match pyproject.toml: regenerated
offline from uv's cache (scripts/setup.sh fills it), they come out byte for byte the same. A
dependency changed in pyproject.toml without `bash scripts/lock-actions.sh` fails here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "actions" / "requirements.lock"
UV_LOCK = ROOT / "actions" / "setup" / "uv-bootstrap.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.M)
SCRIPT_FILES = [
    "pyproject.toml",
    "actions/requirements.lock",
    "actions/setup/uv-bootstrap.lock",
    "actions/setup/key.py",
    "scripts/lock-actions.sh",
]


def _uv() -> str:
    uv = ROOT / ".venv" / "bin" / "uv"
    return str(uv) if uv.exists() else shutil.which("uv") or "uv"


def _check(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "UV": _uv()}
    return subprocess.run(
        ["bash", str(root / "scripts" / "lock-actions.sh"), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins(path: Path) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for name, version in PIN.findall(path.read_text()):
        pins.setdefault(canonicalize_name(name), set()).add(version)
    return pins


def test_the_locks_match_pyproject():
    result = _check(ROOT)
    assert result.returncode == 0, result.stderr[-4000:]


def test_the_check_fails_when_pyproject_changes_without_relocking(tmp_path):
    for name in SCRIPT_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '    "stamina>=24.2",\n' in text
    pyproject.write_text(text.replace('    "stamina>=24.2",\n', ""))

    result = _check(tmp_path)

    assert result.returncode == 1, result.stderr[-4000:]
    assert "actions/requirements.lock does not match pyproject.toml" in result.stderr
    assert "run bash scripts/lock-actions.sh" in result.stderr
    assert "-stamina==" in result.stderr


def test_every_requirement_the_actions_install_is_pinned_and_hashed():
    """The cheap half of the match, readable without uv: each requirement of the venv's roots
    (the dependencies and the DVC remote extras) has a pin in the lock that satisfies it, and
    every pin carries hashes."""
    project = _pyproject()
    remotes = subprocess.run(
        [sys.executable, str(ROOT / "actions" / "setup" / "key.py"), "--list-remotes"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    roots = list(project["dependencies"]) + [
        line for name in remotes for line in project["optional-dependencies"][name]
    ]
    pins = _pins(LOCK)
    for line in roots:
        requirement = Requirement(line)
        versions = pins.get(canonicalize_name(requirement.name), set())
        assert versions, f"{requirement.name} (pyproject.toml) is not in {LOCK.name}: run bash scripts/lock-actions.sh"
        assert any(requirement.specifier.contains(v, prereleases=True) for v in versions), (
            f"{LOCK.name} pins {requirement.name} {sorted(versions)}, outside pyproject.toml's {line!r}: "
            "run bash scripts/lock-actions.sh"
        )
    text = LOCK.read_text()
    pin_lines = [line for line in text.splitlines() if PIN.match(line)]
    hashed = re.findall(r"^[A-Za-z0-9][^\n]*==[^\n]*\\\n    --hash=sha256:[0-9a-f]{64}", text, re.M)
    assert len(hashed) == len(pin_lines), f"{len(pin_lines) - len(hashed)} pin(s) without hashes in {LOCK.name}"


def test_the_bootstrapped_uv_is_the_pinned_one():
    pinned = [line for line in _pyproject()["optional-dependencies"]["test"] if line.startswith("uv==")]
    assert pinned, "pyproject.toml's test extra pins no uv (scripts/lock-actions.sh resolves with it)"
    assert _pins(UV_LOCK) == {"uv": {pinned[0].split("==", 1)[1]}}
