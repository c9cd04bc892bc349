"""Issue 11's bad-input matrix: every refusal exits with its code, says what is wrong and how to fix
it in one line with no traceback, and changes nothing: not the S3 bucket, not origin's refs, not the
registry, and no MLflow run is left RUNNING.

The cases run concurrently (a thread pool of `ci-helpers` subprocesses), each in its own copy of the
example project (own bare origin, own bucket) and its own model name, so that a change is pinned on
the case that made it. Every failure is collected, so that one run lists every case that misbehaves.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import TEMPLATE_BUCKET
from tests.support.project import Project, sh
from tests.support.run import Outcome, ci_helpers, github_env
from tests.support.servers import refused_port, s3_client

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}
WORKERS = 4
SLOW_REFUSAL = 15.0  # seconds: a refusal in preflight should take a few


# ---------------------------------------------------------------------------------------------
# "Nothing changed"


@dataclass(frozen=True)
class Snapshot:
    s3_keys: frozenset[str]
    refs: tuple[str, ...]  # "<object> <refname>" of every ref of origin
    model: tuple | None  # (versions, aliases) of the case's registered model; None: not registered
    registered_models: frozenset[str]
    running_runs: frozenset[tuple[str, str]]  # (run id, experiment name) of every RUNNING run, in every experiment

    @property
    def s3_count(self) -> int:
        return len(self.s3_keys)


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _all(fetch: Callable) -> list:
    """Every item of a paginated MLflow search; `fetch(page_token)` returns one page."""
    items, token = [], None
    while True:
        page = fetch(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def running_runs(mlflow_url: str) -> frozenset[tuple[str, str]]:
    from mlflow.entities import ViewType

    client = _client(mlflow_url)
    experiments = _all(
        lambda token: client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
    )
    names = {experiment.experiment_id: experiment.name for experiment in experiments}
    runs = _all(
        lambda token: client.search_runs(
            experiment_ids=list(names),
            filter_string="attributes.status = 'RUNNING'",
            run_view_type=ViewType.ALL,
            max_results=1000,
            page_token=token,
        )
    )
    return frozenset((run.info.run_id, names.get(run.info.experiment_id, "?")) for run in runs)


def registered_model(mlflow_url: str, model_name: str) -> tuple | None:
    from mlflow.exceptions import MlflowException

    client = _client(mlflow_url)
    try:
        model = client.get_registered_model(model_name)
    except MlflowException:
        return None
    versions = _all(
        lambda token: client.search_model_versions(f"name = '{model_name}'", max_results=1000, page_token=token)
    )
    return tuple(sorted(int(version.version) for version in versions)), tuple(sorted(model.aliases.items()))


def snapshot(project: Project, mlflow_url: str, model_name: str) -> Snapshot:
    """The project's S3 objects, origin's refs, the registered model `model_name`, the names of all
    registered models, and the MLflow runs that are RUNNING."""
    keys = [
        item["Key"]
        for page in s3_client(project.s3_endpoint).get_paginator("list_objects_v2").paginate(Bucket=project.bucket)
        for item in page.get("Contents", [])
    ]
    refs = sh(["git", "for-each-ref", "--format=%(objectname) %(refname)"], project.origin).stdout.splitlines()
    client = _client(mlflow_url)
    models = _all(lambda token: client.search_registered_models(max_results=1000, page_token=token))
    return Snapshot(
        frozenset(keys),
        tuple(sorted(refs)),
        registered_model(mlflow_url, model_name),
        frozenset(model.name for model in models),
        running_runs(mlflow_url),
    )


def changes(before: Snapshot, after: Snapshot, all_models: bool = False, others: tuple[str, ...] = ()) -> list[str]:
    """What changed, in words. New experiments, and runs that were opened and ended, are fine.
    Other cases run concurrently: the names of all models are compared only when asked, and a run
    RUNNING in an experiment of another case (a name starting with one of `others`) is left to it
    and to the global check after all cases."""
    found = []
    if after.s3_keys != before.s3_keys:
        added, removed = sorted(after.s3_keys - before.s3_keys), sorted(before.s3_keys - after.s3_keys)
        found.append(f"S3 objects {before.s3_count} -> {after.s3_count} (added {added[:5]}, removed {removed[:5]})")
    if after.refs != before.refs:
        found.append(f"origin's refs changed: {sorted(set(before.refs) ^ set(after.refs))}")
    if after.model != before.model:
        found.append(f"the registered model changed: {before.model} -> {after.model}")
    if all_models and after.registered_models - before.registered_models:
        found.append(f"new registered models: {sorted(after.registered_models - before.registered_models)}")
    running = [
        f"{run_id} ({experiment})"
        for run_id, experiment in sorted(after.running_runs - before.running_runs)
        if not experiment.startswith(others)
    ]
    if running:
        found.append(f"runs left RUNNING: {running}")
    return found


# ---------------------------------------------------------------------------------------------
# How a refusal reads


def refusal_problems(result: Outcome, code: int, fragments: tuple[str, ...], in_actions: bool) -> list[str]:
    """The exit code; no traceback; on Actions exactly one `::error` line, elsewhere a last line
    `error: <message>` on stderr; and that one line says every fragment (the problem, the fix)."""
    found = []
    if result.code != code:
        found.append(f"exit {result.code}, expected {code}")
    if "Traceback" in result.output:
        found.append("a traceback was printed")
    if in_actions:
        errors = [line for line in result.output.splitlines() if line.startswith("::error")]
        if len(errors) != 1:
            found.append(f"{len(errors)} ::error lines, expected exactly one: {errors}")
            return found
        line = errors[0]
        if "%0A" in line:
            found.append(f"the ::error message spans several lines: {line}")
    else:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        line = lines[-1] if lines else ""
        if not line.startswith("error: "):
            found.append(f"the last line of stderr is not one `error: <message>` line: {line!r}")
            return found
    missing = [fragment for fragment in fragments if fragment not in line]
    if missing:
        found.append(f"the error line does not say {missing}: {line!r}")
    return found


def _tail(result: Outcome, lines: int = 25) -> str:
    return "\n".join(result.output.strip().splitlines()[-lines:])


@dataclass
class Ran:
    label: str
    result: Outcome
    seconds: float
    problems: list[str] = field(default_factory=list)


def _report(runs: list[Ran], overall: list[str] | None = None) -> str:
    parts = [f"overall: {overall}"] if overall else []
    parts += [
        f"--- {ran.label}: exit {ran.result.code} in {ran.seconds:.1f}s\n  - "
        + "\n  - ".join(ran.problems)
        + f"\n  output (tail):\n{_tail(ran.result)}"
        for ran in runs
        if ran.problems
    ]
    return "\n\n".join(parts)


def _copy(template: Path, moto_endpoint: str, root: Path) -> Project:
    """One case's own copy of the example project: its own origin, dev workspace and bucket."""
    root.mkdir(parents=True)
    return Project.copy_of(template, root, moto_endpoint, TEMPLATE_BUCKET)


