"""The official build on main: forced CI rebuild, owned MLflow run, gate, push, lock commit-back,
registration with provenance."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import dvc, git, github
from .errors import ConfigError
from .gate import GateResult, evaluate_gate
from .lock_commit import LOCK_MODES, GitIdentity, LockCommitResult, commit_lock_file
from .metrics import Metrics, read_metrics_files
from .pipeline import RebuildPlan, load_stages, pipeline_input_paths, plan_rebuild
from .pr_validate import (
    Baseline, GitContext, parse_gate_rules, project_name, read_baseline, require_project,
)
from .registry import (
    AliasMove, RegisteredVersion, find_run_model, register_version, set_alias, transition_stage,
    validate_alias, validate_model_name,
)
from .runner import CommandError
from .tracking import TrackedRun, finish_run, open_run, resolve_tracking_uri, run_environment

GITHUB_ACTIONS_BOT = GitIdentity("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com")


@dataclass(frozen=True)
class MasterBuildOptions:
    repo: Path
    remote: str | None = None
    stages: tuple[str, ...] = ("train",)
    metrics_files: tuple[str, ...] = ()
    thresholds: tuple[str, ...] = ()
    max_regressions: tuple[str, ...] = ()
    baseline_ref: str | None = None
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
    git_user_name: str | None = None
    git_user_email: str | None = None


@dataclass(frozen=True)
class BuildResult:
    """Everything the report and the step outputs need about one main build."""

    passed: bool
    verdict: str  # passed | gate-failed
    git: GitContext
    plan: RebuildPlan
    metrics: Metrics
    run: TrackedRun
    experiment: str
    provenance: dict[str, str]
    gate: GateResult
    baseline: Baseline | None = None
    lock: LockCommitResult | None = None
    registered: RegisteredVersion | None = None
    alias: AliasMove | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Inputs:
    repo: Path
    remote: str
    endpoint: str
    plan: RebuildPlan
    pipeline_inputs: set
    metrics_files: tuple[str, ...]
    thresholds: tuple
    regressions: tuple
    branch: str | None
    identity: GitIdentity | None
    model_name: str | None
    alias: str


def ci_run_url() -> str | None:
    server, repository, run_id = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run_id:
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    return None


def _branch(repo: Path, option: str | None) -> str | None:
    if option:
        return option
    ref = os.environ.get("GITHUB_REF", "")
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return git.current_branch(repo)


def _git_config(repo: Path, key: str) -> str | None:
    try:
        return git.git(repo, "config", key).strip() or None
    except CommandError:
        return None


def resolve_identity(repo: Path, name: str | None, email: str | None) -> GitIdentity:
    """--git-user-name/email, else git's own config or GIT_COMMITTER_*, else the Actions bot on Actions."""
    name = name or os.environ.get("GIT_COMMITTER_NAME") or _git_config(repo, "user.name")
    email = email or os.environ.get("GIT_COMMITTER_EMAIL") or _git_config(repo, "user.email")
    if name and email:
        return GitIdentity(name, email)
    if github.in_actions():
        return GITHUB_ACTIONS_BOT
    raise ConfigError(
        "no git identity to commit dvc.lock with; pass --git-user-name and --git-user-email (or set git config user.name/user.email)"
    )


def validate_build_inputs(options: MasterBuildOptions) -> _Inputs:
    thresholds, regressions = parse_gate_rules(options.thresholds, options.max_regressions)
    if options.lock_mode not in LOCK_MODES:
        raise ConfigError(f"invalid --lock-mode '{options.lock_mode}'; pass one of {', '.join(LOCK_MODES)}")
    model_name = validate_model_name(options.model_name) if options.model_name else None
    alias = validate_alias(options.alias)
    repo = require_project(options.repo)
    remote = dvc.resolve_remote(repo, options.remote)
    stages = load_stages(repo)
    plan = plan_rebuild(stages, list(options.stages) or ["train"])
    branch = _branch(repo, options.branch)
    if options.lock_mode == "commit" and not branch:
        raise ConfigError("HEAD is detached and no branch was given; pass --branch main (or --lock-mode tag|none)")
    identity = (resolve_identity(repo, options.git_user_name, options.git_user_email)
                if options.lock_mode != "none" else None)
    metrics_files = options.metrics_files or tuple(
        out for name in plan.forced + plan.downstream for out in dvc.stage_metrics_files(repo, name)
    )
    if (thresholds or regressions) and not metrics_files:
        raise ConfigError("the gate has rules but the rebuilt stages declare no metrics; pass --metrics-file")
    return _Inputs(repo, remote, dvc.remote_endpoint(repo, remote), plan, pipeline_input_paths(stages),
                   tuple(metrics_files), thresholds, regressions, branch, identity, model_name, alias)


def _dvc_tracked_deps(repo: Path, plan: RebuildPlan, stages) -> list[str]:
    tracked = dvc.dvc_file_outputs(repo)
    deps = [d for name in plan.forced + plan.downstream for d in stages[name].deps]
    return [d for d in deps if any(d == t or d.startswith(t.rstrip("/") + "/") for t in tracked)]


def _lock_hashes(repo: Path, paths: tuple[str, ...]) -> dict[str, str]:
    outputs = dvc.lock_outputs(dvc.load_lock(repo))
    return {path: outputs[path].get("md5", "") for path in paths if path in outputs}


