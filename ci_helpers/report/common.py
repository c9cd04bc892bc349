"""What every report shares: number formatting, gate checks as JSON, the metrics table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from ..baseline import Baseline
from ..gate import MISSING_BASELINE, Check, delta
from ..metrics import MetricValue, finite_number, json_value, spell
from .escape import code, text
from .limits import Block


def number(value: MetricValue) -> object:
    """A metric's value as JSON holds it: JSON has no NaN/inf, so they are the strings "NaN",
    "Infinity" and "-Infinity"; null, strings, booleans and lists stay what they are."""
    return json_value(value)


def check_json(check: Check) -> dict:
    data = asdict(check)
    for key in ("threshold", "value", "baseline"):
        data[key] = number(data[key])
    return data


def fmt(value: float | None, signed: bool = False) -> str:
    """A number for a table cell; "—" for none."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return spell(value)
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def value_cell(value: MetricValue) -> str:
    """A metric's value as written in its file, for a table cell: numbers as `fmt`, NaN, Infinity,
    null, true/false, strings and lists (as inline code: they are the project's text)."""
    if isinstance(value, float):
        return fmt(value)
    return code(spell(value))


def rule_text(check: Check) -> str:
    if check.kind == "finite":
        return "finite"
    if check.threshold is None and check.detail == MISSING_BASELINE:
        return f"{check.op} baseline: missing" + (" (allowed)" if check.passed else "")
    if check.threshold is None:
        return f"{check.op} baseline: {code(spell(check.baseline))}, not a number"
    suffix = " (regression)" if check.kind == "regression" else ""
    return f"{check.op} {fmt(check.threshold)}{suffix}"


def _metric_row(metric: str, value: MetricValue, baseline: dict, applied: list[Check]) -> str:
    rules = "<br>".join(rule_text(c) for c in applied) or "—"
    status = "—" if not applied else ("✅" if all(c.passed for c in applied) else "❌")
    base = value_cell(baseline[metric]) if metric in baseline else "—"
    return (
        f"| {code(metric)} | {base} | {value_cell(value)} | "
        f"{fmt(delta(value, baseline.get(metric)), signed=True)} | {rules} | {status} |"
    )


def metrics_block(metrics: dict, baseline: dict, checks: tuple[Check, ...], column: str) -> Block:
    """The metrics table as a report block: metric, baseline, value, delta, the rules that apply
    and their status; the gated metrics' rows first (kept when the report must be cut), then the rest."""
    head = (
        f"| metric | baseline | {column} | delta | threshold | status |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    )
    by_metric: dict[str, list[Check]] = {}
    for check in checks:
        by_metric.setdefault(check.metric, []).append(check)
    gated = sorted(metric for metric in metrics if metric in by_metric)
    rest = sorted(metric for metric in metrics if metric not in by_metric)
    rows = tuple(_metric_row(m, metrics[m], baseline, by_metric.get(m, [])) for m in [*gated, *rest])
    return Block("metrics rows", head=head, items=rows, essential_items=len(gated))


def metrics_table(metrics: dict, baseline: dict, checks: tuple[Check, ...], column: str) -> list[str]:
    """The metrics table's markdown lines (see `metrics_block`)."""
    return metrics_block(metrics, baseline, checks, column).lines()


def failing_checks_block(messages: list[str]) -> Block | None:
    """The gate's failed checks, one line each, right under the verdict."""
    if not messages:
        return None
    return Block(
        "failing checks",
        head=("Failing checks:", ""),
        items=tuple(f"- {text(m)}" for m in messages),
        tail=("",),
        essential=True,
    )


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
    if check.problem:
        return check.problem
    if check.detail == MISSING_BASELINE:
        return missing_baseline_text(check, baseline)
    kind = "regressed below" if check.kind == "regression" else "does not meet"
    return f"{check.metric} = {fmt(finite_number(check.value))} {kind} {check.op} {fmt(check.threshold)}"
