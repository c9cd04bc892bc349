"""`master-build`: the official model on main, always built in CI.

Preflight, then act. Every check that can refuse runs before the first write: the options, the
project model, the tracking server, the DVC remote, `git push --dry-run`. Then: open the MLflow run
while the rebuilt stages' inputs are pulled (MLflow's side runs on a thread of its own from the
preflight on, see background_tracking), hand the run to the training script, force-rebuild the
stages and their downstream; gate; find the model to register. Only then the writes, in an order
a re-run always finishes: `dvc push` and verify it; register the version (idempotent, keyed on the
commit); commit dvc.lock; move the alias last, and only forward in commit order. A failure says
what was done and what was not; the helper-owned run never stays RUNNING.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from .. import model_source
from ..adapters import dvc, git, github
from ..adapters.mlflow_server import script_newer_than_server
from ..adapters.registry import (
    RegisteredVersion,
    alias_holder,
    move_alias_in_commit_order,
    register_version,
    run_model,
    tag_version,
    transition_stage,
    version_tags,
    version_with_tag,
)
from ..adapters.tracking import TrackedRun, resolve_tracking_uri, run_environment
from ..background_tracking import SIGNAL_WAIT_SECONDS, BackgroundTracking
from ..baseline import Baseline, read_baseline
from ..branch_check import check_head_on_branch
from ..build_progress import BuildProgress, reworded
from ..cancellation import SignalReceived, deferred, received_signal, shielded
from ..commit_order import ancestry
from ..errors import ConfigError, InfrastructureError, StageFailed, ValidationFailed
from ..failures import domain_error
from ..gate import GateResult, RegressionRule, Threshold, evaluate_gate, parse_gate_rules
from ..lock_commit import LOCK_MODES, GitIdentity, LockCommitResult, commit_lock_file, resolve_identity
from ..metrics import read_metrics_files
from ..project import Project, load_project, read_out_hashes, stages_repro_would_run
from ..provenance import GitContext, build_branch, project_name, provenance_tags
from ..provenance_record import (
    StatementFacts,
    attach_statement,
    dvc_dependencies,
    model_out,
    params_digests,
    save_statement_copy,
)
from ..provenance_statement import BuildParameters, GitSource, builder_id, invocation_id, tool_version
from ..push_check import PushBase, first_parent_base, verify_pushed
from ..rebuild_plan import RebuildPlan, plan_rebuild
from ..registry_names import validate_alias, validate_model_name, validate_stage
from ..report.build import build_failures, build_outputs, build_report_json, render_build_markdown
from ..report.build_failure import publish_build_failure
from ..report.publish import publish_report
from ..results import BuildResult
from ..sanity_checks import check_rebuild_inputs_pushed
from ..supersession import Supersession, alias_diverged, alias_newer, branch_supersedes, fetch_branch_tip
from ..trend import DEFAULT_TREND_BUILDS, Trend, read_trend


@dataclass(frozen=True)
class MasterBuildOptions:
    repo: Path
    remote: str | None = None
    stages: tuple[str, ...] = ("train",)
    metrics_files: tuple[str, ...] = ()
    thresholds: tuple[str, ...] = ()
    max_regressions: tuple[str, ...] = ()
    baseline_ref: str | None = None
    allow_missing_baseline: bool = False
    model_name: str | None = None
    alias: str = "staging"
    stage_transition: str | None = None
    lock_mode: str = "commit"
    git_remote: str = "origin"
    branch: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    register_failed: bool = False
    push_run_cache: bool = False
    model_artifact_path: str = "model"
    model_path: str | None = None  # a file or directory to register when the script logs no model
    model_artifact: str | None = None  # the dvc.yaml `artifacts:` entry to register
    git_user_name: str | None = None
    git_user_email: str | None = None
    trend_builds: int = DEFAULT_TREND_BUILDS  # previous builds the report's trend reads back; 0: off


@dataclass(frozen=True)
class BuildInputs:
    """Every input, checked against the project model before the first write."""

    project: Project
    remote: str
    endpoint: str
    plan: RebuildPlan
    metrics_files: tuple[str, ...]
    thresholds: tuple[Threshold, ...]
    regressions: tuple[RegressionRule, ...]
    branch: str | None
    identity: GitIdentity | None
    model_name: str | None
    alias: str
    stage_transition: str | None
    tracking_uri: str
    experiment: str
    baseline: Baseline | None

    @property
    def repo(self) -> Path:
        return self.project.root

    @cached_property
    def push_base(self) -> PushBase | None:
        """HEAD's first parent's out hashes, read once for the preflight and the verification."""
        return first_parent_base(self.project)

    @cached_property
    def upstream_to_run(self) -> tuple[str, ...] | None:
        """The upstream stages `dvc repro --allow-missing` would run rather than skip (None: DVC
        decides), read from the index the project model built, before the pull changes it."""
        plan = self.plan
        return stages_repro_would_run(self.project, plan.upstream) if plan.upstream else ()

    @property
    def gated_metrics(self) -> tuple[str, ...]:
        names = [rule.metric for rule in self.thresholds] + [rule.metric for rule in self.regressions]
        return tuple(dict.fromkeys(names))


def check_build_inputs(options: MasterBuildOptions) -> BuildInputs:
    """Every local check: options, names, the project model, the branch, the identity, the model."""
    thresholds, regressions = parse_gate_rules(options.thresholds, options.max_regressions)
    if options.lock_mode not in LOCK_MODES:
        raise ConfigError(f"invalid --lock-mode '{options.lock_mode}'; pass one of {', '.join(LOCK_MODES)}")
    model_name = validate_model_name(options.model_name) if options.model_name else None
    alias = validate_alias(options.alias)
    stage = validate_stage(options.stage_transition) if options.stage_transition else None
    project = load_project(options.repo)
    remote = dvc.resolve_remote(project.root, options.remote)
    plan = plan_rebuild(project, list(options.stages) or ["train"])
    branch = build_branch(project.root, options.branch)
    if options.lock_mode == "commit" and not branch:
        raise ConfigError("HEAD is detached and no branch was given; pass --branch main (or --lock-mode tag|none)")
    if branch:
        git.check_branch_name(project.git_root, branch)
    identity = (
        resolve_identity(project.root, options.git_user_name, options.git_user_email)
        if options.lock_mode != "none"
        else None
    )
    metrics_files = options.metrics_files or project.metrics_files_of(plan.rebuilt)
    if (thresholds or regressions) and not metrics_files:
        raise ConfigError("the gate has rules but the rebuilt stages declare no metrics; pass --metrics-file")
    if model_name:
        model_source.check_model_source_declared(project, options.model_path, options.model_artifact)
    inputs = BuildInputs(
        project,
        remote,
        dvc.remote_endpoint(project.root, remote),
        plan,
        tuple(metrics_files),
        thresholds,
        regressions,
        branch,
        identity,
        model_name,
        alias,
        stage,
        resolve_tracking_uri(options.tracking_uri, project.root),
        options.experiment or project_name(project.root),
        read_baseline(project, options.baseline_ref, tuple(metrics_files)) if options.baseline_ref else None,
    )
    _check_gated_metrics_known(inputs)
    return inputs


def _check_gated_metrics_known(inputs: BuildInputs) -> None:
    """Refuse a gated metric that the committed metrics files lack, before the rebuild. When a
    file is not in the checkout (DVC caches it), only the build can tell: that check runs after
    the rebuild and still before any push."""
    present = [name for name in inputs.metrics_files if (inputs.repo / name).is_file()]
    if not inputs.gated_metrics or len(present) != len(inputs.metrics_files):
        return
    try:
        committed = read_metrics_files(inputs.repo, present)
    except ConfigError:
        return  # an unreadable committed file: the rebuild rewrites it, and the gate reads that
    unknown = [name for name in inputs.gated_metrics if name not in committed]
    if unknown:
        raise ConfigError(
            f"gated metric {', '.join(repr(name) for name in unknown)} is in none of "
            f"{', '.join(inputs.metrics_files)} (they hold: {', '.join(sorted(committed)) or 'nothing'}); "
            "fix the metric name in --threshold/--max-regression"
        )


def check_endpoints(inputs: BuildInputs, options: MasterBuildOptions) -> None:
    """Every endpoint the build will write to answers and accepts us, the branch it commits to
    exists there and holds HEAD, and the inputs it will pull are on the DVC remote: all before
    the first write. The tracking server is checked meanwhile, on BackgroundTracking's thread."""
    with github.group("Preflight: tracking server, DVC remote, git remote"):
        dvc.check_remote_answers(inputs.repo, inputs.remote, inputs.endpoint)
        git_root = inputs.project.git_root
        if options.lock_mode == "commit" and inputs.branch:
            git.check_push_allowed(git_root, options.git_remote, inputs.branch)
            check_head_on_branch(git_root, options.git_remote, inputs.branch)
        elif options.lock_mode == "tag":
            git.check_push_allowed(git_root, options.git_remote, None)
    if inputs.plan.pull_targets:
        with github.group(f"Preflight: the rebuild's inputs are on '{inputs.remote}'"):
            base = inputs.push_base
            checked = check_rebuild_inputs_pushed(
                inputs.project, inputs.plan.pull_targets, inputs.remote, inputs.endpoint, base
            )
            sys.stderr.write(f"on '{inputs.remote}': {checked}\n")


