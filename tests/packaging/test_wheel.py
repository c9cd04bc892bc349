"""What a user installs: `uv build` makes a wheel and an sdist from the tracked files, and the wheel,
installed with its dependencies into a fresh venv (or run by `uvx --from`), runs `ci-helpers`
from that venv, not from this checkout. Offline: the dependencies come from uv's cache, which
scripts/setup.sh warms, pinned to the versions this venv holds (uv's cached index may know a
newer release whose wheel the cache does not hold)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from tests.support.offline import venv_constraints

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def _run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    # without PYTHONPATH: a run of the suite that points it at this checkout would import ci_helpers from there
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory, constraints) -> Path:
    """`uv build` of a copy of the tracked files (a build writes egg-info into its source tree)."""
    uv = shutil.which("uv")
    if not uv:
        pytest.fail("uv is not installed; the test extra installs it")
    source = tmp_path_factory.mktemp("source")
    tracked = _run(["git", "ls-files", "-z"], ROOT).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    _run([uv, "build", "--offline", "--build-constraints", constraints, "--out-dir", out], source)
    return out


@pytest.fixture(scope="module")
def constraints(tmp_path_factory) -> Path:
    return venv_constraints(tmp_path_factory.mktemp("constraints"))


def test_build_makes_a_wheel_and_an_sdist_with_the_licence_and_project_metadata(dist):
    wheel = dist / f"mlops_actions-{VERSION}-py3-none-any.whl"
    sdist = dist / f"mlops_actions-{VERSION}.tar.gz"
    assert {path.name for path in dist.iterdir() if path.suffix in {".whl", ".gz"}} == {sdist.name, wheel.name}
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = Parser().parsestr(archive.read(f"mlops_actions-{VERSION}.dist-info/METADATA").decode())
        entry_points = archive.read(f"mlops_actions-{VERSION}.dist-info/entry_points.txt").decode()
    assert "ci_helpers/py.typed" in names
    assert "ci_helpers/builtin_evaluator_worker.py" in names  # run by path, in the project's Python
    assert f"mlops_actions-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not [name for name in names if name.startswith(("tests/", "bench/", "examples/"))]
    assert metadata["Name"] == "mlops-actions"
    assert metadata["Version"] == VERSION
    assert metadata["Requires-Python"] == ">=3.10"
    assert "Project-URL: Source, https://github.com/org/mlops-actions" in str(metadata)
    assert "License :: OSI Approved :: Apache Software License" in metadata.get_all("Classifier")
    assert "ci-helpers = ci_helpers.cli:main" in entry_points
    with tarfile.open(sdist) as archive:
        members = {member.name.split("/", 1)[1] for member in archive.getmembers() if "/" in member.name}
    assert {"pyproject.toml", "README.md", "LICENSE", "ci_helpers/cli.py"} <= members


def test_the_wheel_installs_into_a_fresh_venv_and_runs(dist, constraints, tmp_path):
    uv = shutil.which("uv")
    venv = tmp_path / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, venv], tmp_path)
    wheel = dist / f"mlops_actions-{VERSION}-py3-none-any.whl"
    python = venv / "bin" / "python"
    _run([uv, "pip", "install", "--offline", "--quiet", "--python", python, "-c", constraints, wheel], tmp_path)

    version = _run([venv / "bin" / "ci-helpers", "--version"], tmp_path)
    assert version.stdout == f"ci-helpers, version {VERSION}\n"
    usage = _run([venv / "bin" / "ci-helpers", "pr-validate", "--help"], tmp_path)
    assert usage.stdout.startswith("Usage: ci-helpers pr-validate [OPTIONS]")
    assert "--threshold" in usage.stdout
    where = _run([venv / "bin" / "python", "-c", "import ci_helpers; print(ci_helpers.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv), "ci_helpers was not imported from the installed wheel"


def test_uvx_runs_the_cli_from_the_wheel(dist, constraints, tmp_path):
    """`uvx --from mlops-actions ci-helpers ...`, the one-line way to try it, with the built wheel
    standing in for the package index."""
    uv = shutil.which("uv")
    wheel = dist / f"mlops_actions-{VERSION}-py3-none-any.whl"
    args = [
        uv,
        "tool",
        "run",
        "--offline",
        "--python",
        sys.executable,
        "-c",
        constraints,
        "--from",
        wheel,
        "ci-helpers",
    ]

    assert _run([*args, "--version"], tmp_path).stdout == f"ci-helpers, version {VERSION}\n"
    assert _run([*args, "pr-validate", "--help"], tmp_path).stdout.startswith("Usage: ci-helpers pr-validate")
