"""What every report shares: number formatting, gate checks as JSON, the metrics table."""

from __future__ import annotations

import math
from dataclasses import asdict

from ..baseline import Baseline
from ..gate import MISSING_BASELINE, Check, delta


def number(value: float | None) -> float | str | None:
    """JSON has no NaN/inf: spell them out."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


def check_json(check: Check) -> dict:
    data = asdict(check)
    for key in ("threshold", "value", "baseline"):
        data[key] = number(data[key])
    return data


def fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def rule_text(check: Check) -> str:
    if check.kind == "finite":
        return "finite"
    if check.threshold is None:
        return f"{check.op} baseline: missing" + (" (allowed)" if check.passed else "")
    suffix = " (regression)" if check.kind == "regression" else ""
    return f"{check.op} {fmt(check.threshold)}{suffix}"


def metrics_table(metrics: dict, baseline: dict, checks: tuple[Check, ...], column: str) -> list[str]:
    """Markdown rows: metric, baseline, value, delta, the rules that apply, and their status."""
    lines = [
        f"| metric | baseline | {column} | delta | threshold | status |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for metric in sorted(metrics):
        value, applied = metrics[metric], [c for c in checks if c.metric == metric]
        rules = "<br>".join(rule_text(c) for c in applied) or "—"
        status = "—" if not applied else ("✅" if all(c.passed for c in applied) else "❌")
        lines.append(
            f"| `{metric}` | {fmt(baseline.get(metric))} | {fmt(value)} | "
            f"{fmt(delta(value, baseline.get(metric)), signed=True)} | {rules} | {status} |"
        )
    return lines


def missing_baseline_text(check: Check, baseline: Baseline | None) -> str:
    """Why a regression rule had nothing to compare with, and what fixes it."""
    if baseline is None:
        where = "no baseline was read (no --baseline-ref, or no metrics files to read at it)"
    elif not baseline.found:
        where = f"none of {', '.join(baseline.files) or 'the metrics files'} exists at `{baseline.ref}` ({baseline.commit[:8]})"
    else:
        where = f"{', '.join(baseline.found)} at `{baseline.ref}` ({baseline.commit[:8]}) has no such metric"
    return (
        f"{check.metric}: no baseline to check --max-regression against: {where}; pass --baseline-ref with a ref "
        "that has the metrics, or --allow-missing-baseline for a project's first PR"
    )


def failure_text(check: Check, baseline: Baseline | None) -> str:
    """One line for a failed gate check."""
    if check.detail == MISSING_BASELINE:
        return missing_baseline_text(check, baseline)
    if check.detail == "metric is not a finite number":
        return f"{check.metric} is {check.value}: not a finite number"
    kind = "regressed below" if check.kind == "regression" else "does not meet"
    return f"{check.metric} = {fmt(check.value)} {kind} {check.op} {fmt(check.threshold)}"