def pull_rebuild_inputs(inputs: BuildInputs) -> None:
    """Pull the rebuilt stages' inputs, never their outputs (and nothing when they have none)."""
    plan = inputs.plan
    targets = list(plan.pull_targets)
    if inputs.upstream_to_run:  # read now, from the index the pull makes stale
        sys.stderr.write(f"upstream stages changed since dvc.lock: {', '.join(inputs.upstream_to_run)}\n")
    with github.group(f"Pull the inputs of {', '.join(plan.forced)}: {', '.join(targets) or 'nothing'}"):
        if targets:
            dvc.pull(inputs.repo, targets, inputs.remote, inputs.endpoint)


def rebuild(inputs: BuildInputs, run: TrackedRun) -> None:
    """Reuse upstream, force the rebuilt stages and their downstream (their inputs are pulled)."""
    repo, plan = inputs.repo, inputs.plan
    env = run_environment(run)
    try:
        if plan.upstream and inputs.upstream_to_run == ():
            with github.group(f"Reuse upstream stages: {', '.join(plan.upstream)}"):
                # no `dvc repro` process (nor its run-cache pull) for stages it would only skip
                sys.stderr.write(f"unchanged since dvc.lock (missing data aside): {', '.join(plan.upstream)}\n")
        elif plan.upstream:
            with github.group(f"Reuse or rebuild upstream stages: {', '.join(plan.upstream)}"):
                # Unchanged upstream stages are skipped although their own inputs are not pulled
                # (--allow-missing); a changed one runs and pulls what it lacks (--pull).
                dvc.repro(repo, list(plan.upstream), ["--pull", "--allow-missing"], env)
        forced = f"Force-rebuild {', '.join(plan.forced)} and downstream: {', '.join(plan.downstream) or 'none'}"
        with github.group(forced):
            dvc.repro(repo, list(plan.forced), ["--force", "--downstream"], env)
    except StageFailed as error:
        try:
            why = script_newer_than_server(str(error), run.tracking_uri)
        except Exception:  # asking the server failed: the stage's failure is still the one to report
            why = None
        if why is None:
            raise
        raise reworded(error, f"{why}: {error}") from None


