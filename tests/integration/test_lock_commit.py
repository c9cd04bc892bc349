"""Lock commit-back races against a real bare origin: several builds' commit-back steps at once.

The builds themselves are replaced by writing each commit's dvc.lock (a full rebuild per commit
would triple the suite's time); the commit-back step is the real one, in separate processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.project import sh

pytestmark = pytest.mark.integration

DVC_YAML = (
    "stages:\n  train:\n    cmd: python train.py\n    deps: [train.py]\n    params: [lr]\n    outs: [model.bin]\n"
)
COMMIT_BACK = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from ci_helpers.lock_commit import GitIdentity, commit_lock_file
    repo, built = Path(sys.argv[1]), sys.argv[2]
    Path(sys.argv[3]).touch()
    while not Path(sys.argv[4]).exists():  # start together
        pass
    result = commit_lock_file(repo, built_commit=built, branch="main", remote="origin", paths=["dvc.lock"],
                              identity=GitIdentity("CI Bot", "ci@example.invalid"), mode="commit",
                              pipeline_inputs={"dvc.yaml", "params.yaml", "train.py"})
    print(json.dumps({"status": result.status, "commit": result.commit, "attempts": result.attempts}))
""")


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", message], repo)
    sh(["git", "push", "-q", "origin", "HEAD:main"], repo)
    return sh(["git", "rev-parse", "HEAD"], repo).stdout.strip()