# ---------------------------------------------------------------------------------------------
# The refusals


def _commit(checkout: Path, path: str, content: bytes) -> None:
    (checkout / path).write_bytes(content)
    sh(["git", "commit", "-qam", f"change {path}"], checkout)


def _append(path: str, text: str) -> Callable[[Path], None]:
    def prepare(checkout: Path) -> None:
        _commit(checkout, path, (checkout / path).read_bytes() + text.encode())

    return prepare


def _replace(path: str, content: bytes) -> Callable[[Path], None]:
    def prepare(checkout: Path) -> None:
        _commit(checkout, path, content)

    return prepare


FREE_PORT = "http://127.0.0.1:<free port>"
FIX_IT = "fix it, then check with `dvc stage list --all`"


@dataclass(frozen=True)
class BuildCase:
    """`master-build --model-name <unique> --tracking-uri <server>` on a fresh checkout of dev-model."""

    id: str
    args: tuple[str, ...]
    code: int
    fragments: tuple[str, ...]  # all on the one error line: the problem and its fix
    prepare: Callable[[Path], None] | None = None  # edits and commits in the checkout
    model_name: str | None = None  # None: a unique, valid name
    tracking_uri: str | None = None  # None: the test's MLflow server


BUILD_CASES = [
    BuildCase(
        "git-remote-unknown",
        ("--git-remote", "nope"),
        2,
        ("git remote 'nope' is not configured (known: origin)", "pass an existing one to --git-remote"),
    ),
    BuildCase(
        "gated-metric-unknown",
        ("--threshold", "metrics.nope>=0.5"),
        2,
        ("gated metric 'metrics.nope' is in none of metrics.json", "fix the metric name in --threshold"),
    ),
    BuildCase(
        "stage-transition-bogus",
        ("--stage-transition", "Bogus"),
        2,
        ("invalid --stage-transition 'Bogus'", "pass one of Staging, Production, Archived, None"),
    ),
    BuildCase(
        "branch-invalid",
        ("--branch", "a..b"),
        2,
        ("invalid branch name 'a..b'", "pass a valid git branch name to --branch"),
    ),
    BuildCase(
        "alias-latest",
        ("--alias", "latest"),
        2,
        ("invalid alias 'latest' for --alias", "not 'latest' or 'v<N>'"),
    ),
    BuildCase(
        "model-name-invalid",
        (),
        2,
        ("invalid model name 'bad name!'", "use letters, digits"),
        model_name="bad name!",
    ),
    BuildCase(
        "dvc-yaml-syntax",
        (),
        2,
        ("'dvc.yaml', YAML file structure is corrupted", FIX_IT),
        prepare=_append("dvc.yaml", "  broken: [unclosed\n"),
    ),
    BuildCase(
        "dvc-lock-syntax",
        (),
        2,
        ("'dvc.lock', YAML file structure is corrupted", FIX_IT),
        prepare=_append("dvc.lock", "  broken: [unclosed\n"),
    ),
    BuildCase(
        "params-not-utf8",
        (),
        2,
        ("'params.yaml', is not valid utf-8", FIX_IT),
        prepare=_replace("params.yaml", b"train:\n  n_estimators: \xff\xfe\n"),
    ),
    BuildCase(
        "report-json-unwritable",
        ("--report-json", "/proc/nope/report.json"),
        2,
        ("/proc/nope/report.json cannot be written", "pass a writable path"),
    ),
    BuildCase(
        "tracking-uri-scheme",
        (),
        2,
        ("MLflow tracking URI htp://127.0.0.1:1 has a scheme MLflow does not know", "fix --tracking-uri"),
        tracking_uri="htp://127.0.0.1:1",
    ),
    BuildCase(
        "tracking-uri-nothing-listening",
        (),
        3,
        ("MLflow tracking server http://127.0.0.1:", "is unreachable after retries"),
        tracking_uri=FREE_PORT,
    ),
    BuildCase(
        "dvc-remote-unknown",
        ("--remote", "nope"),
        2,
        ("DVC remote 'nope' is not configured (known: storage)", "pass one of them to --remote"),
    ),
]