def push_and_verify(inputs: BuildInputs, built_hashes: dict[str, str], push_run_cache: bool) -> None:
    """`dvc push` the CI-built outputs, then refuse to go on unless every out the lock files now
    record is on the remote: a lock whose outs exist nowhere must never reach the branch."""
    plan = inputs.plan
    # Never an empty target list: `dvc push` without targets pushes the whole workspace.
    if plan.rebuilt_cached_outputs:
        with github.group(f"Push CI-built outputs to '{inputs.remote}'"):
            dvc.push(
                inputs.repo, list(plan.rebuilt_cached_outputs), inputs.remote, inputs.endpoint, run_cache=push_run_cache
            )
    with github.group(f"Verify that every out in the new lock is on '{inputs.remote}'"):
        cached = {out.path for out in inputs.project.outs if out.cached}
        recorded = {path: md5 for path, md5 in built_hashes.items() if path in cached}
        checked = verify_pushed(inputs.repo, inputs.remote, inputs.endpoint, recorded, inputs.push_base)
        sys.stderr.write(f"on '{inputs.remote}': {checked.detail}\n")
        missing = list(checked.missing)
    if missing:
        rebuilt = [path for path in missing if path in plan.rebuilt_cached_outputs]
        listed = ", ".join(missing[:10])
        if rebuilt:
            raise InfrastructureError(
                f"after `dvc push`, {listed} is still not on {inputs.endpoint}", endpoint=inputs.endpoint
            )
        raise ValidationFailed(
            f"dvc.lock records {listed}, which is on no remote ({inputs.endpoint}). "
            "Push it with `dvc push` from where it was built, or force its stage with --stage"
        )


