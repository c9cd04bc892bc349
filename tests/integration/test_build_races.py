"""Concurrent main builds of successive commits: real dvc, git (bare origin), moto S3, MLflow server.

Commits C1..Cn land on main at once (a merge train); a master-build starts for each, all at the
same time, and they finish in any order. Afterwards the alias must be on Cn's version, origin's
history linear with every commit in it, and every alias move recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.project import set_train_params, sh, write_local_remote

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
# The product's own bounded HTTP retries (the suite turns them off to keep fault tests quick): ten
# builds at once on two cores make the one test MLflow server drop a connection now and then.
PRODUCT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def _successive_commits(project, count: int) -> list[str]:
    """`count` commits on main, each a params change, pushed together."""
    dev = project.dev
    sh(["git", "checkout", "-q", "main"], dev)
    commits = []
    for index in range(count):
        set_train_params(dev, n_estimators=61 + index)
        sh(["git", "commit", "-qam", f"train with {61 + index} trees"], dev)
        commits.append(sh(["git", "rev-parse", "HEAD"], dev).stdout.strip())
    sh(["git", "push", "-q", "origin", "main"], dev)
    return commits


def _checkout_at(project, commit: str, name: str) -> Path:
    """What actions/checkout gives a push build of `commit`: main, at that commit."""
    target = project.root / name
    sh(["git", "clone", "-q", str(project.origin), str(target)], project.root)
    sh(["git", "checkout", "-q", "-B", "main", commit], target)
    write_local_remote(target, project.remote_url)
    return target


def _race(project, mlflow_url: str, count: int, tmp_path: Path) -> None:
    name = f"race-{count}-{uuid.uuid4().hex[:6]}"
    commits = _successive_commits(project, count)
    checkouts = [_checkout_at(project, commit, f"race{count}-{i}") for i, commit in enumerate(commits)]
    executable = shutil.which("ci-helpers") or "ci-helpers"
    processes = [
        subprocess.Popen(
            [
                executable,
                *("master-build", "--model-name", name, "--tracking-uri", mlflow_url, "--branch", "main"),
                *("--report-json", str(tmp_path / f"race{count}-{i}.json")),
            ],
            cwd=checkout,
            env={**os.environ, **CI_IDENTITY, **PRODUCT_RETRIES},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, checkout in enumerate(checkouts)
    ]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]

    from mlflow.tracking import MlflowClient

    from ci_helpers.adapters.registry import alias_history

    client = MlflowClient(mlflow_url, registry_uri=mlflow_url)
    # the alias is on the newest commit's version, whatever order the builds finished in
    holder = client.get_model_version_by_alias(name, "staging")
    assert holder.tags["mlops.git_commit"] == commits[-1]
    # one version per commit, none twice
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.tags["mlops.git_commit"] for v in versions) == sorted(commits)
    # origin's main is linear and holds every commit; its dvc.lock is the newest build's
    main = project.head("main")
    assert sh(["git", "rev-list", "--merges", main], project.origin).stdout.strip() == ""
    history = set(sh(["git", "rev-list", main], project.origin).stdout.split())
    assert set(commits) <= history
    # every move is in the history: one record per alias change, none lost to a concurrent write
    moves = alias_history(mlflow_url, name, "staging")
    moved_to = [entry["version"] for entry in moves]
    reports = [json.loads((tmp_path / f"race{count}-{i}.json").read_text()) for i in range(count)]
    for report in reports:
        if report["alias"]:
            assert report["alias"]["version"] in moved_to, (report["alias"], moves)
        else:
            assert any("superseded" in note for note in report["notes"]), report["notes"]
    assert holder.version in moved_to
    assert len(moves) >= sum(1 for report in reports if report["alias"])


@pytest.mark.parametrize("count", [5, 10])
def test_concurrent_main_builds_end_on_the_newest_commit(project, mlflow_server, tmp_path, count):
    _race(project, mlflow_server.url, count, tmp_path)