@dataclass(frozen=True)
class RegistryCase:
    id: str
    args: tuple[str, ...]  # "{model}": a unique model name that is not registered
    code: int
    fragments: tuple[str, ...]


REGISTRY_CASES = [
    RegistryCase(
        "register-run-missing",
        ("register-model", "--model-name", "{model}", "--run-id", "0123456789abcdef0123456789abcdef"),
        2,
        ("MLflow run '0123456789abcdef0123456789abcdef' does not exist", "pass the id of an existing run to --run-id"),
    ),
    RegistryCase(
        "register-uri-malformed",
        ("register-model", "--model-name", "{model}", "--model-uri", "not a uri"),
        2,
        ("invalid --model-uri 'not a uri'", "use models:/m-<id>"),
    ),
    RegistryCase(
        "promote-model-missing",
        ("promote", "--model-name", "{model}"),
        2,
        ("model '{model}' has no alias 'staging' (or does not exist)", "register it first"),
    ),
    RegistryCase(
        "rollback-model-missing",
        ("rollback", "--model-name", "{model}"),
        2,
        ("model '{model}' has no alias 'production' (or does not exist)", "register it first"),
    ),
]


def _experiment_prefix(case: BuildCase | RegistryCase, in_actions: bool) -> str:
    return f"bad-{case.id}-{'actions' if in_actions else 'local'}-"