def _lock_commit_paths(inputs: BuildInputs) -> list[str]:
    """Git paths to commit: every lock file, and rebuilt outputs that git (not DVC) tracks."""
    project, plan = inputs.project, inputs.plan
    uncached = [path for path in plan.rebuilt_outputs if path not in plan.rebuilt_cached_outputs]
    return [project.git_path(path) for path in (*project.lockfiles, *uncached)]


@dataclass(frozen=True)
class ModelToRegister:
    source: str
    model_id: str | None
    tags: dict[str, str]


def find_model(
    inputs: BuildInputs, options: MasterBuildOptions, run: TrackedRun, hashes: dict[str, str]
) -> ModelToRegister:
    """The model the training script logged to the run, else the file or directory `--model-path`
    or dvc.yaml's `artifacts:` names, logged into the run now. Refuses before any push."""
    logged = run_model(run.tracking_uri, run.run_id, options.model_artifact_path)
    if logged:
        return ModelToRegister(logged[0], logged[1], {})
    path = model_source.resolve_model_path(inputs.project, options.model_path, options.model_artifact)
    if path is None:
        raise ConfigError(
            f"the build's training logged no model to MLflow run {run.run_id} (no logged model, no "
            f"'{options.model_artifact_path}/MLmodel'), and dvc.yaml declares no `artifacts:` entry of type model; "
            "log one with mlflow.<flavor>.log_model, declare it under `artifacts:`, or pass --model-path"
        )
    with github.group(f"Log {path} into MLflow run {run.run_id}"):
        logged_path = model_source.log_model_from_path(
            run,
            inputs.repo,
            path,
            model_source.model_md5(inputs.project, path, hashes),
            dvc.remotes(inputs.repo).get(inputs.remote),
        )
    return ModelToRegister(logged_path.source, logged_path.model_id, dict(logged_path.tags))


def _settle_tracking(tracking: BackgroundTracking, progress: BuildProgress, error: BaseException) -> BaseException:
    """The failure path before the run was recorded: take the run over (the build's failure path
    ends it), and pick the error to report, the one that came first in the sequential order (the
    tracking server's check, then the run's creation, then the pull). On a signal, the wait is
    short: a run that arrives later is ended by the tracking thread."""
    with shielded():
        if isinstance(error, SignalReceived):
            taken = tracking.abandon("KILLED", SIGNAL_WAIT_SECONDS)
        else:
            taken = tracking.abandon("FAILED", None, stop_waiting=lambda: received_signal() is not None)
        if taken is not None:
            progress.run = taken
        if isinstance(error, SignalReceived) or progress.run is not None or not tracking.finished:
            return error
        return tracking.first_error() or error


def _register(
    inputs: BuildInputs, result: BuildResult, model: ModelToRegister, lock_commit: str | None = None
) -> RegisteredVersion:
    assert inputs.model_name
    assert result.run  # a build stopped before its run never registers
    with github.group(f"Register model '{inputs.model_name}'"):
        tags = {**result.provenance, **model.tags, "mlops.verdict": result.verdict, "mlops.run_id": result.run.run_id}
        if lock_commit:
            tags["mlops.lock_commit"] = lock_commit
        return register_version(
            result.run.tracking_uri,
            inputs.model_name,
            model.source,
            result.run.run_id,
            tags,
            model_id=model.model_id,
            reuse_key=("mlops.git_commit", result.git.commit),
        )


