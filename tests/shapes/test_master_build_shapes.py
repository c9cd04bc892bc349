"""`ci-helpers master-build` on every project shape, from a fresh CI clone of main after a merge.

Each shape's main is a merge commit whose dvc.lock records outputs built with an older parameter
(see builders.py), so the forced CI rebuild changes them: master-build must push the new outputs and
commit the right dvc.lock back with [skip ci]. The raw-dvc baseline proves each fixture is sound:
`dvc pull` + `dvc repro -f --downstream STAGE` + `dvc push` work on it and change that lock.

Each case works on its own copy of the shape (origin and bucket). The side-effecting part of every
selected case (clone, ci-helpers or dvc, the checking clone) runs in a pool of two workers started by
the first test, so that two cases use the two cores; each test then asserts on its own case's record.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.shapes.builders import SHAPES, Shape
from tests.shapes.case_pool import submit_module_cases
from tests.shapes.projects import ShapeProject, copy_shape
from tests.support.run import Outcome, ci_helpers

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
WORKERS = 2


def _master_build_cases() -> list:
    """Each shape with its --stage (and one foreach/matrix item); a project in a subfolder is built
    both from the git root with --repo and from inside its folder."""
    cases = []
    for shape in SHAPES.values():
        for stage in shape.stage_args:
            if shape.project:
                cases += [
                    pytest.param(shape.name, stage, where, id=f"{shape.name}-{stage}-from-{where}")
                    for where in ("git-root", "project-dir")
                ]
            else:
                cases.append(pytest.param(shape.name, stage, "git-root", id=f"{shape.name}-{stage}"))
    return cases


BASELINE_CASES = [
    pytest.param(shape.name, stage, id=f"{shape.name}-{stage}")
    for shape in SHAPES.values()
    for stage in shape.stage_args
]


# --- reading locks and checking outputs ----------------------------------------------------------


def _stages(lock_text: str) -> dict:
    return (yaml.safe_load(lock_text) or {}).get("stages", {})


def _outs(entry: dict) -> dict[str, str]:
    return {out["path"]: out["md5"] for out in entry.get("outs", []) or []}


def _rebuild_problems(shape: Shape, stage: str, before: dict, after: dict) -> list[str]:
    """The entries the forced rebuild should change got new out hashes; every other entry kept its."""
    if after.keys() != before.keys():
        return [f"lock entries changed from {sorted(before)} to {sorted(after)}"]
    rebuilt, problems = set(shape.rebuilt[stage]), []
    for entry, body in before.items():
        old, new = _outs(body), _outs(after[entry])
        if new.keys() != old.keys():
            problems.append(f"{entry}: outs {sorted(old)} became {sorted(new)}")
            continue
        for path, md5 in old.items():
            if entry in rebuilt and new[path] == md5:
                problems.append(f"{entry}: {path} still has the merged md5 {md5}: not rebuilt")
            if entry not in rebuilt and new[path] != md5:
                problems.append(f"{entry}: {path} changed ({md5} -> {new[path]}) but {stage} does not rebuild it")
    return problems


def _lock_outputs(project: Path, shape: Shape):
    """(workspace path, lock entry) of every out of the training stage's dvc.lock, wdir applied."""
    lock = project / shape.lock
    spec = yaml.safe_load((lock.parent / "dvc.yaml").read_text())["stages"]
    for name, entry in _stages(lock.read_text()).items():
        wdir = (spec[name.split("@")[0]] or {}).get("wdir", ".")
        for out in entry.get("outs", []) or []:
            yield Path(os.path.normpath(lock.parent / wdir / out["path"])), out


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _content_problems(path: Path, out: dict, cache: Path) -> list[str]:
    """A file must hash to the lock's md5; a directory must hold exactly the files (and md5s) its
    `.dir` manifest in the DVC cache lists."""
    md5 = out["md5"]
    if md5.endswith(".dir"):
        manifest = cache / "files" / "md5" / md5[:2] / md5[2:]
        if not manifest.is_file() or not path.is_dir():
            return [f"{path}: directory or its manifest {manifest.name} missing after dvc pull"]
        listed = {item["relpath"]: item["md5"] for item in json.loads(manifest.read_text())}
        actual = {p.relative_to(path).as_posix(): _md5(p) for p in path.rglob("*") if p.is_file()}
        return [] if listed == actual else [f"{path}: holds {actual}, its manifest {md5} lists {listed}"]
    if not path.is_file():
        return [f"{path}: missing after dvc pull"]
    return [] if _md5(path) == md5 else [f"{path}: md5 {_md5(path)}, dvc.lock says {md5}"]


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


# --- what each case does (run in the pool) ------------------------------------------------------------


@dataclass
class MasterBuildRun:
    project: ShapeProject
    result: Outcome
    checked: Path | None = None  # a second fresh clone of origin main after the build
    pulled: subprocess.CompletedProcess | None = None  # its raw `dvc pull`
    status: subprocess.CompletedProcess | None = None  # its `dvc status --json`


def _master_build(project: ShapeProject, stage: str, where: str, tracking_uri: str) -> MasterBuildRun:
    shape = project.shape
    checkout = project.clone("ci")
    if where == "git-root" and shape.project:
        cwd, repo_args = checkout, ["--repo", shape.project]
    else:
        cwd, repo_args = project.project_dir(checkout), []
    result = ci_helpers(
        "master-build",
        *repo_args,
        "--stage",
        stage,
        "--tracking-uri",
        tracking_uri,
        cwd=cwd,
        env={**CI_IDENTITY, **project.env},
        timeout=240,
    )
    run = MasterBuildRun(project, result)
    if result.code == 0 and project.head("main") != project.merge_commit:
        run.checked = project.clone("after-build")
        run.pulled = project.dvc(run.checked, "pull")
        if run.pulled.returncode == 0:
            run.status = project.dvc(run.checked, "status", "--json")
    return run


