"""`ci-helpers pr-validate` on every project shape, from the checkout CI really has.

Each case checks a PR out the way `actions/checkout` does for a `pull_request` event: a fresh repo
that fetches GitHub's merge commit `refs/pull/N/merge` at depth 1 and detaches on it, with an empty
DVC cache. pr-validate then gates the metrics the project declares (no --eval-stage, no built-in
evaluator), as the PR recorded them, against main's metrics read the way DVC reads them. The base
ref is spelled a different way per shape: `main`, `origin/main`, `refs/heads/main`, or only
`$GITHUB_BASE_REF`.

The PR branches (see builders.py): `pr-regress` lowers train.scale (the metric drops), `pr-harmless`
raises it (the metric rises), `pr-stale` re-ran only the training stage, so the evaluation
downstream of it is stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.shapes.builders import DEV_IDENTITY, PR_BRANCHES, SHAPES, Shape
from tests.shapes.case_pool import submit_module_cases
from tests.shapes.projects import ShapeProject, copy_shape
from tests.support.project import sh, write_local_remote
from tests.support.run import Outcome, ci_helpers, github_env, read_report
from tests.support.servers import s3_client

pytestmark = pytest.mark.integration

PR_NUMBER = 7
SPELLINGS = ("main", "origin/main", "refs/heads/main", "$GITHUB_BASE_REF")
# the shapes whose metrics file DVC caches: their baseline comes through DVC, not git
CACHED_METRICS = {"cached_metrics", "get_started"}
MISSING_BASELINE_CASES = [
    *(
        pytest.param(name, "first-pr", id=f"{name}-first-pr")
        for name in ("top_metrics", "cached_metrics", "get_started")
    ),
    *(pytest.param(name, "not-on-remote", id=f"{name}-not-on-remote") for name in sorted(CACHED_METRICS)),
]


def _spelling(name: str) -> str:
    return SPELLINGS[list(SHAPES).index(name) % len(SPELLINGS)]


def merge_checkout(project: ShapeProject, branch: str, name: str) -> Path:
    """What actions/checkout leaves for a pull_request event: GitHub's merge of `branch` into
    main as refs/pull/N/merge, fetched at depth 1 into a new repo and checked out detached."""
    env = DEV_IDENTITY
    tree = sh(["git", "rev-parse", f"{branch}^{{tree}}"], project.origin).stdout.strip()  # branch is main + commits
    message = f"Merge {branch} into main"
    merge = sh(["git", "commit-tree", tree, "-p", "main", "-p", branch, "-m", message], project.origin, env)
    ref = f"refs/pull/{PR_NUMBER}/merge"
    sh(["git", "update-ref", ref, merge.stdout.strip()], project.origin)
    target = project.root / name
    sh(["git", "init", "-q", str(target)], project.root)
    sh(["git", "remote", "add", "origin", f"file://{project.origin}"], target)
    sh(
        ["git", "fetch", "-q", "--no-tags", "--depth=1", "origin", f"+{ref}:refs/remotes/pull/{PR_NUMBER}/merge"],
        target,
    )
    sh(["git", "checkout", "-q", "--detach", f"refs/remotes/pull/{PR_NUMBER}/merge"], target)
    assert sh(["git", "rev-list", "--count", "HEAD"], target).stdout.strip() == "1"  # shallow indeed
    write_local_remote(target / project.shape.project, project.remote_url, project.endpoint)
    return target


@dataclass
class PRRun:
    project: ShapeProject
    result: Outcome
    report: dict
    summary: str


def _pr_validate(
    project: ShapeProject, branch: str, tracking_uri: str, *extra: str, spelling: str = "main", name: str = "ci"
) -> PRRun:
    checkout = merge_checkout(project, branch, name)
    runner = github_env(project.root / f"{name}-runner", GITHUB_BASE_REF="main")
    args = [] if spelling == "$GITHUB_BASE_REF" else ["--baseline-ref", spelling]
    cwd = project.project_dir(checkout)
    if project.shape.project:  # a project in a subfolder: run from the git root, as a workflow step does
        cwd, args = checkout, [*args, "--repo", project.shape.project]
    report = project.root / f"{name}-report.json"
    result = ci_helpers(
        "pr-validate",
        "--pr",
        str(PR_NUMBER),
        "--max-regression",
        f"{project.shape.metric}=5%",
        *args,
        *extra,
        "--tracking-uri",
        tracking_uri,
        "--report-json",
        str(report),
        cwd=cwd,
        env={**project.env, **runner},
        timeout=240,
    )
    data = read_report(report) if report.is_file() else {}
    return PRRun(project, result, data, Path(runner["GITHUB_STEP_SUMMARY"]).read_text())


def _remove_main_metrics_from_remote(project: ShapeProject) -> None:
    """Delete, from the DVC remote, the object main's lock records for the out holding the metrics."""
    lock = yaml.safe_load(project.git("show", f"main:{project.shape.in_git(project.shape.lock)}"))
    top = project.shape.metrics_file.split("/")[0]
    (md5,) = [
        out["md5"]
        for entry in lock["stages"].values()
        for out in entry.get("outs", [])
        if out["path"].rstrip("/") in (project.shape.metrics_file, top)
    ]
    s3_client(project.endpoint).delete_object(Bucket=project.bucket, Key=f"dvc/files/md5/{md5[:2]}/{md5[2:]}")


