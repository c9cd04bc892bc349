"""The `ci-helpers` command line: click wiring only. Each command calls one core function."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import wraps
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from .errors import INTERNAL_ERROR_EXIT_CODE, CIHelpersError, ConfigError


class LinesOption(click.Option):
    """A repeatable option whose environment variable holds one value per line, blank lines
    ignored (click would split on whitespace, breaking a rule like `test.accuracy >= 0.9`)."""

    def value_from_envvar(self, ctx: click.Context) -> Sequence[str] | None:
        raw = self.resolve_envvar_value(ctx)  # None when unset or empty
        lines = [line.strip() for line in (raw or "").splitlines() if line.strip()]
        return lines or None


class TrackOption(click.Option):
    """--track/--no-track from $CI_HELPERS_TRACK (empty: the default), else from the variable of
    the older `--no-track` flag, $CI_HELPERS_NO_TRACK, read the other way round."""

    LEGACY_ENVVAR = "CI_HELPERS_NO_TRACK"

    def value_from_envvar(self, ctx: click.Context) -> Any:
        value = super().value_from_envvar(ctx)
        legacy = os.environ.get(self.LEGACY_ENVVAR, "")
        if value is not None or not legacy:
            return value
        off = click.types.BoolParamType.str_to_bool(legacy)
        if off is None:
            raise click.BadParameter(
                f"{self.LEGACY_ENVVAR}={legacy!r} is not a boolean; set it to true or false "
                "(or use CI_HELPERS_TRACK=false)",
                ctx,
                self,
            )
        return "false" if off else "true"


# Shared options (pip-tools style): each names its environment variable explicitly so an
# action's `env:` maps straight onto it.
def _repo_option(help_text: str):
    return click.option(
        "--repo",
        type=click.Path(file_okay=False, path_type=Path),
        default=".",
        show_default=True,
        envvar="CI_HELPERS_REPO",
        show_envvar=True,
        help=help_text,
    )


repo_option = _repo_option("Project root: a git checkout holding dvc.yaml.")
remote_option = click.option(
    "--remote",
    envvar="CI_HELPERS_REMOTE",
    show_envvar=True,
    help="DVC remote to pull from and check against. Default: the project's default remote.",
)
eval_stage_option = click.option(
    "--eval-stage",
    envvar="CI_HELPERS_EVAL_STAGE",
    show_envvar=True,
    help="Evaluate by re-running this dvc.yaml stage on the pulled model and reading its metrics files.",
)
metrics_file_option = click.option(
    "--metrics-file",
    "metrics_file",
    cls=LinesOption,
    multiple=True,
    envvar="CI_HELPERS_METRICS_FILE",
    show_envvar=True,
    help="Metrics file (JSON/YAML, nested keys addressed with dots, as `dvc metrics show` prints them). "
    "Repeatable; the env var takes one per line. Default: the metrics dvc.yaml declares (with --eval-stage, those "
    "the stage writes).",
)
model_option = click.option(
    "--model",
    envvar="CI_HELPERS_MODEL",
    show_envvar=True,
    help=(
        "Built-in evaluator: pickle/joblib of a sklearn-compatible estimator, or an MLflow model directory. "
        "It runs in the project's Python (the first python3 on PATH, or $CI_HELPERS_EVAL_PYTHON), which needs "
        "pandas and scikit-learn."
    ),
)
test_data_option = click.option(
    "--test-data",
    envvar="CI_HELPERS_TEST_DATA",
    show_envvar=True,
    help="Built-in evaluator: test set as CSV or Parquet.",
)
target_option = click.option(
    "--target",
    envvar="CI_HELPERS_TARGET",
    show_envvar=True,
    help="Built-in evaluator: the target column.",
)
task_option = click.option(
    "--task",
    type=click.Choice(["regression", "classification"]),
    default="regression",
    show_default=True,
    envvar="CI_HELPERS_TASK",
    show_envvar=True,
    help="Built-in evaluator: which standard metrics to compute.",
)
threshold_option = click.option(
    "--threshold",
    "threshold",
    cls=LinesOption,
    multiple=True,
    envvar="CI_HELPERS_THRESHOLD",
    show_envvar=True,
    help="Absolute gate 'METRIC OP VALUE', OP one of >= <= > <, e.g. metrics.r2_score>=0.75. Repeatable; "
    "the env var takes one per line.",
)
max_regression_option = click.option(
    "--max-regression",
    "max_regression",
    cls=LinesOption,
    multiple=True,
    envvar="CI_HELPERS_MAX_REGRESSION",
    show_envvar=True,
    help="Allowed regression vs the baseline: METRIC=DELTA (absolute) or METRIC=P% (relative), with an "
    "optional :higher/:lower direction (else taken from the metric's threshold operator). Repeatable; the env var "
    "takes one per line.",
)
baseline_ref_option = click.option(
    "--baseline-ref",
    envvar="CI_HELPERS_BASELINE_REF",
    show_envvar=True,
    help="Git ref whose committed metrics are the baseline (fetched if the checkout is shallow). "
    "Default on Actions: $GITHUB_BASE_REF.",
)
allow_missing_baseline_option = click.option(
    "--allow-missing-baseline",
    is_flag=True,
    envvar="CI_HELPERS_ALLOW_MISSING_BASELINE",
    show_envvar=True,
    help="Let a --max-regression rule pass when the baseline has no value for its metric (a project's "
    "first PR). Without it, a missing baseline fails the gate.",
)
deep_check_option = click.option(
    "--deep",
    "deep_check",
    is_flag=True,
    envvar="CI_HELPERS_DEEP_CHECK",
    show_envvar=True,
    help="Push check: ask the remote about every file of every directory out, trusting nothing the "
    "baseline recorded (a scheduled audit; it lists only the hash prefixes it needs, never the whole "
    "remote). Without it, a directory whose hash is the baseline's was verified there and is trusted.",
)
tracking_uri_option = click.option(
    "--tracking-uri",
    envvar=["CI_HELPERS_TRACKING_URI", "MLFLOW_TRACKING_URI"],
    show_envvar=True,
    help="MLflow tracking URI. Default: sqlite:///<repo>/mlflow.db.",
)
experiment_option = click.option(
    "--experiment",
    envvar="CI_HELPERS_EXPERIMENT",
    show_envvar=True,
    help="MLflow experiment for PR runs. Default: '<project>-pr'.",
)
trend_builds_option = click.option(
    "--trend-builds",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    envvar="CI_HELPERS_TREND_BUILDS",
    show_envvar=True,
    help="The report shows each gated metric over the last N finished main builds, read from MLflow "
    "(one bounded attempt; it never changes the verdict). 0 turns it off.",
)
pr_option = click.option(
    "--pr",
    type=int,
    envvar="CI_HELPERS_PR",
    show_envvar=True,
    help="Pull-request number, tagged on the MLflow run. Default on Actions: from $GITHUB_REF.",
)


def _writable_report_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse an unwritable --report-json before anything runs (exit 2), not after the work."""
    if value is None:
        return None
    folder = next((parent for parent in (value.parent, *value.parent.parents) if parent.exists()), Path("."))
    if not _can_write_in(folder) or (value.exists() and not os.access(value, os.W_OK)):
        raise click.BadParameter(f"{value} cannot be written ({folder} is not a writable folder); pass a writable path")
    return value


