"""`pr-validate` end to end: validate, track in MLflow, then publish the report everywhere."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from . import github
from .publishing import publish_report
from .pr_validate import PRValidationOptions, PRValidationResult, run_pr_validation, track_result
from .report import failure_messages, render_markdown, report_json, step_outputs

_PR_REF = re.compile(r"^refs/pull/(\d+)/")


def pr_number_from_env() -> int | None:
    """The PR number GitHub exposes in GITHUB_REF (refs/pull/N/merge) on pull_request events."""
    match = _PR_REF.match(os.environ.get("GITHUB_REF", ""))
    return int(match.group(1)) if match else None


def with_ci_defaults(options: PRValidationOptions) -> PRValidationOptions:
    """Fill the PR number and baseline from GitHub's environment when not given."""
    return replace(
        options,
        pr=options.pr if options.pr is not None else pr_number_from_env(),
        baseline_ref=options.baseline_ref or os.environ.get("GITHUB_BASE_REF") or None,
    )


def publish(result: PRValidationResult, report_path: Path | None) -> None:
    publish_report(report_json(result), render_markdown(result), step_outputs(result),
                   failure_messages(result), report_path, "mlops-actions pr-validate")


def validate_pull_request(options: PRValidationOptions, report_path: Path | None) -> PRValidationResult:
    """Run the whole PR flow and publish it; the caller maps `passed` to the exit code."""
    options = with_ci_defaults(options)
    result = run_pr_validation(options)
    if options.track:
        with github.group(f"Log to MLflow experiment '{result.experiment}'"):
            run = track_result(options, options.repo.resolve(), result, report_json(result))
        result = replace(result, run=run)
    publish(result, report_path)
    return result
