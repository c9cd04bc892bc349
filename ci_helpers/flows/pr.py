"""`pr-validate`: check the PR's DVC state, pull, evaluate, gate, log to MLflow, report.

Also the PR's building blocks as commands of their own (`check-remote`, `check-lock`, `pull`,
`evaluate`, `gate`), so that a user can run one step of what CI did.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING

from ..adapters import dvc, git, github
from ..adapters.tracking import TrackedRun, log_run, resolve_tracking_uri
from ..background_tracking import preload_in_background
from ..baseline import read_baseline
from ..errors import ConfigError, InfrastructureError
from ..evaluation import BUILTIN_METRICS, TASKS, EvalReport, evaluate_builtin, evaluate_with_stage
from ..gate import RegressionRule, Threshold, evaluate_gate, parse_gate_rules
from ..metrics import Metrics, read_metrics_files, spell
from ..plots import read_plots
from ..project import Project, load_project, read_params
from ..provenance import base_ref_from_env, ci_run_url, pr_git_context, pr_number_from_env, project_name
from ..push_check import read_push_base
from ..report.escape import one_line
from ..report.pr import failure_messages, render_markdown, report_json, step_outputs
from ..report.publish import publish_report
from ..results import PRValidationResult
from ..sanity_checks import SanityCheck, check_lock_fresh, check_pushed
from ..trend import DEFAULT_TREND_BUILDS, Trend, branch_of_ref, read_trend

if TYPE_CHECKING:
    from ..dvc_cache import DvcCacheKey


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
    allow_missing_baseline: bool = False
    tracking_uri: str | None = None
    experiment: str | None = None
    pr: int | None = None
    track: bool = True
    comment: bool = False
    trend_builds: int = DEFAULT_TREND_BUILDS  # main builds the report's trend reads back; 0: off
    build_experiment: str | None = None  # where master-build logs; default: the project's name
    deep_check: bool = False  # the push check asks about every object, trusting no base


@dataclass(frozen=True)
class ValidatedInputs:
    """Inputs checked before anything runs, so bad input changes nothing."""

    project: Project
    remote: str
    endpoint: str
    evaluation: str  # "stage" | "builtin" | "recorded"
    eval_stages: tuple[str, ...]
    thresholds: tuple[Threshold, ...]
    regressions: tuple[RegressionRule, ...]
    metrics_files: tuple[str, ...]
    pull_targets: tuple[str, ...]

    @property
    def repo(self) -> Path:
        return self.project.root


def _relative_to_repo(repo: Path, path: str, option: str) -> str:
    candidate = Path(path)
    absolute = candidate if candidate.is_absolute() else (repo / candidate)
    try:
        return str(absolute.resolve().relative_to(repo.resolve()))
    except ValueError:
        raise ConfigError(f"{option} {path} is outside the project {repo}; pass a path inside it") from None


def _check_metric_names(rules: tuple, known: Metrics | set[str], where: str) -> None:
    for rule in rules:
        if rule.metric not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"no metrics file has a metric '{rule.metric}' ({where}: {names}); fix the metric name in the gate"
            )


def _stage_evaluation(
    project: Project, options: PRValidationOptions, rules: tuple
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """(eval stages, metrics files, inputs to pull) for --eval-stage."""
    assert options.eval_stage
    stages = project.resolve_stages([options.eval_stage], "--eval-stage")
    metrics_files = options.metrics_files or project.metrics_files_of(stages)
    if not metrics_files:
        raise ConfigError(
            f"stage '{options.eval_stage}' declares no metrics files; add `metrics:` to it in dvc.yaml or pass --metrics-file"
        )

    def produced(name: str) -> bool:
        out = project.out_covering(name)
        return out is not None and out.stage in stages

    unknown = [name for name in metrics_files if not produced(name) and not (project.root / name).is_file()]
    if unknown:
        raise ConfigError(
            f"metrics file {unknown[0]} does not exist and stage '{options.eval_stage}' does not write it; fix --metrics-file"
        )
    if all((project.root / name).is_file() for name in metrics_files):
        _check_metric_names(rules, read_metrics_files(project.root, list(metrics_files)), "the committed metrics have")
    needed = [dep for name in stages for dep in project.stage(name).deps]
    return stages, tuple(metrics_files), needed


def _builtin_evaluation(project: Project, options: PRValidationOptions, rules: tuple) -> list[str]:
    """The inputs to pull for the built-in evaluator (--model, --test-data, --target)."""
    missing = [
        name
        for name, value in (
            ("--model", options.model),
            ("--test-data", options.test_data),
            ("--target", options.target),
        )
        if not value
    ]
    if missing:
        raise ConfigError(
            f"the built-in evaluator needs {', '.join(missing)} too; pass them, or drop --model/--test-data/--target "
            "to gate the metrics the project declares"
        )
    if options.task not in TASKS:
        raise ConfigError(f"unsupported task '{options.task}'; pass --task regression or --task classification")
    _check_metric_names(rules, set(BUILTIN_METRICS[options.task]), f"the built-in {options.task} evaluator computes")
    return [
        _relative_to_repo(project.root, options.model or "", "--model"),
        _relative_to_repo(project.root, options.test_data or "", "--test-data"),
    ]


def _recorded_evaluation(project: Project, options: PRValidationOptions, rules: tuple) -> tuple[str, ...]:
    """The metrics files to gate as the PR recorded them: --metrics-file, else every metrics file
    the project declares (stage or top level, inside directory outs too)."""
    files = tuple(_relative_to_repo(project.root, name, "--metrics-file") for name in options.metrics_files)
    files = files or project.metrics_files
    if not files:
        raise ConfigError(
            "nothing to evaluate: the project declares no metrics; add `metrics:` to dvc.yaml, or pass "
            "--eval-stage NAME, or --model, --test-data and --target for the built-in evaluator"
        )
    unknown = [name for name in files if project.out_covering(name) is None and not (project.root / name).is_file()]
    if unknown:
        raise ConfigError(
            f"metrics file {unknown[0]} does not exist and no stage writes it; fix --metrics-file or `metrics:` in dvc.yaml"
        )
    cached = [name for name in files if (out := project.out_covering(name)) is not None and out.cached]
    if not cached and all((project.root / name).is_file() for name in files):
        _check_metric_names(rules, read_metrics_files(project.root, list(files)), "the committed metrics have")
    return files


def validate_inputs(options: PRValidationOptions, need_remote: bool = True) -> ValidatedInputs:
    """Check every input before anything runs, so that bad input changes nothing.

    Three ways to evaluate: --eval-stage re-runs the project's evaluation stage(s) in CI; --model,
    --test-data and --target run the built-in evaluator; with neither, the metrics the project
    declares are gated as the PR recorded them (pulled from the remote when DVC caches them).
    """
    thresholds, regressions = parse_gate_rules(options.thresholds, options.max_regressions)
    rules = thresholds + regressions
    project = load_project(options.repo)
    repo = project.root
    remote = dvc.resolve_remote(repo, options.remote) if need_remote else ""
    if options.eval_stage and options.model:
        raise ConfigError(
            "both --eval-stage and --model are set; pass one: the project's stage or the built-in evaluator"
        )
    eval_stages: tuple[str, ...] = ()
    if options.eval_stage:
        evaluation = "stage"
        eval_stages, metrics_files, needed = _stage_evaluation(project, options, rules)
    elif options.model or options.test_data or options.target:
        evaluation = "builtin"
        needed = _builtin_evaluation(project, options, rules)
        metrics_files = options.metrics_files
    else:
        evaluation = "recorded"
        metrics_files = _recorded_evaluation(project, options, rules)
        needed = list(metrics_files)
    # Only what DVC caches needs pulling; git-tracked files are in the checkout already.
    pull_targets = []
    for path in needed:
        out = project.out_covering(path)
        if out is not None and out.cached and out.stage not in eval_stages and path not in pull_targets:
            pull_targets.append(path)
    return ValidatedInputs(
        project,
        remote,
        dvc.remote_endpoint(repo, remote) if remote else "",
        evaluation,
        eval_stages,
        thresholds,
        regressions,
        tuple(metrics_files),
        tuple(pull_targets),
    )


def _pull(inputs: ValidatedInputs) -> list[str]:
    if inputs.pull_targets:
        dvc.pull(inputs.repo, list(inputs.pull_targets), inputs.remote, inputs.endpoint)
    return list(inputs.pull_targets)


def _evaluate(options: PRValidationOptions, inputs: ValidatedInputs) -> EvalReport:
    if inputs.evaluation == "stage":
        return evaluate_with_stage(inputs.repo, inputs.eval_stages, list(inputs.metrics_files))
    if inputs.evaluation == "recorded":
        metrics = read_metrics_files(inputs.repo, list(inputs.metrics_files))
        _check_metric_names(inputs.thresholds + inputs.regressions, metrics, "the project's metrics have")
        return EvalReport(metrics, "recorded:" + ",".join(inputs.metrics_files))
    assert options.model
    assert options.test_data
    assert options.target
    return evaluate_builtin(inputs.repo / options.model, inputs.repo / options.test_data, options.target, options.task)


def _default_experiment(repo: Path) -> str:
    """`<project>-pr`: one experiment for all of a project's PR validations."""
    return f"{project_name(repo)}-pr"