def provenance_tags(context: GitContext, dev: dict[str, str], ci: dict[str, str]) -> dict[str, str]:
    tags = {"mlops.kind": "ci-build", "mlops.git_commit": context.commit, "mlflow.source.git.commit": context.commit}
    if context.branch:
        tags["mlops.branch"] = context.branch
    url = ci_run_url()
    if url:
        tags["mlops.ci_run_url"] = url
    for path, md5 in ci.items():
        tags[f"mlops.ci_md5.{path}"] = md5
    for path, md5 in dev.items():
        tags[f"mlops.dev_md5.{path}"] = md5
    compared = [path for path in ci if path in dev]
    tags["mlops.dev_model_matches_ci"] = str(bool(compared) and all(dev[p] == ci[p] for p in compared)).lower()
    return tags


def rebuild(inputs: _Inputs, run: TrackedRun, stages) -> None:
    """Pull the rebuilt stages' inputs (never their outputs), reuse upstream, force the rest."""
    repo, plan = inputs.repo, inputs.plan
    targets = list(dict.fromkeys(list(plan.pull_targets) + _dvc_tracked_deps(repo, plan, stages)))
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


def run_master_build(options: MasterBuildOptions) -> BuildResult:
    inputs = validate_build_inputs(options)
    repo = inputs.repo
    stages = load_stages(repo)
    context = GitContext(git.head_commit(repo), inputs.branch, None)
    baseline = read_baseline(repo, options.baseline_ref, inputs.metrics_files) if options.baseline_ref else None
    dev_hashes = _lock_hashes(repo, inputs.plan.rebuilt_cached_outputs)
    tracking_uri = resolve_tracking_uri(options.tracking_uri, repo)
    experiment = options.experiment or project_name(repo)
    run = open_run(tracking_uri, experiment, f"ci-build-{context.commit[:8]}",
                   provenance_tags(context, dev_hashes, {}))
    try:
        rebuild(inputs, run, stages)
    except BaseException:
        finish_run(run, tags={"mlops.verdict": "build-failed"}, status="FAILED")
        raise
    metrics = read_metrics_files(repo, list(inputs.metrics_files)) if inputs.metrics_files else {}
    gate = evaluate_gate(metrics, list(inputs.thresholds), list(inputs.regressions),
                         baseline.metrics if baseline else None)
    ci_hashes = _lock_hashes(repo, inputs.plan.rebuilt_cached_outputs)
    provenance = provenance_tags(context, dev_hashes, ci_hashes)
    verdict = "passed" if gate.passed else "gate-failed"
    finish_run(run, metrics=metrics, tags={**provenance, "mlops.verdict": verdict})
    result = BuildResult(gate.passed, verdict, context, inputs.plan, metrics, run, experiment, provenance, gate, baseline)
    if not gate.passed:
        if options.register_failed and inputs.model_name:
            result = replace(result, registered=_register(inputs, options, result))
        return result
    # Never an empty target list: `dvc push` without targets pushes the whole workspace.
    if inputs.plan.rebuilt_cached_outputs:
        with github.group(f"Push CI-built outputs to '{inputs.remote}'"):
            dvc.push(repo, list(inputs.plan.rebuilt_cached_outputs), inputs.remote, inputs.endpoint,
                     run_cache=options.push_run_cache)
    with github.group(f"Commit dvc.lock back ({options.lock_mode})"):
        lock = commit_lock_file(
            repo, built_commit=context.commit, branch=inputs.branch, remote=options.git_remote,
            paths=["dvc.lock", *[p for p in inputs.plan.rebuilt_outputs if p not in inputs.plan.rebuilt_cached_outputs]],
            identity=inputs.identity, mode=options.lock_mode, pipeline_inputs=inputs.pipeline_inputs,
        )
        sys.stderr.write(f"dvc.lock: {lock.status} {lock.detail}\n")
    result = replace(result, lock=lock)
    if inputs.model_name:
        registered = _register(inputs, options, result)
        result = replace(result, registered=registered)
        if lock.status == "superseded":
            result = replace(result, notes=(f"alias '{inputs.alias}' not moved: {lock.detail}",))
        else:
            alias = set_alias(tracking_uri, registered.name, inputs.alias, registered.version, context.commit,
                              f"master-build of {context.commit[:12]}")
            if options.stage_transition:
                transition_stage(tracking_uri, registered.name, registered.version, options.stage_transition)
            result = replace(result, alias=alias)
    return result


def _register(inputs: _Inputs, options: MasterBuildOptions, result: BuildResult) -> RegisteredVersion:
    with github.group(f"Register model '{inputs.model_name}'"):
        source, model_id = find_run_model(result.run.tracking_uri, result.run.run_id, options.model_artifact_path)
        tags = {**result.provenance, "mlops.verdict": result.verdict, "mlops.run_id": result.run.run_id}
        if result.lock and result.lock.commit:
            tags["mlops.lock_commit"] = result.lock.commit
        return register_version(result.run.tracking_uri, inputs.model_name, source, result.run.run_id, tags,
                                model_id=model_id, reuse_key=("mlops.git_commit", result.git.commit))
