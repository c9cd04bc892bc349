"""`master-build`: the official model on main, always built in CI.

The recipe: check every input against the project model; open the MLflow run and hand it to the
training script; pull the rebuilt stages' inputs, force-rebuild them and their downstream; gate;
`dvc push`; verify that every out the new lock records is on the remote; commit the lock back;
register the model and move the alias; report.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..adapters import dvc, git, github
from ..adapters.registry import RegisteredVersion, find_run_model, register_version, set_alias, transition_stage
from ..adapters.tracking import TrackedRun, finish_run, open_run, resolve_tracking_uri, run_environment
from ..baseline import read_baseline
from ..errors import ConfigError, InfrastructureError, ValidationFailed
from ..gate import RegressionRule, Threshold, evaluate_gate, parse_gate_rules
from ..lock_commit import LOCK_MODES, GitIdentity, commit_lock_file, resolve_identity
from ..metrics import read_metrics_files
from ..project import Project, load_project, read_out_hashes
from ..provenance import GitContext, build_branch, project_name, provenance_tags
from ..rebuild_plan import RebuildPlan, plan_rebuild
from ..registry_names import validate_alias, validate_model_name
from ..report.build import build_failures, build_outputs, build_report_json, render_build_markdown
from ..report.publish import publish_report
from ..results import BuildResult


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

    @property
    def repo(self) -> Path:
        return self.project.root


def check_build_inputs(options: MasterBuildOptions) -> BuildInputs:
    thresholds, regressions = parse_gate_rules(options.thresholds, options.max_regressions)
    if options.lock_mode not in LOCK_MODES:
        raise ConfigError(f"invalid --lock-mode '{options.lock_mode}'; pass one of {', '.join(LOCK_MODES)}")
    model_name = validate_model_name(options.model_name) if options.model_name else None
    alias = validate_alias(options.alias)
    project = load_project(options.repo)
    remote = dvc.resolve_remote(project.root, options.remote)
    plan = plan_rebuild(project, list(options.stages) or ["train"])
    branch = build_branch(project.root, options.branch)
    if options.lock_mode == "commit" and not branch:
        raise ConfigError("HEAD is detached and no branch was given; pass --branch main (or --lock-mode tag|none)")
    identity = (
        resolve_identity(project.root, options.git_user_name, options.git_user_email)
        if options.lock_mode != "none"
        else None
    )
    metrics_files = options.metrics_files or project.metrics_files_of(plan.rebuilt)
    if (thresholds or regressions) and not metrics_files:
        raise ConfigError("the gate has rules but the rebuilt stages declare no metrics; pass --metrics-file")
    return BuildInputs(
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
    )


def rebuild(inputs: BuildInputs, run: TrackedRun) -> None:
    """Pull the rebuilt stages' inputs (never their outputs), reuse upstream, force the rest."""
    repo, plan = inputs.repo, inputs.plan
    targets = list(plan.pull_targets)
    with github.group(f"Pull the inputs of {', '.join(plan.forced)}: {', '.join(targets) or 'nothing'}"):
        if targets:
            dvc.pull(repo, targets, inputs.remote, inputs.endpoint)
    env = run_environment(run)
    if plan.upstream:
        with github.group(f"Reuse or rebuild upstream stages: {', '.join(plan.upstream)}"):
            # Unchanged upstream stages are skipped although their own inputs are not pulled
            # (--allow-missing); a changed one runs and pulls what it lacks (--pull).
            dvc.repro(repo, list(plan.upstream), ["--pull", "--allow-missing"], env)
    with github.group(f"Force-rebuild {', '.join(plan.forced)} and downstream: {', '.join(plan.downstream) or 'none'}"):
        dvc.repro(repo, list(plan.forced), ["--force", "--downstream"], env)


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
        missing = dvc.missing_on_remote(inputs.repo, inputs.remote, inputs.endpoint, recorded)
    if missing:
        rebuilt = [path for path in missing if path in plan.rebuilt_cached_outputs]
        listed = ", ".join(missing[:10])
        if rebuilt:
            raise InfrastructureError(
                f"after `dvc push`, {listed} is still not on {inputs.endpoint}; dvc.lock was not committed. "
                "Check the remote and re-run the build",
                endpoint=inputs.endpoint,
            )
        raise ValidationFailed(
            f"dvc.lock records {listed}, which is on no remote ({inputs.endpoint}); dvc.lock was not committed. "
            "Push it with `dvc push` from where it was built, or force its stage with --stage"
        )