def with_ci_defaults(options: PRValidationOptions) -> PRValidationOptions:
    """Fill the PR number and baseline from the CI's environment (GitHub's, GitLab's) when not given."""
    return replace(
        options,
        pr=options.pr if options.pr is not None else pr_number_from_env(),
        baseline_ref=options.baseline_ref or base_ref_from_env(),
    )


def _params_diff(repo: Path, commit: str) -> dvc.ParamsDiff | None:
    """The params diff against the baseline commit for the report; None (said on stderr) when DVC
    cannot read it: it informs the reviewer, it gates nothing."""
    try:
        return dvc.params_diff(repo, commit)
    except ConfigError as error:
        github.warning(f"params diff left out of the report: {error}")
        return None


def run_pr_validation(options: PRValidationOptions, inputs: ValidatedInputs) -> PRValidationResult:
    """Validate a PR's model; return the result (the caller reports it and picks the exit code)."""
    # MLflow's import overlaps the checks, the pull and the evaluation; joined before MLflow is used
    uses_mlflow = options.track or options.trend_builds > 0
    preload = preload_in_background(resolve_tracking_uri(options.tracking_uri, inputs.repo)) if uses_mlflow else None
    try:
        return _validate(options, inputs, preload)
    finally:
        if preload is not None:
            preload.join()


