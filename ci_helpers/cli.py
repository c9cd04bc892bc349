"""The `ci-helpers` command line: click wiring only. Each command calls one core function."""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import click

from . import __version__
from .errors import CIHelpersError

# Shared options (pip-tools style): each names its environment variable explicitly so an
# action's `env:` maps straight onto it.
repo_option = click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True,
    envvar="CI_HELPERS_REPO", show_envvar=True, help="Project root: a git checkout holding dvc.yaml.",
)
remote_option = click.option(
    "--remote", envvar="CI_HELPERS_REMOTE", show_envvar=True,
    help="DVC remote to pull from and check against. Default: the project's default remote.",
)
eval_stage_option = click.option(
    "--eval-stage", envvar="CI_HELPERS_EVAL_STAGE", show_envvar=True,
    help="Evaluate by re-running this dvc.yaml stage on the pulled model and reading its metrics files.",
)
metrics_file_option = click.option(
    "--metrics-file", "metrics_file", multiple=True, envvar="CI_HELPERS_METRICS_FILE", show_envvar=True,
    help="Metrics file (JSON/YAML, nested keys addressed with dots). Repeatable. "
    "Default with --eval-stage: the stage's declared metrics.",
)
model_option = click.option(
    "--model", envvar="CI_HELPERS_MODEL", show_envvar=True,
    help="Built-in evaluator: pickle/joblib of a sklearn-compatible estimator, or an MLflow model directory.",
)
test_data_option = click.option(
    "--test-data", envvar="CI_HELPERS_TEST_DATA", show_envvar=True,
    help="Built-in evaluator: test set as CSV or Parquet.",
)
target_option = click.option(
    "--target", envvar="CI_HELPERS_TARGET", show_envvar=True, help="Built-in evaluator: the target column.",
)
task_option = click.option(
    "--task", type=click.Choice(["regression", "classification"]), default="regression", show_default=True,
    envvar="CI_HELPERS_TASK", show_envvar=True, help="Built-in evaluator: which standard metrics to compute.",
)
threshold_option = click.option(
    "--threshold", "threshold", multiple=True, envvar="CI_HELPERS_THRESHOLD", show_envvar=True,
    help="Absolute gate 'METRIC OP VALUE', OP one of >= <= > <, e.g. metrics.r2_score>=0.75. Repeatable; "
    "the env var takes several separated by whitespace.",
)
max_regression_option = click.option(
    "--max-regression", "max_regression", multiple=True, envvar="CI_HELPERS_MAX_REGRESSION", show_envvar=True,
    help="Allowed regression vs the baseline: METRIC=DELTA (absolute) or METRIC=P% (relative), with an "
    "optional :higher/:lower direction (else taken from the metric's threshold operator). Repeatable.",
)
baseline_ref_option = click.option(
    "--baseline-ref", envvar="CI_HELPERS_BASELINE_REF", show_envvar=True,
    help="Git ref whose committed metrics are the baseline (fetched if the checkout is shallow). "
    "Default on Actions: $GITHUB_BASE_REF.",
)
tracking_uri_option = click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", show_envvar=True,
    help="MLflow tracking URI. Default: sqlite:///<repo>/mlflow.db.",
)
experiment_option = click.option(
    "--experiment", envvar="CI_HELPERS_EXPERIMENT", show_envvar=True,
    help="MLflow experiment for PR runs. Default: '<project>-pr'.",
)
pr_option = click.option(
    "--pr", type=int, envvar="CI_HELPERS_PR", show_envvar=True,
    help="Pull-request number, tagged on the MLflow run. Default on Actions: from $GITHUB_REF.",
)
report_json_option = click.option(
    "--report-json", type=click.Path(dir_okay=False, path_type=Path), envvar="CI_HELPERS_REPORT_JSON",
    show_envvar=True, help="Write the machine-readable report here.",
)


def _fail(error: CIHelpersError) -> None:
    from . import github

    github.error(str(error), title=type(error).__name__)
    sys.exit(error.exit_code)


