"""The pull-request flow: check, pull, evaluate, gate, track. Rendering lives in report.py."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import dvc, git, github
from .errors import ConfigError
from .evaluation import BUILTIN_METRICS, TASKS, EvalReport, evaluate_builtin, evaluate_with_stage
from .gate import GateResult, RegressionRule, Threshold, evaluate_gate, parse_regression, parse_threshold
from .metrics import Metrics, merge_metrics, parse_metrics_text, read_metrics_files
from .sanity import SanityCheck, check_lock_fresh, check_pushed
from .tracking import TrackedRun, flatten_params, log_run, resolve_tracking_uri


@dataclass(frozen=True)
class PRValidationOptions:
    repo: Path
    remote: str | None = None
    eval_stage: str | None = None
    metrics_files: tuple[str, ...] = ()
    model: str | None = None
    test_data: str | None = None
    target: str | None = None
    task: str = "regression"
    thresholds: tuple[str, ...] = ()
    max_regressions: tuple[str, ...] = ()
    baseline_ref: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    pr: int | None = None
    track: bool = True


@dataclass(frozen=True)
class GitContext:
    commit: str
    branch: str | None
    pr: int | None


@dataclass(frozen=True)
class Baseline:
    ref: str
    commit: str
    metrics: Metrics


@dataclass(frozen=True)
class PRValidationResult:
    """Everything a report needs about one PR validation."""

    passed: bool
    verdict: str  # passed | gate-failed | not-pushed | stale-lock
    git: GitContext
    sanity: tuple[SanityCheck, ...]
    evaluation: EvalReport | None = None
    baseline: Baseline | None = None
    gate: GateResult | None = None
    run: TrackedRun | None = None
    experiment: str | None = None


@dataclass(frozen=True)
class ValidatedInputs:
    """Inputs checked before anything runs, so bad input changes nothing."""

    repo: Path
    remote: str
    endpoint: str
    thresholds: tuple[Threshold, ...]
    regressions: tuple[RegressionRule, ...]
    metrics_files: tuple[str, ...]
    pull_targets: tuple[str, ...]


def parse_gate_rules(thresholds, regressions) -> tuple[tuple[Threshold, ...], tuple[RegressionRule, ...]]:
    return tuple(parse_threshold(t) for t in thresholds), tuple(parse_regression(r) for r in regressions)


def _relative_to_repo(repo: Path, path: str, option: str) -> str:
    candidate = Path(path)
    absolute = candidate if candidate.is_absolute() else (repo / candidate)
    try:
        return str(absolute.resolve().relative_to(repo.resolve()))
    except ValueError:
        raise ConfigError(f"{option} {path} is outside the project {repo}; pass a path inside it") from None


def _dvc_tracked(lock: dict, repo: Path, paths: list[str]) -> list[str]:
    tracked = set(dvc.lock_outputs(lock)) | set(dvc.dvc_file_outputs(repo))
    return [p for p in paths if any(p == t or p.startswith(t.rstrip("/") + "/") for t in tracked)]


def require_project(repo: Path) -> Path:
    """The absolute project root, once it is known to be a git checkout with DVC initialised."""
    git.require_git_repo(repo)
    repo = repo.resolve()
    dvc.require_dvc_repo(repo)
    return repo


def _check_metric_names(rules: tuple, known: Metrics | set[str], where: str) -> None:
    for rule in rules:
        if rule.metric not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"no metrics file has a metric '{rule.metric}' ({where}: {names}); fix the metric name in the gate")


def validate_inputs(options: PRValidationOptions, need_remote: bool = True) -> ValidatedInputs:
    """Check every input before anything runs, so that bad input changes nothing."""
    thresholds, regressions = parse_gate_rules(options.thresholds, options.max_regressions)
    repo = require_project(options.repo)
    remote = dvc.resolve_remote(repo, options.remote) if need_remote else ""
    lock = dvc.load_lock(repo)
    if options.eval_stage and options.model:
        raise ConfigError("both --eval-stage and --model are set; pass one: the project's stage or the built-in evaluator")
    if options.eval_stage:
        dvc.require_stage(repo, options.eval_stage)
        metrics_files = options.metrics_files or tuple(dvc.stage_metrics_files(repo, options.eval_stage))
        if not metrics_files:
            raise ConfigError(
                f"stage '{options.eval_stage}' declares no metrics files; add `metrics:` to it in dvc.yaml or pass --metrics-file"
            )
        produced = set(dvc.stage_output_paths(repo, options.eval_stage))
        unknown = [name for name in metrics_files if name not in produced and not (repo / name).is_file()]
        if unknown:
            raise ConfigError(
                f"metrics file {unknown[0]} does not exist and stage '{options.eval_stage}' does not write it; fix --metrics-file"
            )
        needed = dvc.stage_dependencies(lock, options.eval_stage)
        committed = [name for name in metrics_files if (repo / name).is_file()]
        if len(committed) == len(metrics_files):
            _check_metric_names(thresholds + regressions, read_metrics_files(repo, list(metrics_files)),
                                "the committed metrics have")
    else:
        missing = [name for name, value in (("--model", options.model), ("--test-data", options.test_data),
                                             ("--target", options.target)) if not value]
        if missing:
            raise ConfigError(
                f"nothing to evaluate: pass --eval-stage NAME, or {', '.join(missing)} for the built-in evaluator"
            )
        if options.task not in TASKS:
            raise ConfigError(f"unsupported task '{options.task}'; pass --task regression or --task classification")
        _check_metric_names(thresholds + regressions, set(BUILTIN_METRICS[options.task]),
                            f"the built-in {options.task} evaluator computes")
        metrics_files = options.metrics_files
        needed = [_relative_to_repo(repo, options.model, "--model"),
                  _relative_to_repo(repo, options.test_data, "--test-data")]
    return ValidatedInputs(
        repo, remote, dvc.remote_endpoint(repo, remote) if remote else "", thresholds, regressions,
        tuple(metrics_files), tuple(_dvc_tracked(lock, repo, list(needed))),
    )


def validate_remote_pushed(repo: Path, remote: str | None) -> SanityCheck:
    """Building block `check-remote`."""
    repo = require_project(repo)
    name = dvc.resolve_remote(repo, remote)
    return check_pushed(repo, name, dvc.remote_endpoint(repo, name))


def validate_lock_fresh(repo: Path) -> SanityCheck:
    """Building block `check-lock`."""
    return check_lock_fresh(require_project(repo))


def _pull(inputs: ValidatedInputs) -> list[str]:
    if inputs.pull_targets:
        dvc.pull(inputs.repo, list(inputs.pull_targets), inputs.remote, inputs.endpoint)
    return list(inputs.pull_targets)


def pull_eval_inputs(options: PRValidationOptions) -> list[str]:
    """Building block `pull`: the DVC-tracked inputs of evaluation, nothing else."""
    return _pull(validate_inputs(options))


def _evaluate(options: PRValidationOptions, inputs: ValidatedInputs) -> EvalReport:
    if options.eval_stage:
        return evaluate_with_stage(inputs.repo, options.eval_stage, list(inputs.metrics_files))
    return evaluate_builtin(inputs.repo / options.model, inputs.repo / options.test_data, options.target, options.task)


def evaluate_model(options: PRValidationOptions) -> EvalReport:
    """Building block `evaluate`: evaluate what is in the workspace (run `pull` first)."""
    return _evaluate(options, validate_inputs(options, need_remote=False))


def gate_metrics_files(options: PRValidationOptions) -> PRValidationResult:
    """Building block `gate`: gate the metrics files in the workspace against thresholds and baseline."""
    thresholds, regressions = parse_gate_rules(options.thresholds, options.max_regressions)
    repo = require_project(options.repo)
    files = options.metrics_files
    if not files:
        raise ConfigError("no metrics to gate; pass --metrics-file (repeatable)")
    metrics = read_metrics_files(repo, list(files))
    baseline = read_baseline(repo, options.baseline_ref, files) if options.baseline_ref else None
    gate = evaluate_gate(metrics, list(thresholds), list(regressions), baseline.metrics if baseline else None)
    return PRValidationResult(
        gate.passed, "passed" if gate.passed else "gate-failed", git_context(repo, options.pr), (),
        EvalReport(metrics, "files:" + ",".join(files)), baseline, gate,
    )


def read_baseline(repo: Path, ref: str, metrics_files: tuple[str, ...]) -> Baseline:
    """Metrics committed at `ref` (fetched first if the checkout lacks it)."""
    commit = git.resolve_ref(repo, ref)
    per_file = {}
    for name in metrics_files:
        text = git.read_file_at(repo, commit, f"./{name}")
        if text is not None:
            per_file[name] = parse_metrics_text(text, name)
    return Baseline(ref, commit, merge_metrics(per_file))


def git_context(repo: Path, pr: int | None) -> GitContext:
    branch = os.environ.get("GITHUB_HEAD_REF") or git.current_branch(repo)
    return GitContext(git.head_commit(repo), branch, pr)


def project_name(repo: Path) -> str:
    """The GitHub repository's name, else the origin remote's, else the folder's."""
    from_github = os.environ.get("GITHUB_REPOSITORY", "").rpartition("/")[2]
    origin = (git.remote_url(repo) or "").rstrip("/").rpartition("/")[2].removesuffix(".git")
    return from_github or origin or repo.resolve().name