def _first_commit_branch(project: ShapeProject) -> str:
    """A branch `first` whose only commit holds a README: the base of a project's first PR."""
    blob = sh(["git", "hash-object", "-w", "--stdin"], project.origin, input="# new project\n").stdout.strip()
    tree = sh(["git", "mktree"], project.origin, input=f"100644 blob {blob}\tREADME.md\n").stdout.strip()
    commit = sh(["git", "commit-tree", tree, "-m", "first"], project.origin, DEV_IDENTITY).stdout.strip()
    sh(["git", "update-ref", "refs/heads/first", commit], project.origin)
    return "first"


# --- the cases -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def case_runs(request, shape_templates, moto_endpoint, fast_python_env, mlflow_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("pr-shape-cases")
    tracking_uri = mlflow_server.url

    def project_for(index: int, name: str) -> ShapeProject:
        return copy_shape(shape_templates[name], base / f"{index:02d}-{name}", moto_endpoint, fast_python_env)

    def gate(index: int, params: dict) -> PRRun:
        project = project_for(index, params["name"])
        branch = PR_BRANCHES[params["kind"]]
        return _pr_validate(project, branch, tracking_uri, spelling=_spelling(params["name"]))

    def eval_stage(index: int, params: dict) -> PRRun:
        project = project_for(index, params["name"])
        return _pr_validate(project, PR_BRANCHES[params["kind"]], tracking_uri, "--eval-stage", "evaluate")

    def stale(index: int, params: dict) -> PRRun:
        return _pr_validate(project_for(index, params["name"]), PR_BRANCHES["stale"], tracking_uri)

    def missing(index: int, params: dict) -> tuple[PRRun, PRRun]:
        project = project_for(index, params["name"])
        if params["why"] == "first-pr":
            ref = _first_commit_branch(project)
        else:
            ref = "main"
            _remove_main_metrics_from_remote(project)
        branch = PR_BRANCHES["harmless"]
        refused = _pr_validate(project, branch, tracking_uri, spelling=ref, name="refused")
        allowed = _pr_validate(project, branch, tracking_uri, "--allow-missing-baseline", spelling=ref, name="allowed")
        return refused, allowed

    yield from submit_module_cases(
        request,
        {
            test_a_regression_fails_and_a_harmless_pr_passes.__name__: gate,
            test_a_downstream_stage_that_was_not_rerun_is_caught.__name__: stale,
            test_eval_stage_reruns_the_evaluation_and_reads_its_top_level_metrics.__name__: eval_stage,
            test_a_missing_baseline_fails_unless_allowed.__name__: missing,
        },
    )


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


