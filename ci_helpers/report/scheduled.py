"""The scheduled pipeline's gate report: the CLI's metrics table, the baseline's source, and one
line per failed check (the Airflow task log and the validate task's XCom show it)."""

from __future__ import annotations

from ..gate import MISSING_BASELINE, Check
from .common import failure_text, metrics_table

_MISSING_BASELINE_FIX = "set baseline_alias (a promoted model) or baseline_ref, or allow_missing_baseline=True"


def scheduled_failure_text(check: Check, baseline_source: str) -> str:
    if check.detail == MISSING_BASELINE and not check.problem:
        return f"{check.metric}: no baseline to check the regression rule against ({baseline_source}); {_MISSING_BASELINE_FIX}"
    return failure_text(check, None)


def gate_report_lines(
    verdict: str, metrics: dict, baseline: dict, baseline_source: str, checks: tuple[Check, ...]
) -> list[str]:
    if verdict == "unchanged":
        return [f"mlops gate: skipped, {baseline_source}."]
    lines = [
        f"mlops gate: {'passed ✅' if verdict == 'passed' else 'failed ❌'}",
        f"Baseline: {baseline_source}",
        "",
        *metrics_table(metrics, baseline, checks, "this run"),
    ]
    failed = [scheduled_failure_text(check, baseline_source) for check in checks if not check.passed]
    if failed:
        lines += ["", *(f"- {line}" for line in failed)]
    return lines
