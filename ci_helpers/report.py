"""Render a PRValidationResult: JSON report, markdown summary, step outputs."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from .gate import Check, delta
from .pr_validate import PRValidationResult

_VERDICT_TEXT = {
    "passed": "✅ passed",
    "gate-failed": "❌ failed: metrics gate",
    "not-pushed": "❌ failed: DVC outputs not pushed",
    "stale-lock": "❌ failed: dvc.lock is stale",
}


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


def report_dict(result: PRValidationResult) -> dict:
    evaluation = result.evaluation
    metrics = {k: number(v) for k, v in (evaluation.metrics if evaluation else {}).items()}
    return {
        "passed": result.passed,
        "verdict": result.verdict,
        "metrics": metrics,
        "baseline": (
            {k: number(v) for k, v in result.baseline.metrics.items()} if result.baseline else None
        ),
        "baseline_ref": result.baseline.ref if result.baseline else None,
        "baseline_commit": result.baseline.commit if result.baseline else None,
        "checks": [check_json(check) for check in result.gate.checks] if result.gate else [],
        "sanity": [
            {"name": s.name, "passed": s.passed, "problems": list(s.problems), "fix": s.fix}
            for s in result.sanity
        ],
        "evaluation": {
            "method": evaluation.method,
            "committed": {k: number(v) for k, v in evaluation.committed.items()},
            "mismatches": [
                {"metric": m.metric, "committed": number(m.committed), "ci": number(m.ci)}
                for m in evaluation.mismatches
            ],
        } if evaluation else None,
        "git": {"commit": result.git.commit, "branch": result.git.branch, "pr": result.git.pr},
        "mlflow": {
            "tracking_uri": result.run.tracking_uri,
            "experiment": result.experiment,
            "experiment_id": result.run.experiment_id,
            "run_id": result.run.run_id,
        } if result.run else None,
    }


def report_json(result: PRValidationResult) -> str:
    return json.dumps(report_dict(result), indent=2, sort_keys=False) + "\n"


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
        return f"{check.op} baseline (none)"
    suffix = " (regression)" if check.kind == "regression" else ""
    return f"{check.op} {fmt(check.threshold)}{suffix}"


def metrics_table(metrics: dict, baseline: dict, checks: tuple[Check, ...], column: str) -> list[str]:
    """Markdown rows: metric, baseline, value, delta, the rules that apply, and their status."""
    lines = [f"| metric | baseline | {column} | delta | threshold | status |", "| --- | ---: | ---: | ---: | --- | --- |"]
    for metric in sorted(metrics):
        value, applied = metrics[metric], [c for c in checks if c.metric == metric]
        rules = "<br>".join(rule_text(c) for c in applied) or "—"
        status = "—" if not applied else ("✅" if all(c.passed for c in applied) else "❌")
        lines.append(f"| `{metric}` | {fmt(baseline.get(metric))} | {fmt(value)} | "
                     f"{fmt(delta(value, baseline.get(metric)), signed=True)} | {rules} | {status} |")
    return lines


def render_markdown(result: PRValidationResult) -> str:
    """The job summary: verdict, sanity checks, then a metrics table with deltas vs baseline."""
    title = f"PR #{result.git.pr}" if result.git.pr is not None else (result.git.branch or result.git.commit[:8])
    lines = [f"## Model validation for {title}: {_VERDICT_TEXT.get(result.verdict, result.verdict)}", ""]
    for check in result.sanity:
        if not check.passed:
            lines += [f"**{check.name}**: failed", ""]
            lines += [f"- {problem}" for problem in check.problems]
            lines += ["", f"Fix: {check.fix}", ""]
    evaluation = result.evaluation
    if evaluation:
        baseline = result.baseline.metrics if result.baseline else {}
        ref = f"`{result.baseline.ref}` ({result.baseline.commit[:8]})" if result.baseline else "none"
        lines += [f"Evaluation: `{evaluation.method}` · baseline: {ref}", ""]
        lines += metrics_table(evaluation.metrics, baseline, result.gate.checks if result.gate else (), "this PR")
        if evaluation.mismatches:
            lines += ["", "⚠️ CI's evaluation differs from the metrics committed in this PR:", ""]
            lines += [
                f"- `{m.metric}`: committed {fmt(m.committed)}, CI {fmt(m.ci)}" for m in evaluation.mismatches
            ]
    if result.run:
        lines += ["", f"MLflow: experiment `{result.experiment}`, run `{result.run.run_id}`"]
    return "\n".join(lines) + "\n"


def failure_messages(result: PRValidationResult) -> list[str]:
    """One line per failure, for ::error:: annotations."""
    messages = [check.message for check in result.sanity if not check.passed]
    for check in result.gate.failures if result.gate else ():
        if check.detail == "metric is not a finite number":
            messages.append(f"{check.metric} is {check.value}: not a finite number")
        else:
            kind = "regressed below" if check.kind == "regression" else "does not meet"
            messages.append(f"{check.metric} = {fmt(check.value)} {kind} {check.op} {fmt(check.threshold)}")
    return messages


def step_outputs(result: PRValidationResult) -> dict[str, object]:
    return {
        "passed": result.passed,
        "verdict": result.verdict,
        "metrics": report_dict(result)["metrics"],
        "mlflow-run-id": result.run.run_id if result.run else "",
        "mlflow-experiment-id": result.run.experiment_id if result.run else "",
    }