def _can_write_in(folder: Path) -> bool:
    """Really try: os.access says yes to root everywhere, /proc included."""
    import tempfile

    if not folder.is_dir():
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


report_json_option = click.option(
    "--report-json",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CI_HELPERS_REPORT_JSON",
    show_envvar=True,
    callback=_writable_report_path,
    help="Write the machine-readable report here.",
)


def _fail(error: CIHelpersError) -> None:
    """One line and the error's exit code; a failure to print it never changes the code."""
    try:
        from .adapters import github

        github.error(str(error), title=type(error).__name__)
    except Exception:
        with suppress(Exception):
            sys.stderr.write(f"error: {error}\n")
    sys.exit(error.exit_code)


def _repo_given() -> Path | None:
    context = click.get_current_context(silent=True)
    repo = context.params.get("repo") if context else None
    return Path(repo) if repo else None


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """Map what a command raises onto the exit codes (errors.py; the table is in
    docs/pr-validate.md): a domain error, a full disk (5) or a signal (128+N) has its own;
    anything else is a bug in ci-helpers: exit 70 with one line (the traceback only with
    --debug)."""
    from .cancellation import SignalReceived

    try:
        yield
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except (Exception, SignalReceived) as raised:
        from .failures import domain_error

        error = domain_error(raised, _repo_given())
        if error is not None:
            _fail(error)
        if _debug():
            raise
        from .adapters import github

        text = " ".join(str(raised).split())[:300]
        github.error(
            f"internal error in ci-helpers ({type(raised).__name__}: {text}); "
            "re-run with `--debug` for the traceback, and report it",
            title="InternalError",
        )
        sys.exit(INTERNAL_ERROR_EXIT_CODE)