def _register_with_statement(
    inputs: BuildInputs,
    options: MasterBuildOptions,
    result: BuildResult,
    model: ModelToRegister,
    built_hashes: dict[str, str],
    progress: BuildProgress,
) -> BuildResult:
    """Register the version (or reuse this commit's), then give it its provenance statement."""
    registered = _register(inputs, result, model)
    result = replace(result, registered=registered)
    if result.passed:
        progress.done("register", f"registered v{registered.version}" + (" (reused)" if registered.reused else ""))
    else:
        progress.done("register", f"registered v{registered.version} (gate failed: no alias)")
    return _attest(inputs, options, result, registered, model, built_hashes, progress)


def _attest(
    inputs: BuildInputs,
    options: MasterBuildOptions,
    result: BuildResult,
    registered: RegisteredVersion,
    model: ModelToRegister,
    built_hashes: dict[str, str],
    progress: BuildProgress,
) -> BuildResult:
    """The version's provenance statement, right after the registration (a re-run that reuses the
    version keeps a valid one, or writes it); a copy in a file, and the model's path, for the job's
    next steps (GitHub's attestation)."""
    assert result.run
    project, plan, run = inputs.project, inputs.plan, result.run
    remote_url = dvc.remotes(inputs.repo).get(inputs.remote)
    named = model.tags.get("mlops.model_path")

    facts = StatementFacts(
        BuildParameters(
            "master-build",
            registered.name,
            inputs.alias if result.passed else None,
            plan.rebuilt,
            options.thresholds,
            options.max_regressions,
            registered.source,
        ),
        builder_id(),
        invocation_id(),
        run.tracking_uri,
        registered.run_id,
        registered.version,
        tool_version(),
        GitSource(git.remote_url(project.git_root, options.git_remote) or str(project.git_root), result.git.commit),
        dvc_dependencies(project, plan.rebuilt, built_hashes, remote_url),
        params_digests(project, plan.rebuilt),
        model_out(project, named, plan.forced, built_hashes, remote_url),
    )

    with github.group(f"Provenance statement of '{registered.name}' v{registered.version}"):
        written = attach_statement(run.tracking_uri, registered.name, registered.version, facts)
    if written is None:
        return result
    progress.done("provenance", written.done_text)
    files = save_statement_copy(written, project.root)
    model_path = str(project.root / named) if named else None
    return replace(
        result,
        statement_path=str(files.statement),
        subject_checksums_path=str(files.subject_checksums),
        model_path=model_path,
    )


def _out_hashes(inputs: BuildInputs, hashes: dict[str, str]) -> dict[str, str]:
    return {path: hashes[path] for path in inputs.plan.rebuilt_cached_outputs if path in hashes}


def _lock_step(lock: LockCommitResult) -> str:
    if lock.status == "committed":
        return f"dvc.lock committed ({lock.commit[:12] if lock.commit else ''})"
    if lock.status == "tagged":
        return f"dvc.lock tagged {lock.tag}"
    if lock.status == "superseded":
        return f"superseded by {(lock.superseded_by or '')[:12]}: dvc.lock not committed"
    return f"dvc.lock {lock.status}"


