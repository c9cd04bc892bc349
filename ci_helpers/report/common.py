"""What every report shares: number formatting, gate checks as JSON, the metrics table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from ..baseline import Baseline
from ..gate import MISSING_BASELINE, Check, delta
from .escape import code


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
            f"| {code(metric)} | {fmt(baseline.get(metric))} | {fmt(value)} | "
            f"{fmt(delta(value, baseline.get(metric)), signed=True)} | {rules} | {status} |"
        )
    return lines


_SOURCE_TEXT = {"git": "git", "dvc": "the DVC cache/remote"}


def baseline_text(baseline: Baseline | None) -> str:
    """Where the baseline came from: ref, commit, and each file's source (git or DVC)."""
    if baseline is None:
        return "none (no --baseline-ref)"
    where = f"{code(baseline.ref)} ({baseline.commit[:8]})"
    read = [f"{code(name)} from {_SOURCE_TEXT.get(baseline.sources.get(name, ''), '?')}" for name in baseline.found]
    missing = [f"{code(name)} not found" for name in baseline.missing]
    details = ", ".join(read + missing)
    return f"{where}: {details}" if details else where


def baseline_json(baseline: Baseline | None) -> dict | None:
    if baseline is None:
        return None
    return {
        "ref": baseline.ref,
        "commit": baseline.commit,
        "files": list(baseline.files),
        "found": list(baseline.found),
        "sources": dict(baseline.sources),
    }


def _param_value(value: object) -> str:
    if value is None:
        return "—"
    return code(value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def params_diff_lines(diff: dict[str, dict[str, dict[str, object]]] | None, ref: str, column: str) -> list[str]:
    """The params that differ from the baseline, as `dvc params diff` lists them."""
    if diff is None:
        return []
    if not diff:
        return [f"Params: unchanged since `{ref}`."]
    lines = [
        f"Params changed since `{ref}`:",
        "",
        f"| params file | param | `{ref}` | {column} |",
        "| --- | --- | --- | --- |",
    ]
    for path, changes in diff.items():
        for param, change in changes.items():
            lines.append(
                f"| `{path}` | `{param}` | {_param_value(change.get('old'))} | {_param_value(change.get('new'))} |"
            )
    return lines


def missing_baseline_text(check: Check, baseline: Baseline | None) -> str:
    """Why a regression rule had nothing to compare with, and what fixes it."""
    fix = "pass --baseline-ref with a ref that has the metrics, or --allow-missing-baseline for a project's first PR"
    if baseline is None:
        where = "no baseline was read (no --baseline-ref, or no metrics files to read at it)"
    elif baseline.missing:
        at = f"`{baseline.ref}` ({baseline.commit[:8]})"
        unread = [name for name in baseline.missing if name in baseline.unreadable]
        absent = [name for name in baseline.missing if name not in baseline.unreadable]
        parts = [f"{', '.join(absent)} does not exist at {at}"] if absent else []
        if unread:
            parts.append(f"{', '.join(unread)} at {at} is neither in the DVC cache nor on the remote")
            fix = f"push {baseline.ref}'s outputs with `dvc push`, or pass --allow-missing-baseline for a project's first PR"
        where = "; ".join(parts)
    else:
        where = f"{', '.join(baseline.found)} at `{baseline.ref}` ({baseline.commit[:8]}) has no such metric"
    return f"{check.metric}: no baseline to check --max-regression against: {where}; {fix}"


def failure_text(check: Check, baseline: Baseline | None) -> str:
    """One line for a failed gate check."""
    if check.detail == MISSING_BASELINE:
        return missing_baseline_text(check, baseline)
    if check.detail == "metric is not a finite number":
        return f"{check.metric} is {check.value}: not a finite number"
    kind = "regressed below" if check.kind == "regression" else "does not meet"
    return f"{check.metric} = {fmt(check.value)} {kind} {check.op} {fmt(check.threshold)}"