def _validate(options: PRValidationOptions, inputs: ValidatedInputs, preload: Thread | None) -> PRValidationResult:
    repo = inputs.repo
    context = pr_git_context(repo, options.pr)
    baseline_commit = git.resolve_ref(repo, options.baseline_ref) if options.baseline_ref else None
    params = _params_diff(repo, baseline_commit) if baseline_commit else None
    experiment = options.experiment or _default_experiment(repo)

    with github.group(f"Check that DVC outputs are on remote '{inputs.remote}'"):
        ref = options.baseline_ref
        base = read_push_base(inputs.project, ref, baseline_commit) if ref and baseline_commit else None
        pushed = check_pushed(inputs.project, inputs.remote, inputs.endpoint, base, options.deep_check)
        sys.stderr.write(f"push check: {pushed.detail}\n")
    with github.group("Check that dvc.lock is up to date"):
        fresh = check_lock_fresh(inputs.project)
    sanity = (pushed, fresh)
    if not pushed.passed or not fresh.passed:
        verdict = "not-pushed" if not pushed.passed else "stale-lock"
        return PRValidationResult(False, verdict, context, sanity, experiment=experiment, params_diff=params)

    with github.group(f"Pull evaluation inputs: {', '.join(inputs.pull_targets) or 'nothing tracked by DVC'}"):
        _pull(inputs)
    with github.group("Evaluate the model"):
        evaluation = _evaluate(options, inputs)
        for key, value in sorted(evaluation.metrics.items()):
            sys.stderr.write(f"  {one_line(key)} = {f'{value:.6g}' if isinstance(value, float) else spell(value)}\n")
    baseline = None
    if options.baseline_ref:  # after the pull: DVC then reads this PR's cached metrics locally
        with github.group(f"Read the baseline metrics at {options.baseline_ref}"):
            baseline = read_baseline(inputs.project, options.baseline_ref, inputs.metrics_files, baseline_commit)
    gate = evaluate_gate(
        evaluation.metrics,
        list(inputs.thresholds),
        list(inputs.regressions),
        baseline.metrics if baseline else None,
        allow_missing_baseline=options.allow_missing_baseline,
    )
    verdict = "passed" if gate.passed else "gate-failed"
    with github.group("Read the plots for the report"):
        plots = read_plots(repo)  # never raises: plots inform the reviewer, they gate nothing
        if plots.warning:
            github.warning(plots.warning)
    if preload is not None:
        preload.join()
    trend = read_main_trend(options, inputs, evaluation.metrics)
    return PRValidationResult(
        gate.passed,
        verdict,
        context,
        sanity,
        evaluation,
        baseline,
        gate,
        experiment=experiment,
        params_diff=params,
        plots=plots.plots,
        plots_warning=plots.warning,
        trend=trend,
    )