def run_master_build(options: MasterBuildOptions, progress: BuildProgress) -> BuildResult:
    inputs = check_build_inputs(options)
    # From here MLflow's side (its import, the server's check, then the run, once every other
    # check passed) overlaps the DVC and git preflight and the pull. On a failure, the error that
    # the sequential order gave stays the one reported: the check's, the run's, then the others'.
    tracking = BackgroundTracking(inputs.tracking_uri)
    try:
        check_endpoints(inputs, options)
        if inputs.model_name:
            tracking.imported()  # the superseded check reads the alias: MLflow in this thread too
        if stopped := stop_if_superseded(inputs, options):
            tracking.release()
            tracking.checked()
            tracking.join()
            return stopped
        project = inputs.project
        context = GitContext(git.head_commit(project.root), inputs.branch, None)
        dev_hashes = _out_hashes(inputs, {out.path: out.md5 for out in project.outs if out.md5})
        progress.plan(inputs.model_name is not None, options.lock_mode, inputs.alias, inputs.stage_transition)
        tracking.open(inputs.experiment, f"ci-build-{context.commit[:8]}", provenance_tags(context, dev_hashes, {}))
        pull_rebuild_inputs(inputs)  # while the run opens
        with deferred():  # a signal between taking the run and recording it would leave it RUNNING
            run = progress.run = tracking.run()
    except BaseException as error:
        first = _settle_tracking(tracking, progress, error)
        if first is error:
            raise
        raise first from None
    project, plan = inputs.project, inputs.plan
    rebuild(inputs, run)
    metrics = read_metrics_files(project.root, list(inputs.metrics_files)) if inputs.metrics_files else {}
    progress.metrics = metrics
    gate = evaluate_gate(
        metrics,
        list(inputs.thresholds),
        list(inputs.regressions),
        inputs.baseline.metrics if inputs.baseline else None,
        allow_missing_baseline=options.allow_missing_baseline,
    )
    built_hashes = read_out_hashes(project)  # the lock files as the rebuild left them, read once
    provenance = provenance_tags(context, dev_hashes, _out_hashes(inputs, built_hashes))
    verdict = "passed" if gate.passed else "gate-failed"
    progress.tags = {**provenance, "mlops.verdict": verdict}
    result = BuildResult(
        gate.passed, verdict, context, plan, metrics, run, inputs.experiment, provenance, gate, inputs.baseline
    )
    wants_model = inputs.model_name is not None and (gate.passed or options.register_failed)
    model = find_model(inputs, options, run, built_hashes) if wants_model else None
    if not gate.passed:
        if model:
            result = _register_with_statement(inputs, options, result, model, built_hashes, progress)
        progress.finish("FAILED")
        return result

    if model:
        _refuse_a_different_model_for_a_registered_commit(inputs, context.commit, provenance)
    push_and_verify(inputs, built_hashes, options.push_run_cache)
    progress.done("push", f"pushed to '{inputs.remote}'")
    if model:
        result = _register_with_statement(inputs, options, result, model, built_hashes, progress)
    return _commit_lock_and_move_alias(inputs, options, result, result.registered, progress)


def _commit_lock_and_move_alias(
    inputs: BuildInputs,
    options: MasterBuildOptions,
    result: BuildResult,
    registered: RegisteredVersion | None,
    progress: BuildProgress,
) -> BuildResult:
    """The last writes: dvc.lock back to the branch, then the alias, unless a newer build owns them."""
    project, context = inputs.project, result.git
    with github.group(f"Commit dvc.lock back ({options.lock_mode})"):
        lock = commit_lock_file(
            project.git_root,
            built_commit=context.commit,
            branch=inputs.branch,
            remote=options.git_remote,
            paths=_lock_commit_paths(inputs),
            identity=inputs.identity,
            mode=options.lock_mode,
            pipeline_inputs=_pipeline_inputs(project),
            also_superseded=_alias_supersedes(inputs, options, context.commit) if registered else None,
        )
        sys.stderr.write(f"dvc.lock: {lock.status} {lock.detail}\n")
    result = replace(result, lock=lock)
    if lock.status != "skipped":
        progress.done("lock", _lock_step(lock))
    if lock.status == "superseded":
        # A newer build owns the lock or the alias (a race during this build): commit nothing, move nothing.
        kept = f", alias '{inputs.alias}' not moved; v{registered.version} stays registered" if registered else ""
        note = f"{lock.detail}; dvc.lock not committed{kept}"
        progress.finish("FINISHED")
        return replace(result, verdict="superseded", superseded_by=lock.superseded_by, notes=(*result.notes, note))
    if registered and lock.commit and lock.commit != context.commit:
        tag_version(inputs.tracking_uri, registered.name, registered.version, {"mlops.lock_commit": lock.commit})
    if registered:
        result = _move_alias(inputs, options, result, registered, progress)
    github.set_outputs(build_outputs(result))  # the last write is done: a deploy job can follow
    progress.finish("FINISHED")
    return result


def _refuse_a_different_model_for_a_registered_commit(
    inputs: BuildInputs, commit: str, provenance: dict[str, str]
) -> None:
    """A re-run of a commit whose version exists reuses that version: the dvc.lock it commits must
    then record the same outputs, or the lock and the alias would name different models (training
    that is not reproducible). Refused before the push."""
    assert inputs.model_name
    existing = version_with_tag(inputs.tracking_uri, inputs.model_name, "mlops.git_commit", commit)
    if existing is None:
        return
    recorded = version_tags(inputs.tracking_uri, existing.name, existing.version)
    differ = [
        key.removeprefix("mlops.ci_md5.")
        for key, md5 in provenance.items()
        if key.startswith("mlops.ci_md5.") and recorded.get(key) not in (None, md5)
    ]
    if differ:
        raise ValidationFailed(
            f"v{existing.version} of '{existing.name}', registered by an earlier build of {commit[:12]}, holds "
            f"other {', '.join(differ[:5])} than this rebuild made (the training is not reproducible): committing "
            "this dvc.lock would leave it and the alias naming different models. Make the training deterministic "
            f"(seeds), or delete v{existing.version} and re-run"
        )