def handles_errors(command):
    """Map the package's domain errors onto DESIGN.md's exit codes."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CIHelpersError as error:
            _fail(error)

    return wrapper


def project_settings(ctx: click.Context, params: dict) -> dict:
    """CLI and env values first, then mlops.yaml from the project root."""
    from click.core import ParameterSource

    from .config import load_project_settings, merge_settings

    explicit = {
        name for name in params
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }
    return merge_settings(params, explicit, load_project_settings(Path(params["repo"])))


def pr_options(params: dict, track: bool = True):
    from .pr_validate import PRValidationOptions

    return PRValidationOptions(
        repo=Path(params["repo"]), remote=params.get("remote"), eval_stage=params.get("eval_stage"),
        metrics_files=tuple(params.get("metrics_file") or ()), model=params.get("model"),
        test_data=params.get("test_data"), target=params.get("target"), task=params.get("task") or "regression",
        thresholds=tuple(params.get("threshold") or ()), max_regressions=tuple(params.get("max_regression") or ()),
        baseline_ref=params.get("baseline_ref"), tracking_uri=params.get("tracking_uri"),
        experiment=params.get("experiment"), pr=params.get("pr"), track=track,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ci-helpers")
def cli() -> None:
    """Trustworthy CI for ML projects on DVC, S3 and MLflow.

    Every command exits 0 when done and passed, 1 when validation failed, 2 on bad input or
    configuration (nothing changed), 3 when S3, MLflow or git stayed unreachable after retries.
    """


def evaluation_options(command):
    for option in reversed([repo_option, remote_option, eval_stage_option, metrics_file_option, model_option,
                            test_data_option, target_option, task_option]):
        command = option(command)
    return command


def gate_options(command):
    for option in reversed([threshold_option, max_regression_option, baseline_ref_option]):
        command = option(command)
    return command


@cli.command("pr-validate")
@evaluation_options
@gate_options
@tracking_uri_option
@experiment_option
@pr_option
@report_json_option
@click.option("--no-track", is_flag=True, envvar="CI_HELPERS_NO_TRACK", show_envvar=True,
              help="Do not log the result to MLflow.")
@click.pass_context
@handles_errors
def pr_validate_command(ctx: click.Context, **params) -> None:
    """Validate a pull request's model end to end.

    Checks that every DVC output was pushed and dvc.lock is current, pulls only what evaluation
    needs, evaluates the model, gates the metrics against thresholds and the baseline, logs the
    result to a PR-scoped MLflow experiment (never the registry), and reports: job summary, step
    outputs, ::error:: annotations, --report-json.
    """
    from .pr_flow import validate_pull_request

    params = project_settings(ctx, params)
    result = validate_pull_request(pr_options(params, track=not params["no_track"]), params.get("report_json"))
    sys.exit(0 if result.passed else 1)


@cli.command("check-remote")
@repo_option
@remote_option
@click.pass_context
@handles_errors
def check_remote_command(ctx: click.Context, **params) -> None:
    """Fail (exit 1) when outputs recorded in dvc.lock or .dvc files are missing from the remote."""
    from .pr_validate import validate_remote_pushed

    params = project_settings(ctx, params)
    check = validate_remote_pushed(Path(params["repo"]), params.get("remote"))
    click.echo(check.message)
    sys.exit(0 if check.passed else 1)


@cli.command("check-lock")
@repo_option
@handles_errors
def check_lock_command(repo: Path) -> None:
    """Fail (exit 1) when dvc.lock is stale against dvc.yaml, params or code."""
    from .pr_validate import validate_lock_fresh

    check = validate_lock_fresh(repo)
    click.echo(check.message)
    sys.exit(0 if check.passed else 1)


@cli.command("pull")
@evaluation_options
@click.pass_context
@handles_errors
def pull_command(ctx: click.Context, **params) -> None:
    """Pull only what evaluation needs: the eval stage's DVC-tracked inputs, or --model and --test-data."""
    from .pr_validate import pull_eval_inputs

    pulled = pull_eval_inputs(pr_options(project_settings(ctx, params)))
    click.echo(f"pulled: {', '.join(pulled) or 'nothing (no input is tracked by DVC)'}")


@cli.command("evaluate")
@evaluation_options
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), envvar="CI_HELPERS_EVAL_OUTPUT",
              show_envvar=True, help="Write the metrics as JSON here (default: stdout).")
@click.pass_context
@handles_errors
def evaluate_command(ctx: click.Context, **params) -> None:
    """Evaluate the model in the workspace (after `pull`) and print its metrics as JSON."""
    from .pr_validate import evaluate_model

    params = project_settings(ctx, params)
    report = evaluate_model(pr_options(params))
    text = json.dumps(report.metrics, indent=2, sort_keys=True) + "\n"
    if params.get("output"):
        params["output"].write_text(text)
    else:
        click.echo(text, nl=False)


@cli.command("gate")
@repo_option
@metrics_file_option
@gate_options
@report_json_option
@click.pass_context
@handles_errors
def gate_command(ctx: click.Context, **params) -> None:
    """Gate metrics files against thresholds and the baseline's committed metrics; exit 1 on failure."""
    from .pr_flow import publish
    from .pr_validate import gate_metrics_files

    params = project_settings(ctx, params)
    result = gate_metrics_files(pr_options(params))
    publish(result, params.get("report_json"))
    sys.exit(0 if result.passed else 1)


def main() -> None:
    cli(prog_name="ci-helpers")


if __name__ == "__main__":
    main()
