"""The report's trend section and MLflow links, shared by the PR and the build reports.

Per gated metric: one line of text (a sparkline and the values, this PR's last and marked), then a
Mermaid `xychart-beta` line chart of the same points, which GitHub draws inline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..metrics import finite_number
from ..mlflow_links import Link, model_version_link, run_link
from ..trend import MetricTrend, Trend
from .common import fmt, number, value_cell
from .escape import code, text
from .mermaid import MAX_CHARTS, PLOT_PALETTE, category_line_chart, padded_range

SPARKS = "▁▂▃▄▅▆▇█"


def link_markdown(link: Link) -> str:
    """A markdown link when there is a page, else the text as code."""
    if link.url:
        return f"[{text(link.text)}]({link.url})"
    return code(link.text)


def sparkline(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    if high == low:
        return SPARKS[3] * len(values)
    top = len(SPARKS) - 1
    return "".join(SPARKS[round((v - low) / (high - low) * top)] if math.isfinite(v) else " " for v in values)


def _current(metric: MetricTrend) -> float | None:
    return finite_number(metric.current)


def metric_line(metric: MetricTrend, branch: str, current_label: str) -> str:
    """`metric` `▂▄▆│█` main builds: 0.81, 0.82, 0.83 → this PR **0.84** (+0.01 vs newest build)."""
    name = code(metric.metric)
    values = [p.value for p in metric.points]
    current = _current(metric)
    if not values:
        now = f": {current_label} **{fmt(current)}**" if current is not None else ""
        return f"- {name}: no {text(branch)} build logged it yet{now}"
    spark = sparkline([*values, current] if current is not None else values)
    if current is not None:
        spark = spark[:-1] + "│" + spark[-1]
    line = f"- {name} `{spark}` {text(branch)} builds: {', '.join(fmt(v) for v in values)}"
    if current is not None:
        line += f" → {current_label} **{fmt(current)}** ({fmt(current - values[-1], signed=True)} vs the newest build)"
    elif metric.current is not None:
        line += f" → {current_label}: {value_cell(metric.current)}"
    return line


def metric_chart(metric: MetricTrend, branch: str, current_label: str, current_tick: str) -> list[str]:
    """x: the builds numbered oldest (1) to newest (n), then `current_tick`: short ticks that do not
    overlap (the commits are in the line above and in the JSON report)."""
    ticks = [str(number) for number in range(1, len(metric.points) + 1)]
    values = [p.value for p in metric.points]
    current = _current(metric)
    if current is not None:
        ticks.append(current_tick)
        values.append(current)
    then = f", then {current_label}" if current is not None else ""
    return category_line_chart(
        f"{metric.metric} over the last {len(metric.points)} {branch} builds{then}",
        f"{branch} builds, oldest (1) to newest ({len(metric.points)}){then}",
        ticks,
        metric.metric,
        [(metric.metric, values)],
        padded_range(values),
        PLOT_PALETTE[:1],
    )


def trend_section(
    trend: Trend | None, current_label: str, current_tick: str, max_charts: int = MAX_CHARTS
) -> list[str]:
    """The markdown lines of the trend; empty when the trend is off (--trend-builds 0)."""
    if trend is None:
        return []
    branch = trend.branch or "main"
    lines = [f"### Trend over the last {trend.requested} {text(branch)} builds", ""]
    if not trend.available:
        return [*lines, f"Trend not available: {text(trend.reason)}"]
    where = ", ".join(code(name) for name in trend.experiments)
    if trend.builds == 0:
        return [
            *lines,
            f"No {text(branch)} builds in MLflow yet (experiment {where}): the first master-build starts it.",
        ]
    if not trend.metrics:
        return [
            *lines,
            f"{trend.builds} {text(branch)} builds found; no metric is gated, so there is nothing to trend.",
        ]
    lines += [f"{trend.builds} finished {text(branch)} builds in experiment {where}, oldest first:", ""]
    lines += [metric_line(metric, branch, current_label) for metric in trend.metrics]
    charted = [metric for metric in trend.metrics if metric.points][:max_charts]
    for metric in charted:
        lines += ["", *metric_chart(metric, branch, current_label, current_tick)]
    left_out = [metric for metric in trend.metrics if metric.points][max_charts:]
    if left_out:
        lines += ["", f"{len(left_out)} more metric(s) not charted (at most {max_charts} charts): see the lines above."]
    return lines


def newest_build_links(trend: Trend | None) -> str | None:
    """`newest main build: [run …](…), model [models:/name/v](…)`, when a trend found one."""
    if trend is None or trend.newest is None:
        return None
    newest = trend.newest
    parts = [link_markdown(run_link(trend.tracking_uri, newest.experiment_id, newest.run_id))]
    if newest.commit:
        parts[0] += f" ({code(newest.commit[:12])})"
    if newest.model:
        model = model_version_link(trend.tracking_uri, newest.model.name, newest.model.version)
        parts.append(f"model {link_markdown(model)}")
    return f"newest {text(trend.branch or 'main')} build: " + ", ".join(parts)


def trend_json(trend: Trend | None) -> dict | None:
    if trend is None:
        return None
    newest = trend.newest
    return {
        "branch": trend.branch,
        "experiments": list(trend.experiments),
        "requested": trend.requested,
        "builds": trend.builds,
        "available": trend.available,
        "reason": trend.reason,
        "metrics": {
            m.metric: {
                "builds": [{"run_id": p.run_id, "commit": p.commit, "value": number(p.value)} for p in m.points],
                "current": number(m.current),
            }
            for m in trend.metrics
        },
        "newest_build": {
            "run_id": newest.run_id,
            "experiment_id": newest.experiment_id,
            "commit": newest.commit,
            "run_url": run_link(trend.tracking_uri, newest.experiment_id, newest.run_id).url,
            "model": {
                "name": newest.model.name,
                "version": newest.model.version,
                "uri": model_version_link(trend.tracking_uri, newest.model.name, newest.model.version).text,
                "url": model_version_link(trend.tracking_uri, newest.model.name, newest.model.version).url,
            }
            if newest.model
            else None,
        }
        if newest
        else None,
    }