def _move_alias(
    inputs: BuildInputs,
    options: MasterBuildOptions,
    result: BuildResult,
    registered: RegisteredVersion,
    progress: BuildProgress,
) -> BuildResult:
    """The alias moves last, and only forward: never onto a version built from an older commit."""
    is_ancestor = ancestry(inputs.project.git_root, options.git_remote)
    with github.group(f"Move alias '{inputs.alias}' to v{registered.version}"):
        move = move_alias_in_commit_order(
            inputs.tracking_uri,
            registered.name,
            inputs.alias,
            registered.version,
            result.git.commit,
            f"master-build of {result.git.commit[:12]}",
            is_ancestor,
        )
    if not move.moved:
        by = move.superseded_by or ""
        if by and not is_ancestor(result.git.commit, by):
            raise ValidationFailed(
                f"the alias '{inputs.alias}' is on v{move.version}, built from {by[:12]}, which is not in the history "
                f"of {result.git.commit[:12]}: it and {inputs.branch or 'the branch'}'s dvc.lock now name different builds; "
                f"point '{inputs.alias}' at the version to serve (v{registered.version} is this build's)"
            )
        lock = result.lock
        # The newer build's own lock commit lands on top of ours (it replays over older builds' locks).
        committed = (
            f"dvc.lock committed ({lock.commit[:12]}), then "
            if lock and lock.status == "committed" and lock.commit
            else ""
        )
        note = f"{committed}superseded by {by[:12]}: the alias '{inputs.alias}' stays on v{move.version}, built from it"
        progress.done("alias", note)
        return replace(result, alias=None, verdict="superseded", superseded_by=by or None, notes=(*result.notes, note))
    progress.done("alias", f"alias '{inputs.alias}' → v{move.version}")
    if inputs.stage_transition:
        transition_stage(inputs.tracking_uri, registered.name, registered.version, inputs.stage_transition)
        progress.done("stage", f"stage {inputs.stage_transition}")
    return replace(result, alias=move)


def read_build_trend(result: BuildResult, builds: int) -> Trend | None:
    """The gated metrics over the previous builds of this branch (this one last), for the report:
    read after every write, it never raises and changes nothing."""
    if builds <= 0 or result.run is None:
        return None
    gated = [check.metric for check in result.gate.checks]
    branch = result.git.branch
    with github.group(f"Read the trend of the last {builds} {branch or 'main'} builds from MLflow"):
        trend = read_trend(
            result.run.tracking_uri,
            [result.experiment],
            branch,
            gated,
            result.metrics,
            builds,
            exclude_run_id=result.run.run_id,
            newest_model=False,
            no_branch="HEAD is detached and no --branch was given",
        )
        if trend and trend.reason:
            sys.stderr.write(f"trend not available: {trend.reason}\n")
    return trend


def build_and_publish(options: MasterBuildOptions, report_path: Path | None) -> BuildResult:
    """The whole main build, published; the caller maps `passed` to the exit code.

    On any failure (a domain error, a full disk, a signal) the helper-owned run ends FAILED or
    KILLED, and the report and the last line say which writes were done and which were not.
    Nothing on that path can replace the original error. The step outputs are written right
    after the last write, so a deploy job gets them whatever fails after it.
    """
    progress = BuildProgress()
    try:
        result = run_master_build(options, progress)
    except BaseException as raised:
        with shielded():
            progress.finish("KILLED" if isinstance(raised, SignalReceived) else "FAILED", failed=True)
            error = domain_error(raised, options.repo)
            if error is None:
                raise  # a bug: exit 70, the run ended FAILED all the same
            _publish_failure(progress, error, report_path)
        raise progress.explained(error) from None
    try:
        result = replace(result, trend=read_build_trend(result, options.trend_builds))
        publish_report(
            build_report_json(result),
            render_build_markdown(result),
            build_outputs(result),
            build_failures(result),
            report_path,
            "mlops-actions master-build",
        )
    except BaseException as raised:  # after every write: a full disk, a signal
        error = domain_error(raised, options.repo)
        if error is None:
            raise
        raise progress.explained(error) from None
    return result