@dataclass
class RawRun:
    project: ShapeProject
    checkout: Path
    listed: subprocess.CompletedProcess
    steps: list[tuple[list[str], subprocess.CompletedProcess]]
    cloud: subprocess.CompletedProcess | None = None  # `dvc status --cloud --json` after the push


def _raw_rebuild(project: ShapeProject, stage: str) -> RawRun:
    checkout = project.clone("ci")
    run = RawRun(project, checkout, project.dvc(checkout, "stage", "list", "--all", "--name-only"), [])
    for args in (["pull"], ["repro", "-f", "--downstream", stage], ["push"]):
        run.steps.append((args, project.dvc(checkout, *args)))
        if run.steps[-1][1].returncode != 0:
            return run
    run.cloud = project.dvc(checkout, "status", "--cloud", "--json")
    return run


@pytest.fixture(scope="module")
def case_runs(request, shape_templates, moto_endpoint, fast_python_env, tmp_path_factory):
    """nodeid -> Future of that case's run, for every selected test of this module."""
    base = tmp_path_factory.mktemp("shape-cases")
    stores: queue.Queue[str] = queue.Queue()  # one MLflow store per worker: sqlite and concurrent writers do not mix
    for index in range(WORKERS):
        stores.put(f"sqlite:///{base / f'mlflow-{index}.db'}")

    def project_for(index: int, params: dict) -> ShapeProject:
        name = params["name"]
        return copy_shape(shape_templates[name], base / f"{index:02d}-{name}", moto_endpoint, fast_python_env)

    def master_build(index: int, params: dict) -> MasterBuildRun:
        store = stores.get()
        try:
            return _master_build(project_for(index, params), params["stage"], params["where"], store)
        finally:
            stores.put(store)

    def raw_rebuild(index: int, params: dict) -> RawRun:
        return _raw_rebuild(project_for(index, params), params["stage"])

    yield from submit_module_cases(
        request,
        {
            test_master_build_on_a_fresh_clone_after_a_merge.__name__: master_build,
            test_fixture_is_buildable_with_raw_dvc.__name__: raw_rebuild,
        },
        WORKERS,
    )


# --- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "stage", "where"), _master_build_cases())
def test_master_build_on_a_fresh_clone_after_a_merge(case_runs, request, name, stage, where):
    run = case_runs[request.node.nodeid].result()
    project, result, shape = run.project, run.result, run.project.shape
    assert result.code == 0, _tail(result.output)

    # origin main: one new [skip ci] commit on top of the merge, changing the right dvc.lock
    lock = shape.in_git(shape.lock)
    tip = project.head("main")
    assert tip != project.merge_commit, f"origin main did not move\n{_tail(result.output)}"
    assert project.git("rev-list", "--parents", "-n", "1", tip).split()[1:] == [project.merge_commit]
    subject = project.git("log", "-1", "--format=%s", tip).strip()
    assert "[skip ci]" in subject, subject
    changed = set(project.git("show", "--name-only", "--format=", tip).split())
    assert changed == {lock, *(shape.in_git(path) for path in shape.git_tracked_outs)}

    # it records the CI-built outputs of the forced stage(s) and their downstream, nothing else
    before = _stages(project.git("show", f"{project.merge_commit}:{lock}"))
    after = _stages(project.git("show", f"{tip}:{lock}"))
    assert not _rebuild_problems(shape, stage, before, after)

    # a new clone of main gets exactly those outputs from the remote with plain `dvc pull`
    assert run.checked is not None
    assert run.pulled is not None
    assert run.pulled.returncode == 0, (
        f"dvc pull of the new main failed:\n{_tail(run.pulled.stdout + run.pulled.stderr)}"
    )
    checked = project.project_dir(run.checked)
    cache = checked / ".dvc" / "cache"
    problems = [
        problem for path, out in _lock_outputs(checked, shape) for problem in _content_problems(path, out, cache)
    ]
    assert not problems
    assert run.status is not None
    assert run.status.returncode == 0, run.status.stderr
    assert json.loads(run.status.stdout or "{}") == {}, "the new main's dvc.lock does not match what dvc pull fetched"


@pytest.mark.parametrize(("name", "stage"), BASELINE_CASES)
def test_fixture_is_buildable_with_raw_dvc(case_runs, request, name, stage):
    run = case_runs[request.node.nodeid].result()
    project, shape = run.project, run.project.shape
    assert tuple(run.listed.stdout.split()) == shape.stages, run.listed.stderr
    for args, proc in run.steps:
        assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{_tail(proc.stdout + proc.stderr)}"
    assert len(run.steps) == 3

    # the rebuild changes the merged lock (and the git-tracked metrics), deterministically
    lock = shape.in_git(shape.lock)
    porcelain = project.git("status", "--porcelain", cwd=run.checkout)
    assert {line[3:] for line in porcelain.splitlines()} == {lock, *(shape.in_git(p) for p in shape.git_tracked_outs)}
    before = _stages(project.git("show", f"{project.merge_commit}:{lock}"))
    after = _stages((run.checkout / lock).read_text())
    assert not _rebuild_problems(shape, stage, before, after)
    # and everything the new lock needs is on the remote
    assert run.cloud is not None
    assert run.cloud.returncode == 0, run.cloud.stderr
    assert json.loads(run.cloud.stdout or "{}") == {}
