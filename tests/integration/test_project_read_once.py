"""One DVC index per command and project state: `check-lock` and the reads after the project model
share the index DVC built for it, a `dvc repro` or an edit makes them read again (never a stale
status), and a dropped project closes its DVC repo (a long-lived Airflow worker leaks nothing)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ci_helpers.adapters import dvc
from ci_helpers.flows.pr import validate_lock_fresh
from ci_helpers.project import load_project, read_params, read_pipeline_status
from ci_helpers.sanity_checks import check_lock_fresh

pytestmark = pytest.mark.integration

ITEMS = ("a", "b", "c")
DVC_YAML = (
    "stages:\n"
    "  train:\n"
    "    foreach: [a, b, c]\n"
    "    do:\n"
    "      cmd: python -c \"open('out-${item}.txt', 'w').write('${item}')\"\n"
    "      deps: [data.txt]\n"
    "      params: ['depth.${item}']\n"
    "      outs: ['out-${item}.txt']\n"
)


def _sh(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def project_root(tmp_path) -> Path:
    """A 3-item foreach, reproduced and committed: `dvc status` says it is up to date."""
    root = tmp_path / "project"
    root.mkdir()
    _sh("git", "init", "-q", "-b", "main", cwd=root)
    _sh("dvc", "init", "-q", cwd=root)
    (root / "data.txt").write_text("x\n")
    (root / "params.yaml").write_text("depth:\n" + "".join(f"  {item}: 1\n" for item in ITEMS))
    (root / "dvc.yaml").write_text(DVC_YAML)
    _sh("dvc", "repro", "-q", cwd=root)
    _sh("git", "add", "-A", cwd=root)
    _sh("git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init", cwd=root)
    return root


@pytest.fixture
def workspace_index_builds(monkeypatch) -> list[str]:
    """Every build of DVC's index of a workspace (not of a git revision), by project root."""
    from dvc.repo.index import Index

    builds: list[str] = []
    original = Index.from_repo.__func__

    def counting(cls, repo, *args, **kwargs):
        if type(repo.fs).__name__ == "LocalFileSystem":
            builds.append(str(repo.root_dir))
        return original(cls, repo, *args, **kwargs)

    monkeypatch.setattr(Index, "from_repo", classmethod(counting))
    return builds


def test_check_lock_builds_the_dvc_index_once(project_root, workspace_index_builds):
    check = validate_lock_fresh(project_root)
    assert check.message == "lock-fresh: ok"
    assert len(workspace_index_builds) == 1


def test_the_reads_after_the_model_share_its_index(project_root, workspace_index_builds):
    project = load_project(project_root)
    assert read_pipeline_status(project) == {}
    assert read_params(project) == {"depth.a": 1, "depth.b": 1, "depth.c": 1}
    # a read at another revision (pr-validate's params diff) leaves the workspace's index in place
    assert dvc.params_diff(project_root, "HEAD") == {}
    assert read_pipeline_status(project) == {}
    assert len(workspace_index_builds) == 1


def test_the_status_is_read_again_after_an_edit_and_after_a_repro(project_root, workspace_index_builds):
    project = load_project(project_root)
    assert check_lock_fresh(project).passed
    (project_root / "params.yaml").write_text("depth:\n  a: 2\n  b: 1\n  c: 1\n")
    stale = check_lock_fresh(project)
    assert not stale.passed
    assert stale.problems == ("stage 'train@a': param depth.a in params.yaml modified",)
    dvc.repro(project_root, [], [])
    assert check_lock_fresh(project).passed  # the repro rewrote dvc.lock: never the index from before it
    assert read_params(project)["depth.a"] == 2
    assert len(workspace_index_builds) >= 2


def test_a_dropped_project_closes_its_dvc_repo(project_root, monkeypatch):
    from dvc.repo import Repo

    closed: list[str] = []
    original = Repo.close
    monkeypatch.setattr(Repo, "close", lambda self: (closed.append(self.root_dir), original(self))[1])
    project = load_project(project_root)
    read_pipeline_status(project)
    assert closed == []  # lent to the status read, still open
    del project
    gc.collect()
    assert closed == [str(project_root)]


def test_a_vars_file_edited_after_the_model_is_read_is_seen(tmp_path):
    """`vars: [config.yaml]` resolves the command: an edit of config.yaml changes the stage, and the
    reads after the model must not answer from the index built before it."""
    root = tmp_path / "vars-project"
    root.mkdir()
    _sh("git", "init", "-q", "-b", "main", cwd=root)
    _sh("dvc", "init", "-q", cwd=root)
    (root / "config.yaml").write_text("n: 1\n")
    (root / "dvc.yaml").write_text(
        "vars: [config.yaml]\nstages:\n  a:\n    cmd: python -c \"open('out.txt', 'w').write('${n}')\"\n"
        "    outs: [out.txt]\n"
    )
    _sh("dvc", "repro", "-q", cwd=root)
    project = load_project(root)
    assert read_pipeline_status(project) == {}

    (root / "config.yaml").write_text("n: 22\n")

    assert read_pipeline_status(project) == {"a": ["changed command"]}