@pytest.fixture
def origin_with_three_commits(tmp_path):
    origin, dev = tmp_path / "origin.git", tmp_path / "dev"
    sh(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    sh(["git", "clone", "-q", str(origin), str(dev)], tmp_path)
    _commit(
        dev,
        {
            "dvc.yaml": DVC_YAML,
            "train.py": "print('train')\n",
            "params.yaml": "lr: 0.1\n",
            "dvc.lock": "built-from: none\n",
        },
        "pipeline",
    )
    commits = [_commit(dev, {"params.yaml": f"lr: 0.{i + 2}\n"}, f"lr 0.{i + 2}") for i in range(3)]
    return origin, commits


def _start_builds(tmp_path: Path, origin: Path, commits: list[str]) -> list[dict]:
    go = tmp_path / "go"
    procs = []
    for index, commit in enumerate(commits):
        workspace = tmp_path / f"build-{index}"
        sh(["git", "clone", "-q", str(origin), str(workspace)], tmp_path)
        sh(["git", "checkout", "-q", "-B", "main", commit], workspace)
        (workspace / "dvc.lock").write_text(f"built-from: {commit}\n")
        ready = tmp_path / f"ready-{index}"
        procs.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", COMMIT_BACK, str(workspace), commit, str(ready), str(go)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    while not all(ready.exists() for ready, _ in procs):
        pass
    go.touch()
    results = []
    for _, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_three_builds_of_successive_commits_started_together(tmp_path, origin_with_three_commits):
    origin, commits = origin_with_three_commits

    results = _start_builds(tmp_path, origin, commits)

    assert [r["status"] for r in results] == ["superseded", "superseded", "committed"]
    tip = sh(["git", "rev-parse", "main"], origin).stdout.strip()
    assert sh(["git", "rev-list", "--merges", "main"], origin).stdout == ""  # linear
    history = sh(["git", "rev-list", "main"], origin).stdout.split()
    assert all(commit in history for commit in commits)  # every commit intact
    assert sh(["git", "show", "main:dvc.lock"], origin).stdout == f"built-from: {commits[-1]}\n"
    assert history[1] == commits[-1]
    assert tip == results[-1]["commit"]
    assert "[skip ci]" in sh(["git", "log", "-1", "--format=%s", "main"], origin).stdout


def test_unrelated_commits_that_land_meanwhile_are_kept_and_the_lock_rebased(tmp_path, origin_with_three_commits):
    origin, commits = origin_with_three_commits
    newest = commits[-1]
    # two builds of the newest commit and a README change, all racing
    other = tmp_path / "other"
    sh(["git", "clone", "-q", str(origin), str(other)], tmp_path)
    readme = _commit(other, {"README.md": "docs\n"}, "docs only")

    results = _start_builds(tmp_path, origin, [newest, newest])

    statuses = sorted(r["status"] for r in results)
    assert statuses == ["committed", "committed"]
    history = sh(["git", "rev-list", "main"], origin).stdout.split()
    assert readme in history
    assert newest in history
    assert sh(["git", "rev-list", "--merges", "main"], origin).stdout == ""
    assert sh(["git", "show", "main:dvc.lock"], origin).stdout == f"built-from: {newest}\n"
    lock_commits = sh(["git", "log", "--format=%s", "main"], origin).stdout.count("[skip ci]")
    assert lock_commits == 1  # the second build's identical lock commit became empty and was dropped


def test_tag_mode_pushes_a_tag_and_leaves_the_branch_alone(tmp_path, origin_with_three_commits):
    from ci_helpers.lock_commit import GitIdentity, commit_lock_file

    origin, commits = origin_with_three_commits
    workspace = tmp_path / "tagged"
    sh(["git", "clone", "-q", str(origin), str(workspace)], tmp_path)
    (workspace / "dvc.lock").write_text("built-from: tag-mode\n")

    result = commit_lock_file(
        workspace,
        built_commit=commits[-1],
        branch="main",
        remote="origin",
        paths=["dvc.lock"],
        identity=GitIdentity("CI Bot", "ci@example.invalid"),
        mode="tag",
        pipeline_inputs={"params.yaml"},
    )

    assert result.status == "tagged"
    assert result.tag == f"mlops/lock/{commits[-1][:12]}"
    assert sh(["git", "rev-parse", "main"], origin).stdout.strip() == commits[-1]
    assert sh(["git", "show", f"{result.tag}:dvc.lock"], origin).stdout == "built-from: tag-mode\n"


def _commit_back(tmp_path: Path, origin: Path, built: str, name: str):
    from ci_helpers.lock_commit import GitIdentity, commit_lock_file

    workspace = tmp_path / name
    sh(["git", "clone", "-q", str(origin), str(workspace)], tmp_path)
    sh(["git", "checkout", "-q", "-B", "main", built], workspace)
    (workspace / "dvc.lock").write_text(f"built-from: {built}\n")
    return commit_lock_file(
        workspace,
        built_commit=built,
        branch="main",
        remote="origin",
        paths=["dvc.lock"],
        identity=GitIdentity("CI Bot", "ci@example.invalid"),
        mode="commit",
        pipeline_inputs={"dvc.yaml", "params.yaml", "train.py"},
    )


def test_a_newer_builds_lock_commit_supersedes_even_when_no_pipeline_input_changed(tmp_path, origin_with_three_commits):
    from ci_helpers.lock_commit import commit_message

    origin, commits = origin_with_three_commits
    other = tmp_path / "other"
    sh(["git", "clone", "-q", str(origin), str(other)], tmp_path)
    docs = _commit(other, {"README.md": "docs\n"}, "docs only")
    _commit(other, {"dvc.lock": f"built-from: {docs}\n"}, commit_message(docs))  # the docs commit's build landed
    before = sh(["git", "rev-parse", "main"], origin).stdout.strip()

    result = _commit_back(tmp_path, origin, commits[-1], "older")

    assert result.status == "superseded"
    assert result.superseded_by == docs
    assert f"superseded by {docs[:12]}" in result.detail
    assert result.commit is None
    assert sh(["git", "rev-parse", "main"], origin).stdout.strip() == before
    assert sh(["git", "show", "main:dvc.lock"], origin).stdout == f"built-from: {docs}\n"


def test_older_builds_lock_commits_old_and_new_style_are_replayed_over(tmp_path, origin_with_three_commits):
    from ci_helpers.lock_commit import commit_message

    origin, commits = origin_with_three_commits
    other = tmp_path / "other"
    sh(["git", "clone", "-q", str(origin), str(other)], tmp_path)
    # lock commits of older builds landed after the newest commit: one from before the trailer existed
    legacy = f"Update dvc.lock from the CI build of {commits[0][:12]} [skip ci]"
    _commit(other, {"dvc.lock": f"built-from: {commits[0]}\n"}, legacy)
    _commit(other, {"dvc.lock": f"built-from: {commits[1]}\n"}, commit_message(commits[1]))

    result = _commit_back(tmp_path, origin, commits[-1], "newest")

    assert result.status == "committed", result.detail
    assert sh(["git", "rev-parse", "main"], origin).stdout.strip() == result.commit
    assert sh(["git", "show", "main:dvc.lock"], origin).stdout == f"built-from: {commits[-1]}\n"
    message = sh(["git", "log", "-1", "--format=%B", "main"], origin).stdout
    assert f"Mlops-Built-From: {commits[-1]}" in message