def default_experiment(repo: Path) -> str:
    """`<project>-pr`: one experiment for all of a project's PR validations."""
    return f"{project_name(repo)}-pr"


def _project_params(repo: Path) -> dict[str, object]:
    import yaml

    path = repo / "params.yaml"
    if not path.is_file():
        return {}
    return flatten_params(yaml.safe_load(path.read_text()) or {})


def track_result(options: PRValidationOptions, inputs_repo: Path, result: PRValidationResult, report_text: str) -> TrackedRun:
    context = result.git
    tags = {
        "mlops.kind": "pr-validation",
        "mlops.verdict": result.verdict,
        "mlops.passed": str(result.passed).lower(),
        "mlops.git_commit": context.commit,
        "mlflow.source.git.commit": context.commit,
    }
    if context.branch:
        tags["mlops.branch"] = context.branch
    if context.pr is not None:
        tags["mlops.pr"] = str(context.pr)
    if result.evaluation:
        tags["mlops.evaluation"] = result.evaluation.method
    if result.baseline:
        tags["mlops.baseline_commit"] = result.baseline.commit
    run_name = f"pr-{context.pr}-{context.commit[:8]}" if context.pr is not None else f"{context.branch or 'detached'}-{context.commit[:8]}"
    metrics = result.evaluation.metrics if result.evaluation else {}
    return log_run(
        resolve_tracking_uri(options.tracking_uri, inputs_repo),
        result.experiment or default_experiment(inputs_repo),
        run_name, tags, _project_params(inputs_repo), metrics,
        {"pr-validation-report.json": report_text},
    )