# --- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["regress", "harmless"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_a_regression_fails_and_a_harmless_pr_passes(case_runs, request, name, kind):
    run: PRRun = case_runs[request.node.nodeid].result()
    shape: Shape = run.project.shape
    report, output = run.report, _tail(run.result.output)
    metric = shape.metric

    assert report, output
    assert report["evaluation"]["method"].startswith("recorded:"), output
    assert shape.metrics_file in report["evaluation"]["method"]
    # main's metrics, read the way DVC reads them, from the right place
    source = report["baseline_source"]
    assert source["found"] == [shape.metrics_file], output
    assert source["sources"][shape.metrics_file] == ("dvc" if name in CACHED_METRICS else "git")
    assert source["commit"] == run.project.head("main")
    baseline, value = report["baseline"][metric], report["metrics"][metric]
    # the params diff against main, as `dvc params diff` shows it
    assert report["params_diff"][shape.feature_params]["train.scale"] == {
        "old": 4,
        "new": 1 if kind == "regress" else 5,
    }
    assert "Params changed since" in run.summary
    assert ("from the DVC cache/remote" if name in CACHED_METRICS else "from git") in run.summary
    if kind == "regress":
        assert run.result.code == 1, output
        assert value < 0.95 * baseline
        assert report["verdict"] == "gate-failed"
        assert f"{metric} = " in output
        assert "regressed below" in output
    else:
        assert run.result.code == 0, output
        assert value > baseline
        assert report["verdict"] == "passed"
        assert "❌" not in run.summary


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_downstream_stage_that_was_not_rerun_is_caught(case_runs, request, name):
    run: PRRun = case_runs[request.node.nodeid].result()
    output = _tail(run.result.output)
    evaluate = [stage for stage in run.project.shape.pipeline_stages if stage.endswith("evaluate")]

    assert run.result.code == 1, output
    assert run.report["verdict"] == "stale-lock", output
    (fresh,) = [check for check in run.report["sanity"] if check["name"] != "pushed"]
    assert not fresh["passed"]
    assert any(f"'{evaluate[-1]}'" in problem for problem in fresh["problems"]), fresh
    assert "dvc repro" in fresh["fix"]
    assert run.report["metrics"] == {}  # nothing was evaluated, nothing gated


@pytest.mark.parametrize(("name", "why"), MISSING_BASELINE_CASES)
def test_a_missing_baseline_fails_unless_allowed(case_runs, request, name, why):
    refused, allowed = case_runs[request.node.nodeid].result()
    shape = refused.project.shape
    output = _tail(refused.result.output)

    assert refused.result.code == 1, output
    assert refused.report["verdict"] == "gate-failed"
    assert f"{shape.metric}: no baseline to check --max-regression against" in output
    assert shape.metrics_file in output
    if why == "first-pr":
        assert "does not exist at `first`" in output
    else:
        assert "neither in the DVC cache nor on the remote" in output
        assert "dvc push" in output
    assert "--allow-missing-baseline" in output
    assert "✅" not in json.dumps(refused.report["checks"])

    assert allowed.result.code == 0, _tail(allowed.result.output)
    (check,) = [c for c in allowed.report["checks"] if c["kind"] == "regression"]
    assert check["passed"]
    assert check["baseline"] is None


@pytest.mark.parametrize("kind", ["regress", "harmless"])
@pytest.mark.parametrize("name", ["get_started", "top_metrics"])
def test_eval_stage_reruns_the_evaluation_and_reads_its_top_level_metrics(case_runs, request, name, kind):
    """--eval-stage evaluate re-runs the stage in CI; its metrics are declared only at the top level
    (get_started: inside its cached eval/ directory)."""
    run: PRRun = case_runs[request.node.nodeid].result()
    shape, output = run.project.shape, _tail(run.result.output)

    assert run.report, output
    assert run.report["evaluation"]["method"] == "stage:evaluate", output
    assert set(run.report["metrics"]) >= {shape.metric}
    assert run.result.code == (1 if kind == "regress" else 0), output
    baseline, value = run.report["baseline"][shape.metric], run.report["metrics"][shape.metric]
    if kind == "regress":
        assert value < 0.95 * baseline
    else:
        assert value > baseline