def _run_refusal(
    case: BuildCase | RegistryCase,
    in_actions: bool,
    project: Project,
    mlflow_url: str,
    root: Path,
    others: tuple[str, ...],
) -> Ran:
    """One refusal; `others`: the experiment prefixes of the cases that run at the same time."""
    mode = "actions" if in_actions else "local"
    label = f"{case.id} [{mode}]"
    checkout = project.checkout("dev-model", name=f"ci-{mode}")
    env = github_env(root / f"gh-{mode}") if in_actions else {}
    if isinstance(case, BuildCase):
        if case.prepare:
            case.prepare(checkout)
        name = case.model_name or f"{case.id}-{uuid.uuid4().hex[:6]}"
        uri = case.tracking_uri or mlflow_url
        uri = f"http://127.0.0.1:{refused_port()}" if uri == FREE_PORT else uri
        experiment = f"{_experiment_prefix(case, in_actions)}{uuid.uuid4().hex[:6]}"
        args = ["master-build", "--model-name", name, "--tracking-uri", uri, "--experiment", experiment, *case.args]
        env.update(CI_IDENTITY)
    else:
        name = f"{case.id}-{uuid.uuid4().hex[:6]}"
        args = [*(arg.replace("{model}", name) for arg in case.args), "--tracking-uri", mlflow_url]
    fragments = tuple(fragment.replace("{model}", name) for fragment in case.fragments)
    before = snapshot(project, mlflow_url, name)
    started = time.monotonic()
    result = ci_helpers(*args, cwd=checkout, env=env)
    ran = Ran(label, result, time.monotonic() - started)
    ran.problems += refusal_problems(result, case.code, fragments, in_actions)
    ran.problems += changes(before, snapshot(project, mlflow_url, name), others=others)
    return ran


def test_every_refusal_exits_with_its_code_in_one_line_and_changes_nothing(
    project, template, moto_endpoint, mlflow_server, tmp_path
):
    """Each case outside and inside GitHub Actions, each in its own copy of the project."""
    jobs = []
    for case in [*BUILD_CASES, *REGISTRY_CASES]:
        for in_actions in (False, True):
            root = tmp_path / f"{case.id}-{'gh' if in_actions else 'local'}"
            jobs.append((case, in_actions, _copy(template, moto_endpoint, root), root))
    prefixes = [_experiment_prefix(case, in_actions) for case, in_actions, _, _ in jobs]
    before = snapshot(project, mlflow_server.url, "none")

    def run(job: tuple) -> Ran:
        case, in_actions, copy, root = job
        others = tuple(prefix for prefix in prefixes if prefix != _experiment_prefix(case, in_actions))
        return _run_refusal(case, in_actions, copy, mlflow_server.url, root, others)

    with ThreadPoolExecutor(WORKERS) as pool:
        runs = list(pool.map(run, jobs))

    overall = changes(before, snapshot(project, mlflow_server.url, "none"), all_models=True)
    timings = ", ".join(f"{ran.label} {ran.seconds:.1f}s" for ran in sorted(runs, key=lambda ran: -ran.seconds))
    slow = [ran.label for ran in runs if ran.seconds > SLOW_REFUSAL]
    print(f"\nrefusal timings ({WORKERS} at a time): {timings}\nslower than {SLOW_REFUSAL:.0f}s: {slow or 'none'}")
    assert not overall, _report(runs, overall)
    assert not [ran for ran in runs if ran.problems], _report(runs)