def _lock_commit_paths(inputs: BuildInputs) -> list[str]:
    """Git paths to commit: every lock file, and rebuilt outputs that git (not DVC) tracks."""
    project, plan = inputs.project, inputs.plan
    uncached = [path for path in plan.rebuilt_outputs if path not in plan.rebuilt_cached_outputs]
    return [project.git_path(path) for path in (*project.lockfiles, *uncached)]


def _register(inputs: BuildInputs, options: MasterBuildOptions, result: BuildResult) -> RegisteredVersion:
    assert inputs.model_name
    with github.group(f"Register model '{inputs.model_name}'"):
        source, model_id = find_run_model(result.run.tracking_uri, result.run.run_id, options.model_artifact_path)
        tags = {**result.provenance, "mlops.verdict": result.verdict, "mlops.run_id": result.run.run_id}
        if result.lock and result.lock.commit:
            tags["mlops.lock_commit"] = result.lock.commit
        return register_version(
            result.run.tracking_uri,
            inputs.model_name,
            source,
            result.run.run_id,
            tags,
            model_id=model_id,
            reuse_key=("mlops.git_commit", result.git.commit),
        )


def _out_hashes(inputs: BuildInputs, hashes: dict[str, str]) -> dict[str, str]:
    return {path: hashes[path] for path in inputs.plan.rebuilt_cached_outputs if path in hashes}


def run_master_build(options: MasterBuildOptions) -> BuildResult:
    inputs = check_build_inputs(options)
    project, plan = inputs.project, inputs.plan
    context = GitContext(git.head_commit(project.root), inputs.branch, None)
    baseline = read_baseline(project, options.baseline_ref, inputs.metrics_files) if options.baseline_ref else None
    dev_hashes = _out_hashes(inputs, {out.path: out.md5 for out in project.outs if out.md5})
    tracking_uri = resolve_tracking_uri(options.tracking_uri, project.root)
    experiment = options.experiment or project_name(project.root)
    run = open_run(tracking_uri, experiment, f"ci-build-{context.commit[:8]}", provenance_tags(context, dev_hashes, {}))
    try:
        rebuild(inputs, run)
    except BaseException:
        finish_run(run, tags={"mlops.verdict": "build-failed"}, status="FAILED")
        raise
    metrics = read_metrics_files(project.root, list(inputs.metrics_files)) if inputs.metrics_files else {}
    gate = evaluate_gate(
        metrics,
        list(inputs.thresholds),
        list(inputs.regressions),
        baseline.metrics if baseline else None,
        allow_missing_baseline=options.allow_missing_baseline,
    )
    built_hashes = read_out_hashes(project)  # the lock files as the rebuild left them, read once
    provenance = provenance_tags(context, dev_hashes, _out_hashes(inputs, built_hashes))
    verdict = "passed" if gate.passed else "gate-failed"
    finish_run(run, metrics=metrics, tags={**provenance, "mlops.verdict": verdict})
    result = BuildResult(gate.passed, verdict, context, plan, metrics, run, experiment, provenance, gate, baseline)
    if not gate.passed:
        if options.register_failed and inputs.model_name:
            result = replace(result, registered=_register(inputs, options, result))
        return result
    push_and_verify(inputs, built_hashes, options.push_run_cache)
    with github.group(f"Commit dvc.lock back ({options.lock_mode})"):
        lock = commit_lock_file(
            project.git_root,
            built_commit=context.commit,
            branch=inputs.branch,
            remote=options.git_remote,
            paths=_lock_commit_paths(inputs),
            identity=inputs.identity,
            mode=options.lock_mode,
            pipeline_inputs=frozenset(project.git_path(path) for path in project.pipeline_inputs),
        )
        sys.stderr.write(f"dvc.lock: {lock.status} {lock.detail}\n")
    result = replace(result, lock=lock)
    if inputs.model_name:
        registered = _register(inputs, options, result)
        result = replace(result, registered=registered)
        if lock.status == "superseded":
            result = replace(result, notes=(f"alias '{inputs.alias}' not moved: {lock.detail}",))
        else:
            alias = set_alias(
                tracking_uri,
                registered.name,
                inputs.alias,
                registered.version,
                context.commit,
                f"master-build of {context.commit[:12]}",
            )
            if options.stage_transition:
                transition_stage(tracking_uri, registered.name, registered.version, options.stage_transition)
            result = replace(result, alias=alias)
    return result


def build_and_publish(options: MasterBuildOptions, report_path: Path | None) -> BuildResult:
    """The whole main build, published; the caller maps `passed` to the exit code."""
    result = run_master_build(options)
    publish_report(
        build_report_json(result),
        render_build_markdown(result),
        build_outputs(result),
        build_failures(result),
        report_path,
        "mlops-actions master-build",
    )
    return result