def run_pr_validation(options: PRValidationOptions) -> PRValidationResult:
    """Validate a PR's model; return the result (the caller reports it and picks the exit code)."""
    inputs = validate_inputs(options)
    repo = inputs.repo
    context = git_context(repo, options.pr)
    baseline = None
    if options.baseline_ref and inputs.metrics_files:
        baseline = read_baseline(repo, options.baseline_ref, inputs.metrics_files)
    experiment = options.experiment or default_experiment(repo)

    with github.group(f"Check that DVC outputs are on remote '{inputs.remote}'"):
        pushed = check_pushed(repo, inputs.remote, inputs.endpoint)
    with github.group("Check that dvc.lock is up to date"):
        fresh = check_lock_fresh(repo)
    sanity = (pushed, fresh)
    if not pushed.passed or not fresh.passed:
        verdict = "not-pushed" if not pushed.passed else "stale-lock"
        return PRValidationResult(False, verdict, context, sanity, baseline=baseline, experiment=experiment)

    with github.group(f"Pull evaluation inputs: {', '.join(inputs.pull_targets) or 'nothing tracked by DVC'}"):
        _pull(inputs)
    with github.group("Evaluate the model"):
        evaluation = _evaluate(options, inputs)
        for key, value in sorted(evaluation.metrics.items()):
            sys.stderr.write(f"  {key} = {value:.6g}\n")
    gate = evaluate_gate(evaluation.metrics, list(inputs.thresholds), list(inputs.regressions),
                         baseline.metrics if baseline else None)
    verdict = "passed" if gate.passed else "gate-failed"
    return PRValidationResult(gate.passed, verdict, context, sanity, evaluation, baseline, gate, experiment=experiment)