# ---------------------------------------------------------------------------------------------
# The cases that get past preflight: they open a run, so they run apart from the refusals


def _runs_of(mlflow_url: str, experiment: str) -> list:
    client = _client(mlflow_url)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def _build(checkout: Path, mlflow_url: str, name: str, experiment: str, *args: str) -> tuple[Outcome, float]:
    started = time.monotonic()
    result = ci_helpers(
        "master-build",
        "--model-name",
        name,
        "--tracking-uri",
        mlflow_url,
        "--experiment",
        experiment,
        *args,
        cwd=checkout,
        env=CI_IDENTITY,
    )
    return result, time.monotonic() - started


def _no_model_logged(project: Project, mlflow_url: str, tmp_path: Path) -> Ran:
    """The rebuilt stages log no model (evaluate only), yet --model-name asks to register one: a
    refusal after the rebuild that still writes nothing, and ends the run it opened FAILED."""
    name, experiment = f"no-model-{uuid.uuid4().hex[:6]}", f"past-no-model-{uuid.uuid4().hex[:6]}"
    checkout = project.checkout("pr-tampered", name="ci-no-model")
    before = snapshot(project, mlflow_url, name)
    result, seconds = _build(checkout, mlflow_url, name, experiment, "--stage", "evaluate")
    ran = Ran("no-model-logged", result, seconds)
    ran.problems += refusal_problems(
        result,
        2,
        (
            "the build's training logged no model to MLflow run",
            "log one with mlflow.<flavor>.log_model, declare it under `artifacts:`, or pass --model-path",
            "Build state: nothing pushed, registered or committed",
        ),
        in_actions=False,
    )
    ran.problems += changes(before, snapshot(project, mlflow_url, name), others=("past-deep-", "past-tag-twice-"))
    statuses = [run.info.status for run in _runs_of(mlflow_url, experiment)]
    if statuses != ["FAILED"]:
        ran.problems.append(f"the build's runs ended {statuses}, expected one FAILED run")
    return ran


def _deep_metrics(project: Project, mlflow_url: str, tmp_path: Path) -> Ran:
    """A committed metrics.json 10,000 levels deep. Its stage (evaluate) runs downstream of train,
    so the build rewrites it: the honest outcome is a normal build whose lock commit carries the
    rewritten file; what must never happen is an internal error or a crash."""
    name, experiment = f"deep-{uuid.uuid4().hex[:6]}", f"past-deep-{uuid.uuid4().hex[:6]}"
    setup = project.checkout("dev-model", name="merge-deep")
    _commit(setup, "metrics.json", ('{"m":' * 10_000 + "1" + "}" * 10_000).encode())
    sh(["git", "push", "-q", "origin", "dev-model"], setup)  # merged: it is the commit CI builds
    built = project.head("dev-model")
    result, seconds = _build(project.checkout("dev-model", name="ci-deep"), mlflow_url, name, experiment)
    ran = Ran("metrics-json-10000-deep", result, seconds)
    if result.code != 0 or "Traceback" in result.output:
        ran.problems.append(f"exit {result.code}, expected 0 (evaluate rewrites metrics.json), with no traceback")
        return ran
    tip = project.head("dev-model")
    parent = sh(["git", "rev-parse", f"{tip}^"], project.origin).stdout.strip()
    if parent != built:
        ran.problems.append(f"no lock commit on top of the built commit {built[:12]} (tip {tip[:12]})")
    metrics = json.loads(sh(["git", "show", f"{tip}:metrics.json"], project.origin).stdout)
    if not isinstance(metrics.get("metrics", {}).get("r2_score"), float):
        ran.problems.append(f"the committed metrics.json is not the rebuilt one: {str(metrics)[:200]}")
    if [run.info.status for run in _runs_of(mlflow_url, experiment)] != ["FINISHED"]:
        ran.problems.append(f"runs: {[run.info.status for run in _runs_of(mlflow_url, experiment)]}")
    return ran


