"""Main builds of successive commits, racing and re-run: real dvc, git (bare origin), moto S3,
MLflow server.

One truth on main: whatever the order builds finish in, and whatever older build is re-run
afterwards ("Re-run jobs"), origin main's dvc.lock and the alias name the same CI build, and a
build of an older commit than what they reflect commits nothing and moves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tests.support.project import lock_out_md5, set_train_params, sh, write_local_remote
from tests.support.run import github_env, read_outputs, read_report

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
# The product's own bounded HTTP retries (the suite turns them off to keep fault tests quick):
# several builds at once on two cores make the one test MLflow server drop a connection now and then.
PRODUCT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
MODEL = "models/model.pkl"


class Build:
    """One `ci-helpers master-build` process, its output read as it comes."""

    def __init__(self, checkout: Path, name: str, tracking_uri: str, experiment: str, report: Path, env=None):
        self.report = report
        self.process = subprocess.Popen(
            [
                shutil.which("ci-helpers") or "ci-helpers",
                *("master-build", "--model-name", name, "--tracking-uri", tracking_uri, "--branch", "main"),
                *("--experiment", experiment, "--report-json", str(report)),
            ],
            cwd=checkout,
            env={**os.environ, **CI_IDENTITY, **PRODUCT_RETRIES, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self.decided = threading.Event()  # past the "is a newer build already on main?" question
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.lines.append(line)
            if "Pull the inputs of" in line or "superseded by" in line:
                self.decided.set()
        self.decided.set()

    def finish(self, timeout: float = 900) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        self.reader.join()
        return code, "".join(self.lines)


def _commit_params(dev: Path, trees: int) -> str:
    set_train_params(dev, n_estimators=trees)
    sh(["git", "commit", "-qam", f"train with {trees} trees"], dev)
    return sh(["git", "rev-parse", "HEAD"], dev).stdout.strip()


def _commit_readme(dev: Path, text: str) -> str:
    (dev / "README.md").write_text(text)
    sh(["git", "add", "README.md"], dev)
    sh(["git", "commit", "-qm", "docs only"], dev)
    return sh(["git", "rev-parse", "HEAD"], dev).stdout.strip()


def _push(project, commit: str) -> None:
    sh(["git", "push", "-q", "origin", f"{commit}:refs/heads/main"], project.dev)


def _sync_dev(project) -> None:
    """The developer pulls main (with CI's lock commits) before the next change."""
    sh(["git", "checkout", "-q", "main"], project.dev)
    sh(["git", "pull", "-q", "--ff-only", "origin", "main"], project.dev)


def _checkout_at(project, commit: str, name: str) -> Path:
    """What actions/checkout gives a push build of `commit` (or its re-run): main, at that commit."""
    target = project.root / name
    sh(["git", "clone", "-q", str(project.origin), str(target)], project.root)
    sh(["git", "checkout", "-q", "-B", "main", commit], target)
    write_local_remote(target, project.remote_url)
    return target


def _origin_refs(project) -> str:
    return sh(["git", "for-each-ref", "--format=%(refname) %(objectname)"], project.origin).stdout


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _runs(uri: str, experiment: str) -> int:
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    return len(client.search_runs([found.experiment_id])) if found else 0


def _registry_state(uri: str, name: str) -> tuple:
    client = _client(uri)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    return client.get_registered_model(name).aliases, versions


def _assert_one_truth(project, uri: str, name: str, newest: str) -> None:
    """Origin main's dvc.lock and the alias name the same CI build: the newest commit's."""
    holder = _client(uri).get_model_version_by_alias(name, "staging")
    assert holder.tags["mlops.git_commit"] == newest
    lock = sh(["git", "show", "main:dvc.lock"], project.origin).stdout
    assert lock_out_md5(lock, MODEL) == holder.tags[f"mlops.ci_md5.{MODEL}"]
    message = sh(["git", "log", "-1", "--format=%B", "main"], project.origin).stdout
    assert f"Mlops-Built-From: {newest}" in message


def _rerun(project, commit: str, label: str, name: str, uri: str, experiment: str, tmp_path: Path):
    """A re-run of the build of `commit` from a fresh checkout; (exit code, output, report, outputs)."""
    gh = github_env(tmp_path / f"gh-{label}")
    build = Build(_checkout_at(project, commit, label), name, uri, experiment, tmp_path / f"{label}.json", env=gh)
    code, output = build.finish(timeout=300)
    report = read_report(build.report) if build.report.exists() else None
    return code, output, report, read_outputs(tmp_path / f"gh-{label}" / "output")


def _assert_stopped_early(code: int, output: str, report, outputs, by: str) -> None:
    assert code == 0, output[-3000:]
    assert f"superseded by {by[:12]}" in output
    assert "dvc.lock committed" not in output
    assert "Pull the inputs of" not in output  # nothing built
    assert report["verdict"] == "superseded"
    assert report["superseded_by"] == by
    assert report["mlflow"] is None
    assert report["model"] is None
    assert report["alias"] is None
    assert outputs["verdict"] == "superseded"
    assert outputs["superseded-by"] == by
    assert outputs["lock-status"] == "superseded"


def test_a_rerun_of_an_older_build_after_a_newer_one_landed_changes_nothing(project, mlflow_server, tmp_path):
    uri, name, experiment = mlflow_server.url, f"truth-{uuid.uuid4().hex[:6]}", f"exp-{uuid.uuid4().hex[:6]}"
    sh(["git", "checkout", "-q", "main"], project.dev)
    c1 = _commit_params(project.dev, 61)
    _push(project, c1)
    first = Build(_checkout_at(project, c1, "b1"), name, uri, experiment, tmp_path / "b1.json")
    assert first.finish()[0] == 0, "".join(first.lines)[-3000:]
    _sync_dev(project)
    c2 = _commit_params(project.dev, 62)  # a child of C1 (and of C1's lock commit)
    _push(project, c2)
    second = Build(_checkout_at(project, c2, "b2"), name, uri, experiment, tmp_path / "b2.json")
    assert second.finish()[0] == 0, "".join(second.lines)[-3000:]
    _assert_one_truth(project, uri, name, c2)
    refs, registry, runs = _origin_refs(project), _registry_state(uri, name), _runs(uri, experiment)

    code, output, report, outputs = _rerun(project, c1, "rerun-c1", name, uri, experiment, tmp_path)

    _assert_stopped_early(code, output, report, outputs, c2)
    assert _origin_refs(project) == refs  # no lock commit, nothing pushed
    assert _registry_state(uri, name) == registry  # no version, the alias where it was
    assert _runs(uri, experiment) == runs  # no MLflow run opened
    _assert_one_truth(project, uri, name, c2)


def test_an_older_build_after_a_docs_only_commit_built_does_not_put_its_lock_on_top(project, mlflow_server, tmp_path):
    """C2 changes no pipeline input, but its build's lock commit is on main: C1's lock must not
    land over it (the lock rule alone: the older build registers no model, so no alias is asked)."""
    uri, name, experiment = mlflow_server.url, f"truth-{uuid.uuid4().hex[:6]}", f"exp-{uuid.uuid4().hex[:6]}"
    sh(["git", "checkout", "-q", "main"], project.dev)
    c1 = _commit_params(project.dev, 63)
    c2 = _commit_readme(project.dev, "How to train the housing model.\n")
    _push(project, c2)
    newer = Build(_checkout_at(project, c2, "b2"), name, uri, experiment, tmp_path / "b2.json")
    assert newer.finish()[0] == 0, "".join(newer.lines)[-3000:]
    _assert_one_truth(project, uri, name, c2)
    refs, runs = _origin_refs(project), _runs(uri, experiment)

    older = subprocess.run(
        [shutil.which("ci-helpers") or "ci-helpers", "master-build", "--tracking-uri", uri, "--experiment", experiment],
        cwd=_checkout_at(project, c1, "b1"),
        env={**os.environ, **CI_IDENTITY},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    output = older.stdout + older.stderr
    assert older.returncode == 0, output[-3000:]
    assert f"superseded by {c2[:12]}" in output
    assert _origin_refs(project) == refs
    assert _runs(uri, experiment) == runs
    _assert_one_truth(project, uri, name, c2)


@pytest.mark.slow
def test_racing_builds_and_reruns_of_older_commits_leave_one_truth_on_main(project, mlflow_server, tmp_path):
    """Five commits land one after the other, each starting its build as it lands; the builds
    overlap and finish in any order. Re-runs of two older builds start during the race and again
    after it."""
    uri, name, experiment = mlflow_server.url, f"race-{uuid.uuid4().hex[:6]}", f"exp-{uuid.uuid4().hex[:6]}"
    sh(["git", "checkout", "-q", "main"], project.dev)
    commits = [_commit_params(project.dev, 61 + index) for index in range(5)]
    builds = []
    for index, commit in enumerate(commits):
        _push(project, commit)
        build = Build(
            _checkout_at(project, commit, f"race-{index}"), name, uri, experiment, tmp_path / f"r{index}.json"
        )
        build.decided.wait(timeout=300)  # the next commit lands once this build is under way
        builds.append(build)
    during = [
        Build(_checkout_at(project, commit, f"during-{index}"), name, uri, experiment, tmp_path / f"d{index}.json")
        for index, commit in enumerate(commits[:2])
    ]
    finished = [build.finish() for build in builds + during]
    for code, output in finished:
        assert code == 0, output[-3000:]

    newest = commits[-1]
    _assert_one_truth(project, uri, name, newest)
    main = sh(["git", "rev-parse", "main"], project.origin).stdout.strip()
    assert sh(["git", "rev-list", "--merges", main], project.origin).stdout.strip() == ""  # linear
    assert set(commits) <= set(sh(["git", "rev-list", main], project.origin).stdout.split())
    # one version per raced commit (each started before the next landed), none twice
    versions = _client(uri).search_model_versions(f"name = '{name}'")
    assert sorted(v.tags["mlops.git_commit"] for v in versions) == sorted(commits)
    # every older build says who superseded it, and neither committed its lock nor moved the alias
    for index in range(len(commits) - 1):
        report = json.loads((tmp_path / f"r{index}.json").read_text())
        assert report["verdict"] == "superseded", report["notes"]
        assert report["superseded_by"] in commits[index + 1 :]
        assert report["lock"]["status"] == "superseded"
        assert report["alias"] is None
        assert "dvc.lock committed" not in finished[index][1]
    assert json.loads((tmp_path / "r4.json").read_text())["lock"]["status"] == "committed"
    for index, (_code, output) in enumerate(finished[len(commits) :]):
        assert f"superseded by {newest[:12]}" in output
        assert json.loads((tmp_path / f"d{index}.json").read_text())["model"] is None
    assert _runs(uri, experiment) == len(commits)  # the re-runs opened no run

    refs, registry = _origin_refs(project), _registry_state(uri, name)
    for index, commit in enumerate(commits[1:3]):
        code, output, report, outputs = _rerun(project, commit, f"after-{index}", name, uri, experiment, tmp_path)
        _assert_stopped_early(code, output, report, outputs, newest)
    assert _origin_refs(project) == refs
    assert _registry_state(uri, name) == registry
    assert _runs(uri, experiment) == len(commits)
    _assert_one_truth(project, uri, name, newest)


@pytest.mark.slow
def test_a_merge_train_pushed_at_once_builds_only_its_newest_commit(project, mlflow_server, tmp_path):
    """Ten commits land together and ten builds start at once: the nine older ones see the newest
    commit's pipeline change and stop before training; main's lock and the alias end on the newest."""
    uri, name, experiment = mlflow_server.url, f"train-{uuid.uuid4().hex[:6]}", f"exp-{uuid.uuid4().hex[:6]}"
    sh(["git", "checkout", "-q", "main"], project.dev)
    commits = [_commit_params(project.dev, 61 + index) for index in range(10)]
    _push(project, commits[-1])
    builds = [
        Build(_checkout_at(project, commit, f"train-{index}"), name, uri, experiment, tmp_path / f"t{index}.json")
        for index, commit in enumerate(commits)
    ]
    finished = [build.finish() for build in builds]

    for code, output in finished:
        assert code == 0, output[-3000:]
    newest = commits[-1]
    _assert_one_truth(project, uri, name, newest)
    for index, (_code, output) in enumerate(finished[:-1]):
        assert f"superseded by {newest[:12]}" in output
        assert json.loads((tmp_path / f"t{index}.json").read_text())["verdict"] == "superseded"
    assert [v.tags["mlops.git_commit"] for v in _client(uri).search_model_versions(f"name = '{name}'")] == [newest]
    assert _runs(uri, experiment) == 1