def read_main_trend(options: PRValidationOptions, inputs: ValidatedInputs, metrics: Metrics) -> Trend | None:
    """The gated metrics over the last N builds of the base branch, read whether or not this run is
    tracked (reading writes nothing; a fork's missing credentials make it "not available"). It
    gates nothing and never raises; None when turned off (--trend-builds 0)."""
    if options.trend_builds <= 0:
        return None
    repo = inputs.repo
    gated = [rule.metric for rule in inputs.thresholds] + [rule.metric for rule in inputs.regressions]
    # master-build logs to the project's name unless told otherwise; a shared --experiment (one set
    # in mlops.yaml reaches both commands) is searched too: only build runs carry mlops.kind=ci-build
    experiments = [options.build_experiment or project_name(repo)]
    if options.experiment and not options.build_experiment:
        experiments.append(options.experiment)
    branch = branch_of_ref(options.baseline_ref)
    with github.group(
        f"Read the trend of the last {options.trend_builds} {one_line(branch or 'main')} builds from MLflow"
    ):
        trend = read_trend(
            resolve_tracking_uri(options.tracking_uri, repo),
            experiments,
            branch,
            gated,
            metrics,
            options.trend_builds,
            no_branch="no base branch to read the builds of; pass --baseline-ref BRANCH",
        )
        if trend and trend.reason:
            sys.stderr.write(f"trend not available: {one_line(trend.reason)}\n")
        elif trend:
            sys.stderr.write(f"{trend.builds} {one_line(branch)} builds found\n")
    return trend


def track_result(
    options: PRValidationOptions, project: Project, result: PRValidationResult, report_text: str
) -> TrackedRun:
    """Log the validation as a finished run of the PR experiment; never touches the registry."""
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
    run_name = (
        f"pr-{context.pr}-{context.commit[:8]}"
        if context.pr is not None
        else f"{context.branch or 'detached'}-{context.commit[:8]}"
    )
    metrics = result.evaluation.metrics if result.evaluation else {}
    return log_run(
        resolve_tracking_uri(options.tracking_uri, project.root),
        result.experiment or _default_experiment(project.root),
        run_name,
        tags,
        read_params(project),
        metrics,
        {"pr-validation-report.json": report_text},
    )


def publish(result: PRValidationResult, report_path: Path | None, command: str = "pr-validate") -> None:
    publish_report(
        report_json(result),
        render_markdown(result),
        step_outputs(result),
        failure_messages(result),
        report_path,
        f"mlops-actions {command}",
    )


