"""Offline installs pinned to what this venv already holds: uv's cached index may know a newer
release than the wheels in its cache (or than anything tested here), and an unpinned resolution
would pick it and fail offline, or test something else."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# Never pinned: the project itself (the wheel under test, or this checkout installed editable).
_OWN = "mlops-actions"


def venv_constraints(folder: Path) -> Path:
    """A constraints file (for `uv pip install -c`, `uv tool run -c`, `uv build -b`) pinning every
    distribution of sys.executable's venv to its installed version; written into `folder`."""
    uv = shutil.which("uv") or "uv"
    frozen = subprocess.run(
        [uv, "pip", "freeze", "--quiet", "--exclude-editable", "--python", sys.executable],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = [line for line in frozen.splitlines() if "==" in line and not line.lower().startswith(f"{_OWN}==")]
    path = folder / "venv-constraints.txt"
    path.write_text("\n".join(pins) + "\n")
    return path