def _publish_failure(progress: BuildProgress, error, report_path: Path | None) -> None:
    """The failure's report, best effort: a failure to write it is a warning, never the error."""
    try:
        publish_build_failure(progress, error, report_path)
    except Exception as failure:
        github.warning(f"could not write the failure report: {type(failure).__name__}: {failure}")


def _pipeline_inputs(project: Project) -> frozenset[str]:
    return frozenset(project.git_path(path) for path in project.pipeline_inputs)


def _alias_supersedes(
    inputs: BuildInputs, options: MasterBuildOptions, commit: str
) -> Callable[[], Supersession | None]:
    """Whether the alias is on a version built from a strict descendant of `commit`, asked anew each time."""
    assert inputs.model_name
    name, is_ancestor = inputs.model_name, ancestry(inputs.project.git_root, options.git_remote)

    def check() -> Supersession | None:
        holder = alias_holder(inputs.tracking_uri, name, inputs.alias)
        return alias_newer(inputs.alias, holder, commit, is_ancestor)

    return check


def newer_build_owns(inputs: BuildInputs, options: MasterBuildOptions, commit: str) -> Supersession | None:
    """The newer commit whose build already owns the branch's dvc.lock (commit mode) or the alias."""
    git_root, remote = inputs.project.git_root, options.git_remote
    found = None
    if options.lock_mode == "commit" and inputs.branch:
        endpoint = f"git remote '{remote}' ({git.remote_url(git_root, remote)})"
        found = branch_supersedes(
            git_root,
            built=commit,
            branch=inputs.branch,
            tip=fetch_branch_tip(git_root, remote, inputs.branch, endpoint),
            lock_paths=_lock_commit_paths(inputs),
            pipeline_inputs=_pipeline_inputs(inputs.project),
            is_ancestor=ancestry(git_root, remote),
        )
    if found is None and inputs.model_name:
        is_ancestor = ancestry(git_root, remote)
        try:
            holder = alias_holder(inputs.tracking_uri, inputs.model_name, inputs.alias)
        except InfrastructureError as error:
            # Only a shortcut here: the lock commit asks again, and a registry that stays down
            # fails the registration anyway (after the push, as a re-run finishes).
            sys.stderr.write(
                f"mlops: could not read alias '{inputs.alias}' now ({error}); asked again before the lock commit\n"
            )
            return None
        found = alias_newer(inputs.alias, holder, commit, is_ancestor)
        diverged = alias_diverged(inputs.alias, holder, commit, is_ancestor) if found is None else None
        if diverged:
            raise ConfigError(diverged)
    return found


def stop_if_superseded(inputs: BuildInputs, options: MasterBuildOptions) -> BuildResult | None:
    """A build of a commit older than what the branch's dvc.lock or the alias already reflect (a
    "Re-run jobs" of an old build after a newer one landed, or a merge train's older commit) stops
    here, before its MLflow run opens: nothing trained, pushed, registered, committed or moved. It
    passes (exit 0) with verdict "superseded": there is nothing to fix, the newer build is the one."""
    commit = git.head_commit(inputs.project.root)
    with github.group(f"Is {commit[:12]} still the newest build of {inputs.branch or 'the alias'}?"):
        verdict = newer_build_owns(inputs, options, commit)
    if verdict is None:
        return None
    note = f"{verdict.line}; this build stopped before training: nothing built, pushed, registered, committed or moved"
    sys.stderr.write(f"mlops: {note}\n")
    lock = (
        LockCommitResult(options.lock_mode, "superseded", None, detail=verdict.line, superseded_by=verdict.by)
        if options.lock_mode != "none"
        else None
    )
    return BuildResult(
        True,
        "superseded",
        GitContext(commit, inputs.branch, None),
        inputs.plan,
        {},
        None,
        inputs.experiment,
        {},
        GateResult(True, ()),
        inputs.baseline,
        lock=lock,
        notes=(note,),
        superseded_by=verdict.by,
    )