def _refuse_unwritable_runner_files() -> None:
    """Preflight of every command: the runner's output and summary files can be written, or
    nothing runs (a deploy job reading `model-uri` must not get nothing after every write)."""
    from .adapters.github import unwritable_runner_files

    problems = unwritable_runner_files()
    if problems:
        raise ConfigError(
            f"cannot write the runner's file {'; '.join(problems)}; give the job's user write access to it "
            "(a container job running as another user than the runner: set `options: --user` to the runner's)"
        )


def handles_errors(command):
    """Run a command's body under the exit codes (see `_mapped_errors`), after the runner-files
    preflight, with SIGTERM and SIGINT turned into a cancellation."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        from .cancellation import cancellable

        with _mapped_errors():
            _refuse_unwritable_runner_files()
            with cancellable():
                return command(*args, **kwargs)

    return wrapper


def _debug() -> bool:
    context = click.get_current_context(silent=True)
    root = context.find_root() if context else None
    return bool(root and (root.obj or {}).get("debug")) or os.environ.get("CI_HELPERS_DEBUG", "") not in (
        "",
        "0",
        "false",
    )


class ConfiguredCommand(click.Command):
    """A command whose defaults come from the project's mlops.yaml, through click's `default_map`:
    CLI option > environment variable > mlops.yaml > built-in default, and a value from the file
    goes through the option's own type and callback. The project root (--repo, else
    $CI_HELPERS_REPO, else .) is read from the arguments before the real parse."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing:
            return super().parse_args(ctx, args)
        with _mapped_errors():
            ctx.default_map = self._file_defaults(ctx, args)
        try:
            return super().parse_args(ctx, args)
        except click.BadParameter as error:
            name = error.param.name if error.param else None
            if not name or ctx.get_parameter_source(name) is not ParameterSource.DEFAULT_MAP:
                raise
            with _mapped_errors():  # a bad value from the file: one line naming the file and its key
                raise ConfigError(f"{ctx.meta['ci_helpers.settings_file']}: key '{name}': {error.message}") from None
            raise

    def _file_defaults(self, ctx: click.Context, args: list[str]) -> dict[str, Any] | None:
        from .settings import CONFIG_FILE, file_defaults, load_project_settings

        options = {
            param.name: param for param in self.get_params(ctx) if isinstance(param, click.Option) and param.name
        }
        given, _, _ = self.make_parser(ctx).parse_args(args=list(args))  # its usage errors are the real parse's
        help_option = self.get_help_option(ctx)
        if help_option is not None and help_option.name in given:
            return None  # --help works even beside a broken mlops.yaml
        explicit = {
            name for name, param in options.items() if name in given or param.value_from_envvar(ctx) is not None
        }
        repo = given.get("repo")
        if repo is None and "repo" in options:
            repo = options["repo"].value_from_envvar(ctx)
        root = Path(repo or ".")
        ctx.meta["ci_helpers.settings_file"] = root / CONFIG_FILE
        return file_defaults(load_project_settings(root), explicit, set(options)) or None