def _tag_mode_twice(project: Project, mlflow_url: str, tmp_path: Path) -> Ran:
    """Positive control: a re-run in tag mode of the same commit is accepted, and the tag is kept."""
    name, experiment = f"tag-twice-{uuid.uuid4().hex[:6]}", f"past-tag-twice-{uuid.uuid4().hex[:6]}"
    built, branch_refs = project.head("dev-model"), project.head("refs/heads/dev-model")
    tag = f"refs/tags/mlops/lock/{built[:12]}"
    problems, seconds, results = [], 0.0, []
    for attempt in ("first", "second"):
        checkout = project.checkout("dev-model", name=f"ci-tag-{attempt}")
        result, took = _build(checkout, mlflow_url, name, experiment, "--lock-mode", "tag")
        results.append(result)
        seconds += took
        if result.code != 0:
            problems.append(f"the {attempt} build exited {result.code}, expected 0:\n{_tail(result)}")
            break
        tagged = sh(["git", "rev-parse", "--verify", "-q", f"{tag}^{{commit}}"], project.origin, check=False)
        if tagged.returncode != 0:
            problems.append(f"after the {attempt} build, origin has no {tag}")
            break
        target = tagged.stdout.strip()
        if attempt == "first":
            first_target = target
            if sh(["git", "rev-parse", f"{target}^"], project.origin).stdout.strip() != built:
                problems.append(f"{tag} -> {target[:12]}, which is not a lock commit on top of {built[:12]}")
        elif target != first_target:
            problems.append(f"the second build moved {tag}: {first_target[:12]} -> {target[:12]}")
    ran = Ran("lock-mode-tag-twice", results[-1], seconds, problems)
    if problems:
        return ran
    if project.head("refs/heads/dev-model") != branch_refs:
        ran.problems.append("tag mode moved the branch")
    model = registered_model(mlflow_url, name)
    if model != ((1,), (("staging", "1"),)):
        ran.problems.append(f"registered model after two builds of one commit: {model}, expected v1 behind staging")
    statuses = sorted(run.info.status for run in _runs_of(mlflow_url, experiment))
    if statuses != ["FINISHED", "FINISHED"]:
        ran.problems.append(f"the two builds' runs ended {statuses}")
    return ran


def test_builds_past_preflight_end_their_run_and_write_only_when_they_pass(
    template, moto_endpoint, mlflow_server, tmp_path
):
    """No model logged (refused after the rebuild: exit 2, nothing written, run FAILED); a 10,000
    levels deep metrics.json (rewritten by the build); lock-mode tag twice on one commit (both 0)."""
    before = running_runs(mlflow_server.url)
    jobs = [
        (_no_model_logged, _copy(template, moto_endpoint, tmp_path / "no-model")),
        (_deep_metrics, _copy(template, moto_endpoint, tmp_path / "deep")),
        (_tag_mode_twice, _copy(template, moto_endpoint, tmp_path / "tag")),
    ]

    with ThreadPoolExecutor(len(jobs)) as pool:
        runs = list(pool.map(lambda job: job[0](job[1], mlflow_server.url, tmp_path), jobs))

    left_running = sorted(running_runs(mlflow_server.url) - before)
    print("\n" + ", ".join(f"{ran.label} exit {ran.result.code} in {ran.seconds:.0f}s" for ran in runs))
    assert not left_running, f"runs left RUNNING: {left_running}\n{_report(runs)}"
    assert not [ran for ran in runs if ran.problems], _report(runs)
