"""Render a PRValidationResult: JSON report, markdown summary, step outputs."""

from __future__ import annotations

import json

from ..mlflow_links import run_link
from ..results import PRValidationResult
from .common import (
    baseline_json,
    baseline_text,
    check_json,
    failing_checks_block,
    failure_text,
    metrics_block,
    number,
    params_diff_lines,
    value_cell,
)
from .escape import code, text
from .limits import Block, Markdown
from .mermaid import plots_section
from .trend import link_markdown, newest_build_links, trend_json, trend_section

_VERDICT_TEXT = {
    "passed": "✅ passed",
    "gate-failed": "❌ failed: metrics gate",
    "not-pushed": "❌ failed: DVC outputs not pushed",
    "stale-lock": "❌ failed: dvc.lock is stale",
}


def report_dict(result: PRValidationResult) -> dict:
    evaluation = result.evaluation
    metrics = {k: number(v) for k, v in (evaluation.metrics if evaluation else {}).items()}
    return {
        "passed": result.passed,
        "verdict": result.verdict,
        "metrics": metrics,
        "baseline": ({k: number(v) for k, v in result.baseline.metrics.items()} if result.baseline else None),
        "baseline_ref": result.baseline.ref if result.baseline else None,
        "baseline_commit": result.baseline.commit if result.baseline else None,
        "baseline_sources": dict(result.baseline.sources) if result.baseline else None,
        "baseline_source": baseline_json(result.baseline),
        "params_diff": result.params_diff,
        "checks": [check_json(check) for check in result.gate.checks] if result.gate else [],
        "sanity": [
            {"name": s.name, "passed": s.passed, "problems": list(s.problems), "fix": s.fix, "detail": s.detail}
            for s in result.sanity
        ],
        "evaluation": {
            "method": evaluation.method,
            "committed": {k: number(v) for k, v in evaluation.committed.items()},
            "mismatches": [
                {"metric": m.metric, "committed": number(m.committed), "ci": number(m.ci)}
                for m in evaluation.mismatches
            ],
        }
        if evaluation
        else None,
        "plots": [
            {
                "id": plot.id,
                "kind": plot.kind,
                "title": plot.title,
                "series": [{"name": s.name, "points": len(s.ys)} for s in plot.series],
                **({"reason": plot.reason} if plot.reason else {}),
            }
            for plot in result.plots
        ],
        "plots_warning": result.plots_warning,
        "git": {"commit": result.git.commit, "branch": result.git.branch, "pr": result.git.pr},
        "mlflow": {
            "tracking_uri": result.run.tracking_uri,
            "experiment": result.experiment,
            "experiment_id": result.run.experiment_id,
            "run_id": result.run.run_id,
            "run_url": run_link(result.run.tracking_uri, result.run.experiment_id, result.run.run_id).url,
        }
        if result.run
        else ({"error": result.tracking_error} if result.tracking_error else None),
        "trend": trend_json(result.trend),
    }


def report_json(result: PRValidationResult) -> str:
    return json.dumps(report_dict(result), indent=2, sort_keys=False) + "\n"


def render_markdown(result: PRValidationResult) -> Markdown:
    """The job summary: verdict, failed checks, then a metrics table with deltas vs baseline (the
    gated metrics first), then what else there is; as blocks that the size limits cut between."""
    title = f"PR #{result.git.pr}" if result.git.pr is not None else code(result.git.branch or result.git.commit[:8])
    verdict = f"## Model validation for {title}: {_VERDICT_TEXT.get(result.verdict, result.verdict)}"
    blocks = [Block("the verdict", head=(verdict, ""), essential=True)]
    for check in result.sanity:
        if not check.passed:
            blocks.append(
                Block(
                    f"the {check.name} problems",
                    head=(f"**{check.name}**: failed", ""),
                    items=tuple(f"- {text(problem)}" for problem in check.problems),
                    tail=(
                        "",
                        f"Fix: {text(check.fix)}",
                        *([f"Checked: {text(check.detail)}"] if check.detail else []),
                        "",
                    ),
                    essential=True,
                )
            )
    gate_failures = [failure_text(check, result.baseline) for check in (result.gate.failures if result.gate else ())]
    failing = failing_checks_block(gate_failures)
    if failing:
        blocks.append(failing)
    evaluation = result.evaluation
    if evaluation:
        baseline = result.baseline.metrics if result.baseline else {}
        where = f"Evaluation: {code(evaluation.method)} · baseline: {baseline_text(result.baseline)}"
        blocks.append(Block("the evaluation line", head=(where, ""), essential=True))
        checks = result.gate.checks if result.gate else ()
        blocks.append(metrics_block(evaluation.metrics, baseline, checks, "this PR"))
        if evaluation.mismatches:
            blocks.append(
                Block(
                    "differences from the committed metrics",
                    head=("", "⚠️ CI's evaluation differs from the metrics committed in this PR:", ""),
                    items=tuple(
                        f"- {code(m.metric)}: committed {value_cell(m.committed) if m.committed is not None else '—'}, "
                        f"CI {value_cell(m.ci)}"
                        for m in evaluation.mismatches
                    ),
                )
            )
    if result.baseline and result.params_diff is not None:
        blocks.append(
            Block("the params diff", head=("", *params_diff_lines(result.params_diff, result.baseline.ref, "this PR")))
        )
    checked = [check for check in result.sanity if check.passed and check.detail]
    if checked:
        lines = tuple(f"{text(check.name.capitalize())} check: {text(check.detail)}" for check in checked)
        blocks.append(Block("the checks' details", head=("", *lines)))
    plots = plots_section(result.plots, result.plots_warning)
    if plots:
        blocks.append(Block("the plots", head=("", *plots)))
    trend = trend_section(result.trend, "this PR", "PR")
    if trend:
        blocks.append(Block("the trend", head=("", *trend)))
    mlflow = _mlflow_lines(result)
    if mlflow:
        blocks.append(Block("the MLflow links", head=("", *mlflow), essential=True))
    return Markdown(blocks)


def _mlflow_lines(result: PRValidationResult) -> list[str]:
    """Where this PR's run is in MLflow, and the newest main build (and its model version)."""
    newest = newest_build_links(result.trend)
    if result.run:
        run = link_markdown(run_link(result.run.tracking_uri, result.run.experiment_id, result.run.run_id))
        line = f"MLflow: this PR's {run} in experiment {code(result.experiment)}"
    elif result.tracking_error:
        line = f"⚠️ Not logged to MLflow: {text(result.tracking_error)}"
    else:
        line = "MLflow: not logged (--no-track)" if newest else ""
    if newest:
        line += f" · {newest}" if line else newest
    return [line] if line else []


def failure_messages(result: PRValidationResult) -> list[str]:
    """One line per failure, for ::error:: annotations."""
    messages = [check.message for check in result.sanity if not check.passed]
    messages += [failure_text(check, result.baseline) for check in (result.gate.failures if result.gate else ())]
    return messages


def step_outputs(result: PRValidationResult) -> dict[str, object]:
    return {
        "passed": result.passed,
        "verdict": result.verdict,
        "metrics": report_dict(result)["metrics"],
        "mlflow-run-id": result.run.run_id if result.run else "",
        "mlflow-experiment-id": result.run.experiment_id if result.run else "",
    }