class CLIGroup(click.Group):
    command_class = ConfiguredCommand


def pr_options(params: dict):
    from .flows.pr import PRValidationOptions

    return PRValidationOptions(
        repo=Path(params["repo"]),
        remote=params.get("remote"),
        eval_stage=params.get("eval_stage"),
        metrics_files=tuple(params.get("metrics_file") or ()),
        model=params.get("model"),
        test_data=params.get("test_data"),
        target=params.get("target"),
        task=params.get("task") or "regression",
        thresholds=tuple(params.get("threshold") or ()),
        max_regressions=tuple(params.get("max_regression") or ()),
        baseline_ref=params.get("baseline_ref"),
        allow_missing_baseline=bool(params.get("allow_missing_baseline")),
        tracking_uri=params.get("tracking_uri"),
        experiment=params.get("experiment"),
        pr=params.get("pr"),
        track=params.get("track", True) is not False,
        comment=bool(params.get("comment")),
        trend_builds=params.get("trend_builds", 10),
        build_experiment=params.get("build_experiment"),
        deep_check=bool(params.get("deep_check")),
    )


@click.group(cls=CLIGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="mlops-actions", prog_name="ci-helpers")
@click.option(
    "--debug",
    is_flag=True,
    envvar="CI_HELPERS_DEBUG",
    show_envvar=True,
    help="Show the traceback of an internal error instead of one line.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Trustworthy CI for ML projects on DVC, S3 and MLflow.

    Every command exits 0 when done and passed, 1 when validation failed, 2 on bad input or
    configuration (nothing changed), 3 when S3, MLflow or git stayed unreachable after retries,
    4 when a stage of the project's own pipeline failed, 5 when the runner's disk is full,
    70 on an internal error of ci-helpers, 128+N when stopped by signal N (SIGTERM: 143).
    """
    ctx.obj = {"debug": debug}
    from .adapters.github import mask_known_secrets
    from .adapters.redact import install_redacting_streams

    mask_known_secrets()  # first: the runner must learn the secrets before anything can print them
    install_redacting_streams()


def evaluation_options(command):
    for option in reversed(
        [
            repo_option,
            remote_option,
            eval_stage_option,
            metrics_file_option,
            model_option,
            test_data_option,
            target_option,
            task_option,
        ]
    ):
        command = option(command)
    return command


def gate_options(command):
    for option in reversed(
        [threshold_option, max_regression_option, baseline_ref_option, allow_missing_baseline_option]
    ):
        command = option(command)
    return command


@cli.command("pr-validate")
@evaluation_options
@gate_options
@tracking_uri_option
@experiment_option
@pr_option
@report_json_option
@click.option(
    "--track/--no-track",
    cls=TrackOption,
    default=True,
    show_default=True,
    envvar="CI_HELPERS_TRACK",
    show_envvar=True,
    help="Log the result as a run of the PR experiment in MLflow (never the registry). --no-track for fork PRs "
    "without MLflow credentials; the trend is still read, and is 'not available' when that fails. "
    "$CI_HELPERS_NO_TRACK=true, the older spelling, still turns it off.",
)
@trend_builds_option
@deep_check_option
@click.option(
    "--build-experiment",
    envvar="CI_HELPERS_BUILD_EXPERIMENT",
    show_envvar=True,
    help="MLflow experiment master-build logs to, where the trend's main builds are read. Default: the "
    "project's name (master-build's default), and --experiment too when given.",
)
@click.option(
    "--comment/--no-comment",
    default=False,
    envvar="CI_HELPERS_COMMENT",
    show_envvar=True,
    help="Also write the report as one sticky PR comment, updated in place on each run (one per project). "
    "Needs $GITHUB_TOKEN with `pull-requests: write`; without that permission (fork PRs) a notice says so "
    "and the job summary stays the report. Never changes the exit code.",
)
@handles_errors
def pr_validate_command(**params) -> None:
    """Validate a pull request's model end to end.

    Checks that every DVC output was pushed and dvc.lock is current, pulls only what evaluation
    needs, evaluates the model, gates the metrics against thresholds and the baseline, logs the
    result to a PR-scoped MLflow experiment (never the registry), and reports: job summary (with
    the params diff against the baseline), step outputs, ::error:: annotations, --report-json.

    Evaluation is one of: --eval-stage (re-run the project's evaluation stage in CI); --model,
    --test-data and --target (the built-in evaluator); or, with neither, the metrics dvc.yaml
    declares, as the PR recorded them (pulled from the remote when DVC caches them).
    """
    from .flows.pr import validate_pull_request

    result = validate_pull_request(pr_options(params), params.get("report_json"))
    sys.exit(0 if result.passed else 1)


@cli.command("check-remote")
@repo_option
@remote_option
@deep_check_option
@click.option(
    "--baseline-ref",
    envvar="CI_HELPERS_BASELINE_REF",
    show_envvar=True,
    help="Git ref whose recorded outs were verified there (pr-validate's baseline): a directory out "
    "with the same hash is trusted, a changed one is asked about for its new files only. Default: "
    "none, every file is asked about.",
)
@handles_errors
def check_remote_command(**params) -> None:
    """Fail (exit 1) when outputs recorded in dvc.lock or .dvc files are missing from the remote.

    A directory out counts as pushed only when its manifest and every file it lists are on the
    remote (`dvc status --cloud` stops at the manifest).
    """
    from .flows.pr import validate_remote_pushed

    check = validate_remote_pushed(
        Path(params["repo"]), params.get("remote"), bool(params.get("deep_check")), params.get("baseline_ref")
    )
    click.echo(check.message)
    sys.exit(0 if check.passed else 1)


@cli.command("check-lock")
@repo_option
@handles_errors
def check_lock_command(repo: Path) -> None:
    """Fail (exit 1) when dvc.lock is stale against dvc.yaml, params or code."""
    from .flows.pr import validate_lock_fresh

    check = validate_lock_fresh(repo)
    click.echo(check.message)
    sys.exit(0 if check.passed else 1)


@cli.command("pull")
@evaluation_options
@handles_errors
def pull_command(**params) -> None:
    """Pull only what evaluation needs: the eval stage's DVC-tracked inputs, or --model and --test-data."""
    from .flows.pr import pull_eval_inputs

    pulled = pull_eval_inputs(pr_options(params))
    click.echo(f"pulled: {', '.join(pulled) or 'nothing (no input is tracked by DVC)'}")


@cli.command("dvc-cache-key")
@evaluation_options
@handles_errors
def dvc_cache_key_command(**params) -> None:
    """Print the cache key of the DVC objects that `pull` (and pr-validate) would fetch.

    Takes the same evaluation options as pr-validate and reads dvc.lock and the .dvc files only,
    never the remote, so it runs before an `actions/cache` restore of .dvc/cache. Writes the step
    outputs `key`, `path` (the cache folder to restore) and `restore-prefix` (what every key of this
    OS starts with, for `restore-keys`); outside Actions, prints them to stdout.
    """
    from .adapters import github
    from .flows.pr import dvc_cache_key

    cache = dvc_cache_key(pr_options(params))
    outputs = {"key": cache.key, "path": str(cache.path), "restore-prefix": cache.restore_prefix}
    github.set_outputs(outputs)
    if not os.environ.get("GITHUB_OUTPUT"):
        for name, value in outputs.items():
            click.echo(f"{name}={value}")
    click.echo(f"DVC cache key for {cache.objects} objects: {cache.key}", err=True)


@cli.command("evaluate")
@evaluation_options
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CI_HELPERS_EVAL_OUTPUT",
    show_envvar=True,
    help="Write the metrics as JSON here (default: stdout).",
)
@handles_errors
def evaluate_command(**params) -> None:
    """Evaluate the model in the workspace (after `pull`) and print its metrics as JSON."""
    from .flows.pr import evaluate_model
    from .metrics import json_value

    report = evaluate_model(pr_options(params))
    text = json.dumps(json_value(report.metrics), indent=2, sort_keys=True) + "\n"  # strict JSON: NaN as "NaN"
    if params.get("output"):
        params["output"].write_text(text)
    else:
        click.echo(text, nl=False)


@cli.command("gate")
@repo_option
@metrics_file_option
@gate_options
@report_json_option
@handles_errors
def gate_command(**params) -> None:
    """Gate metrics files against thresholds and the baseline's committed metrics; exit 1 on failure."""
    from .flows.pr import gate_metrics_files, publish

    result = gate_metrics_files(pr_options(params))
    publish(result, params.get("report_json"), "gate")
    sys.exit(0 if result.passed else 1)


model_name_option = click.option(
    "--model-name",
    envvar="CI_HELPERS_MODEL_NAME",
    show_envvar=True,
    help="Registered model name in the MLflow Model Registry.",
)
stage_transition_option = click.option(
    "--stage-transition",
    envvar="CI_HELPERS_STAGE_TRANSITION",
    show_envvar=True,
    help="Also move the version to this legacy MLflow stage (Staging, Production...). Deprecated by "
    "MLflow since 2.9 in favour of aliases; off by default.",
)


@cli.command("master-build")
@repo_option
@remote_option
@click.option(
    "--stage",
    "stage",
    cls=LinesOption,
    multiple=True,
    envvar="CI_HELPERS_STAGE",
    show_envvar=True,
    help="Stage to force-rebuild (repeatable, the env var one per line; default: train). Its downstream stages "
    "run on the new outputs; upstream stages are reused when their lock entries match.",
)
@metrics_file_option
@gate_options
@model_name_option
@click.option(
    "--alias",
    default="staging",
    show_default=True,
    envvar="CI_HELPERS_ALIAS",
    show_envvar=True,
    help="Registry alias to point at the CI-built version when the gate passes.",
)
@stage_transition_option
@click.option(
    "--lock-mode",
    type=click.Choice(["commit", "tag", "none"]),
    default="commit",
    show_default=True,
    envvar="CI_HELPERS_LOCK_MODE",
    show_envvar=True,
    help="commit: push a [skip ci] commit of dvc.lock to --branch; tag: push a tag instead; none: skip.",
)
@click.option(
    "--git-remote",
    default="origin",
    show_default=True,
    envvar="CI_HELPERS_GIT_REMOTE",
    show_envvar=True,
    help="Git remote to push the dvc.lock commit to.",
)
@click.option(
    "--branch",
    envvar="CI_HELPERS_BRANCH",
    show_envvar=True,
    help="Branch to commit dvc.lock to. Default: the checked-out branch, or $GITHUB_REF's.",
)
@click.option(
    "--git-user-name",
    envvar="CI_HELPERS_GIT_USER_NAME",
    show_envvar=True,
    help="Identity of the dvc.lock commit. Default: git config, else github-actions[bot] on Actions.",
)
@click.option(
    "--git-user-email",
    envvar="CI_HELPERS_GIT_USER_EMAIL",
    show_envvar=True,
    help="E-mail of the dvc.lock commit's identity.",
)
@click.option(
    "--register-failed",
    is_flag=True,
    envvar="CI_HELPERS_REGISTER_FAILED",
    show_envvar=True,
    help="Register the model even when the gate fails (the alias never moves then).",
)
@click.option(
    "--push-run-cache",
    is_flag=True,
    envvar="CI_HELPERS_PUSH_RUN_CACHE",
    show_envvar=True,
    help="Also push DVC's run cache.",
)
@click.option(
    "--model-artifact-path",
    default="model",
    show_default=True,
    envvar="CI_HELPERS_MODEL_ARTIFACT_PATH",
    show_envvar=True,
    help="Where to find the model in the run's artifacts when the training script "
    "logged no MLflow 3 logged model (MLflow 2 scripts).",
)
@click.option(
    "--model-path",
    envvar="CI_HELPERS_MODEL_PATH",
    show_envvar=True,
    help="File or directory of the CI-built model to register when the training script logs no MLflow model "
    "(e.g. models/model.pkl).",
)
@click.option(
    "--model-artifact",
    envvar="CI_HELPERS_MODEL_ARTIFACT",
    show_envvar=True,
    help="Name of the dvc.yaml `artifacts:` entry to register when the training script logs no MLflow model. "
    "Default: the one of type model.",
)
@tracking_uri_option
@click.option(
    "--experiment",
    envvar="CI_HELPERS_EXPERIMENT",
    show_envvar=True,
    help="MLflow experiment of the build run. Default: the project's name.",
)
@trend_builds_option
@report_json_option
@handles_errors
def master_build_command(**params) -> None:
    """Build the official model on main: rebuild in CI, gate, push, commit dvc.lock, register.

    Pulls only the inputs of the stages to rebuild (never the developer's pushed outputs), opens an
    MLflow run and hands it to the training script (MLFLOW_RUN_ID), force-rebuilds the stages and
    their downstream, gates the CI-built metrics, `dvc push`es them, commits dvc.lock back with
    [skip ci] (rebasing on a race, never forcing, never on top of newer pipeline code), registers
    the model with provenance tags and points --alias at it.
    """
    from .flows.build import MasterBuildOptions, build_and_publish

    p = params
    options = MasterBuildOptions(
        repo=Path(p["repo"]),
        remote=p["remote"],
        stages=tuple(p["stage"] or ("train",)),
        metrics_files=tuple(p["metrics_file"]),
        thresholds=tuple(p["threshold"]),
        max_regressions=tuple(p["max_regression"]),
        baseline_ref=p["baseline_ref"],
        allow_missing_baseline=bool(p["allow_missing_baseline"]),
        model_name=p["model_name"],
        alias=p["alias"],
        stage_transition=p["stage_transition"],
        lock_mode=p["lock_mode"],
        git_remote=p["git_remote"],
        branch=p["branch"],
        tracking_uri=p["tracking_uri"],
        experiment=p["experiment"],
        register_failed=bool(p["register_failed"]),
        push_run_cache=bool(p["push_run_cache"]),
        model_artifact_path=p["model_artifact_path"],
        model_path=p["model_path"],
        model_artifact=p["model_artifact"],
        git_user_name=p["git_user_name"],
        git_user_email=p["git_user_email"],
        trend_builds=p["trend_builds"],
    )
    result = build_and_publish(options, p["report_json"])
    sys.exit(0 if result.passed else 1)


def _tracking_uri(value: str | None, repo: Path) -> str:
    from .adapters.tracking import resolve_tracking_uri
    from .errors import ConfigError

    if not repo.is_dir():
        raise ConfigError(f"--repo {repo} does not exist; pass your project's folder (where mlops.yaml lives)")
    return resolve_tracking_uri(value, repo)


registry_repo_option = _repo_option(
    "Project root: where mlops.yaml is read, and where the default sqlite:///<repo>/mlflow.db lives."
)


@cli.command("register-model")
@registry_repo_option
@model_name_option
@click.option(
    "--run-id", envvar="CI_HELPERS_RUN_ID", show_envvar=True, help="Register the model this MLflow run logged."
)
@click.option(
    "--model-uri",
    envvar="CI_HELPERS_MODEL_URI",
    show_envvar=True,
    help="Register this model URI instead (models:/m-..., s3://..., runs:/...).",
)
@click.option(
    "--tag",
    "tag",
    cls=LinesOption,
    multiple=True,
    envvar="CI_HELPERS_TAG",
    show_envvar=True,
    help="Version tag KEY=VALUE. Repeatable; the env var takes one per line.",
)
@click.option("--alias", envvar="CI_HELPERS_ALIAS", show_envvar=True, help="Point this alias at the new version.")
@stage_transition_option
@click.option(
    "--model-artifact-path",
    default="model",
    show_default=True,
    envvar="CI_HELPERS_MODEL_ARTIFACT_PATH",
    show_envvar=True,
    help="With --run-id: the model's artifact path when the run has no logged model.",
)
@tracking_uri_option
@report_json_option
@handles_errors
def register_model_command(
    repo, model_name, run_id, model_uri, tag, alias, stage_transition, model_artifact_path, tracking_uri, report_json
) -> None:
    """Register a model from --run-id or --model-uri under --model-name, with tags and an alias."""
    from .flows.registry import register_model

    register_model(
        _tracking_uri(tracking_uri, repo),
        model_name,
        run_id,
        model_uri,
        tag,
        alias,
        stage_transition,
        model_artifact_path,
        report_json,
    )


@cli.command("promote")
@registry_repo_option
@model_name_option
@click.option(
    "--from-alias",
    default="staging",
    show_default=True,
    envvar="CI_HELPERS_FROM_ALIAS",
    show_envvar=True,
    help="Alias whose version is promoted.",
)
@click.option(
    "--to-alias",
    default="production",
    show_default=True,
    envvar="CI_HELPERS_TO_ALIAS",
    show_envvar=True,
    help="Alias to point at that version.",
)
@threshold_option
@stage_transition_option
@tracking_uri_option
@report_json_option
@handles_errors
def promote_command(
    repo, model_name, from_alias, to_alias, threshold, stage_transition, tracking_uri, report_json
) -> None:
    """Point --to-alias at the version behind --from-alias, behind an optional gate on its run's metrics."""
    from .flows.registry import promote

    outcome = promote(
        _tracking_uri(tracking_uri, repo), model_name, from_alias, to_alias, threshold, stage_transition, report_json
    )
    sys.exit(0 if outcome.passed else 1)


@cli.command("rollback")
@registry_repo_option
@model_name_option
@click.option(
    "--alias",
    default="production",
    show_default=True,
    envvar="CI_HELPERS_ALIAS",
    show_envvar=True,
    help="Alias to move back to its previous holder.",
)
@tracking_uri_option
@report_json_option
@handles_errors
def rollback_command(repo, model_name, alias, tracking_uri, report_json) -> None:
    """Move --alias back to the version that held it before (the alias history is kept in tags)."""
    from .flows.registry import rollback

    rollback(_tracking_uri(tracking_uri, repo), model_name, alias, report_json)


from .cli_trace import trace_command  # noqa: E402
from .cli_verify import verify_command  # noqa: E402

cli.add_command(trace_command)
cli.add_command(verify_command)


def main() -> None:
    """The `ci-helpers` executable: click's own usage errors become one line and exit 2 too."""
    import atexit
    import gc

    # Registered first, so run last: the interpreter's final collections would walk MLflow's and
    # DVC's heap (0.7-1 s of every command) only to free what the OS frees anyway.
    atexit.register(gc.freeze)
    try:
        code = cli.main(prog_name="ci-helpers", standalone_mode=False)
    except click.exceptions.UsageError as error:
        from .adapters import github

        command = error.ctx.command_path if error.ctx else "ci-helpers"
        message = " ".join(error.format_message().split()).rstrip(".")
        github.error(f"{message}; see `{command} --help`", title="ConfigError")
        sys.exit(2)
    except click.exceptions.ClickException as error:
        from .adapters import github

        github.error(" ".join(error.format_message().split()), title="ConfigError")
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