def validate_pull_request(options: PRValidationOptions, report_path: Path | None) -> PRValidationResult:
    """The whole PR flow, published; the caller maps `passed` to the exit code."""
    options = with_ci_defaults(options)
    inputs = validate_inputs(options)
    result = run_pr_validation(options, inputs)
    if options.track:
        try:
            with github.group(f"Log to MLflow experiment '{result.experiment}'"):
                run = track_result(options, inputs.project, result, report_json(result))
        except InfrastructureError as error:
            # The verdict stands without MLflow: report it (best effort: a failure to report
            # never replaces this error), then fail for the tracking server.
            failed = replace(result, tracking_error=str(error))
            try:
                publish(failed, report_path)
                if options.comment:
                    comment_on_pr(failed, inputs.project, options.pr)
            except Exception as reporting:
                github.warning(f"could not report the verdict: {type(reporting).__name__}: {reporting}")
            raise InfrastructureError(
                f"{error}; the PR verdict ({result.verdict}) was reported but not logged to MLflow",
                endpoint=error.endpoint,
            ) from None
        result = replace(result, run=run)
    publish(result, report_path)
    if options.comment:
        comment_on_pr(result, inputs.project, options.pr)
    return result


def comment_on_pr(result: PRValidationResult, project: Project, pr: int | None) -> None:
    """The sticky PR comment (--comment), after the job summary: it never changes the verdict."""
    from ..report.comment import project_key, publish_pr_comment

    with github.group("Write the PR comment"):
        publish_pr_comment(render_markdown(result), pr, project_key(project.root, project.git_root), ci_run_url())


# -- building blocks -------------------------------------------------------------------------


def validate_remote_pushed(
    repo: Path, remote: str | None, deep: bool = False, baseline_ref: str | None = None
) -> SanityCheck:
    """`check-remote`: every out recorded in the lock files and .dvc files is on the remote; what
    `baseline_ref` records is trusted (as pr-validate trusts its baseline) unless `deep`."""
    project = load_project(repo)
    name = dvc.resolve_remote(project.root, remote)
    base = read_push_base(project, baseline_ref, git.resolve_ref(project.root, baseline_ref)) if baseline_ref else None
    return check_pushed(project, name, dvc.remote_endpoint(project.root, name), base, deep)


def validate_lock_fresh(repo: Path) -> SanityCheck:
    """`check-lock`: dvc.lock is current against dvc.yaml, params and code."""
    return check_lock_fresh(load_project(repo))


def pull_eval_inputs(options: PRValidationOptions) -> list[str]:
    """`pull`: the DVC-tracked inputs of evaluation, nothing else."""
    return _pull(validate_inputs(options))


def dvc_cache_key(options: PRValidationOptions) -> DvcCacheKey:
    """`dvc-cache-key`: the cache key of exactly what `pull` would fetch, read from dvc.lock and
    the .dvc files without touching the network (so a workflow can restore .dvc/cache first)."""
    inputs = validate_inputs(options, need_remote=False)
    from ..dvc_cache import cache_key  # imported here: the module is built beside this one

    return cache_key(inputs.project, inputs.pull_targets)


def evaluate_model(options: PRValidationOptions) -> EvalReport:
    """`evaluate`: evaluate what is in the workspace (run `pull` first)."""
    return _evaluate(options, validate_inputs(options, need_remote=False))


def gate_metrics_files(options: PRValidationOptions) -> PRValidationResult:
    """`gate`: gate the metrics files in the workspace against thresholds and the baseline."""
    thresholds, regressions = parse_gate_rules(options.thresholds, options.max_regressions)
    project = load_project(options.repo)
    files = options.metrics_files or project.metrics_files
    if not files:
        raise ConfigError(
            "no metrics to gate: the project declares none; pass --metrics-file or add `metrics:` to dvc.yaml"
        )
    metrics = read_metrics_files(project.root, list(files))
    baseline = read_baseline(project, options.baseline_ref, files) if options.baseline_ref else None
    gate = evaluate_gate(
        metrics,
        list(thresholds),
        list(regressions),
        baseline.metrics if baseline else None,
        allow_missing_baseline=options.allow_missing_baseline,
    )
    return PRValidationResult(
        gate.passed,
        "passed" if gate.passed else "gate-failed",
        pr_git_context(project.root, options.pr),
        (),
        EvalReport(metrics, "files:" + ",".join(files)),
        baseline,
        gate,
    )
