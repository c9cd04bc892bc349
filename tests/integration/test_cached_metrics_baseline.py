"""A cached metrics file (DVC's default for `metrics:`) is a baseline too: read through DVC at the
base ref, from the remote in a depth-1 clone with an empty cache; never a silent pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.run import ci_helpers, read_report

pytestmark = pytest.mark.integration

EVALUATE = 'import json\njson.dump({"holdout": {"acc": float(open("acc.txt").read())}}, open("m.json", "w"))\n'
DVC_YAML = (
    "stages:\n  evaluate:\n    cmd: python evaluate.py\n    deps: [acc.txt, evaluate.py]\n    metrics: [m.json]\n"
)


def _sh(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def pr_clone(tmp_path) -> Path:
    """main records holdout.acc 0.88 in a cached m.json; the PR drops it to 0.58. A depth-1 clone of the PR."""
    dev, store = tmp_path / "dev", tmp_path / "store"
    dev.mkdir()
    _sh("git", "init", "-q", "-b", "main", cwd=dev)
    _sh("dvc", "init", "-q", cwd=dev)
    _sh("dvc", "remote", "add", "-q", "-d", "store", str(store), cwd=dev)
    (dev / "evaluate.py").write_text(EVALUATE)
    (dev / "dvc.yaml").write_text(DVC_YAML)
    (dev / "acc.txt").write_text("0.88\n")
    for message, acc in (("main", None), ("pr: worse", "0.58\n")):
        if acc:
            _sh("git", "checkout", "-q", "-b", "pr", cwd=dev)
            (dev / "acc.txt").write_text(acc)
        _sh("dvc", "repro", "-q", cwd=dev)
        _sh("dvc", "push", "-q", cwd=dev)
        _sh("git", "add", "-A", cwd=dev)
        _sh("git", "commit", "-qm", message, cwd=dev)
    assert "m.json" in (dev / ".gitignore").read_text()  # cached: git show main:m.json finds nothing
    clone = tmp_path / "ci"
    _sh("git", "clone", "-q", "--depth", "1", "--branch", "pr", f"file://{dev}", str(clone), cwd=tmp_path)
    _sh("dvc", "pull", "-q", "m.json", cwd=clone)
    return clone


def test_a_regression_in_a_cached_metrics_file_fails_the_gate(pr_clone, tmp_path):
    report = tmp_path / "r.json"
    result = ci_helpers(
        "gate",
        "--metrics-file",
        "m.json",
        "--max-regression",
        "holdout.acc=0.05",
        "--baseline-ref",
        "origin/main",
        "--report-json",
        str(report),
        cwd=pr_clone,
    )

    assert result.code == 1, result.output
    assert "holdout.acc = 0.58 regressed below >= 0.83" in result.output
    data = read_report(report)
    assert data["baseline"] == {"holdout.acc": 0.88}
    assert data["baseline_sources"] == {"m.json": "dvc"}
