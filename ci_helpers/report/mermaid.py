"""The project's plots as Mermaid `xychart-beta` charts, drawn inline by GitHub in job summaries and
PR comments (no image host needed).

The xychart grammar used here (Mermaid 10.5+):

    xychart-beta
        title "text"
        x-axis "text" MIN --> MAX        (numeric) | x-axis "text" ["a", "b", ...] (categorical)
        y-axis "text"
        line "text" [N, N, ...]          (one per series; all on the x-axis' points)

Quoted text may hold anything but a double quote; numbers are plain decimals (no exponent). A line's
values are spread evenly over the x-axis, so a numeric x is resampled onto an even grid (linear
interpolation; at most `max_points` points). Output is deterministic: same plots, same text.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Sequence

from ..plots import Plot, PlotSeries
from .escape import code, text

MAX_POINTS = 60
MAX_CHARTS = 6
MAX_SERIES = 8
MAX_SECTION_CHARS = 20_000
UPLOAD_HINT = (
    "Image plots are not drawn here: upload them with `actions/upload-artifact` "
    "(`path:` the files below) to see them from the run's page."
)

# Mermaid ends quoted text at `"`, reads markdown strings in backticks, entities after `#`/`&`,
# comments after `%%`; the markdown around it ends the fence at backticks and reads HTML in `<>`.
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_UNSAFE_LABEL = re.compile(r"[\"`<>\\#%&;\x00-\x1f\x7f]")


def label(value: object, limit: int = 60) -> str:
    """User-derived text safe inside Mermaid double quotes, on one line, at most `limit` chars."""
    cleaned = " ".join(_UNSAFE_LABEL.sub(" ", str(value)).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 3].rstrip() + "..."
    return cleaned


def number(value: float) -> str:
    """A plain decimal Mermaid accepts: no exponent, no trailing zeros, 6 significant digits."""
    if value == 0 or not math.isfinite(value):
        return "0"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    digits = f"{value:.6g}"
    if "e" in digits:
        digits = f"{float(digits):.15f}".rstrip("0").rstrip(".")
    return "0" if digits in ("-0", "") else digits


def _even_indices(count: int, limit: int) -> list[int]:
    """At most `limit` indices spread evenly over range(count), first and last included."""
    if count <= limit:
        return list(range(count))
    if limit <= 1:
        return [0]
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def _interpolate(points: list[tuple[float, float]], at: float) -> float:
    """y at x=`at` on the polyline through `points` (sorted by x); held flat beyond its ends."""
    xs = [x for x, _ in points]
    if at <= xs[0]:
        return points[0][1]
    if at >= xs[-1]:
        return points[-1][1]
    j = bisect_right(xs, at)
    (x0, y0), (x1, y1) = points[j - 1], points[j]
    if x0 == at:  # bisect_right: x0 <= at < x1
        return y0
    return y0 + (y1 - y0) * (at - x0) / (x1 - x0)


def _numeric_axis(series: Sequence[PlotSeries], max_points: int) -> tuple[str, list[list[float]]] | None:
    """(`MIN --> MAX`, values per series) when every x is a number spanning a range, else None."""
    if not all(isinstance(x, float | int) for s in series for x in s.xs):
        return None
    xs_all = sorted({float(x) for s in series for x in s.xs})
    if len(xs_all) < 2:
        return None
    low, high = xs_all[0], xs_all[-1]
    count = min(max_points, max(len(set(s.xs)) for s in series))
    count = max(count, 2)
    grid = [low + (high - low) * i / (count - 1) for i in range(count)]
    values = []
    for s in series:
        points = sorted(((float(x), y) for x, y in zip(s.xs, s.ys, strict=True)), key=lambda p: p[0])
        values.append([_interpolate(points, g) for g in grid])
    return f"{number(low)} --> {number(high)}", values


def _categorical_axis(series: Sequence[PlotSeries], max_points: int) -> tuple[str, list[list[float]]]:
    """(`["a", "b"]`, values per series): the labels in order of first appearance, downsampled
    evenly; a series missing a label repeats its previous value (or its first, before any)."""
    labels = list(dict.fromkeys(number(x) if isinstance(x, float | int) else str(x) for s in series for x in s.xs))
    kept = [labels[i] for i in _even_indices(len(labels), max_points)]
    values = []
    for s in series:
        by_label = {(number(x) if isinstance(x, float | int) else str(x)): y for x, y in zip(s.xs, s.ys, strict=True)}
        row, previous = [], s.ys[0]
        for name in labels:
            previous = by_label.get(name, previous)
            if name in kept:
                row.append(previous)
        values.append(row)
    axis = "[" + ", ".join(f'"{label(name, 30) or "-"}"' for name in kept) + "]"
    return axis, values


# Distinct and dark enough on GitHub's light and dark backgrounds; Mermaid's own first colour is
# too pale to read.
PLOT_PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#953800", "#57606a")


def palette_directive(palette: Sequence[str]) -> list[str]:
    """The init directive that sets the lines' colours (GitHub honours it), or nothing."""
    colours = ", ".join(c for c in palette if _HEX_COLOUR.fullmatch(c))
    if not colours:
        return []
    return [f'%%{{init: {{"themeVariables": {{"xyChart": {{"plotColorPalette": "{colours}"}}}}}}}}%%']


def xychart(plot: Plot, max_points: int = MAX_POINTS, max_series: int = MAX_SERIES) -> list[str]:
    """One ```mermaid block for a chart plot, and a line naming its series (xychart has no legend)."""
    series = list(plot.series[:max_series])
    numeric = _numeric_axis(series, max_points)
    axis, values = numeric if numeric else _categorical_axis(series, max_points)
    lines = [
        "```mermaid",
        *palette_directive(PLOT_PALETTE[: len(series)]),
        "xychart-beta",
        f'    title "{label(plot.title) or label(plot.id) or "plot"}"',
        f'    x-axis "{label(plot.x_label) or "x"}" {axis}',
        f'    y-axis "{label(plot.y_label) or "y"}"',
    ]
    for s, row in zip(series, values, strict=True):
        lines.append(f'    line "{label(s.name) or "series"}" [' + ", ".join(number(v) for v in row) + "]")
    lines.append("```")
    names = ", ".join(f"{i}. {code(label(s.name) or 'series')}" for i, s in enumerate(series, 1))
    legend = f"Lines, in order: {names}"
    if len(plot.series) > len(series):
        legend += f" ({len(plot.series) - len(series)} more series left out)"
    return [*lines, "", legend]


def plots_section(
    plots: Sequence[Plot],
    warning: str | None = None,
    max_charts: int = MAX_CHARTS,
    max_chars: int = MAX_SECTION_CHARS,
    max_points: int = MAX_POINTS,
) -> list[str]:
    """The report's "Plots" section as markdown lines; empty when there is nothing to say."""
    if not plots and not warning:
        return []
    lines = ["### Plots", ""]
    used, left_out = 0, list[Plot]()
    for plot in (p for p in plots if p.kind == "chart"):
        block = xychart(plot, max_points)
        size = sum(len(line) + 1 for line in block)
        if left_out or used >= max_charts or sum(len(x) + 1 for x in lines) + size > max_chars:
            left_out.append(plot)
            continue
        lines += [*block, ""]
        used += 1
    if left_out:
        names = ", ".join(code(label(p.id)) for p in left_out)
        lines += [
            f"{len(left_out)} more chart(s) left out (at most {max_charts} charts and {max_chars} characters "
            f"here): {names}; see them with `dvc plots show`.",
            "",
        ]
    images = [p for p in plots if p.kind == "image"]
    if images:
        lines += [UPLOAD_HINT, "", *(f"- {code(p.id)}" for p in images), ""]
    unavailable = [p for p in plots if p.kind == "unavailable"]
    if unavailable:
        lines += ["Not available:", ""]
        lines += [f"- {code(p.id)}: {text(p.reason)}" for p in unavailable]
        lines += [""]
    if warning:
        lines += [f"⚠️ {text(warning)}", ""]
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def unique_categories(names: Sequence[str], limit: int = 30) -> list[str]:
    """Labels safe for an x-axis, each distinct (xychart would merge equal ones): `a`, `a (2)`."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        base = label(name, limit) or "-"
        seen[base] = seen.get(base, 0) + 1
        result.append(base if seen[base] == 1 else f"{base} ({seen[base]})")
    return result


def padded_range(values: Sequence[float]) -> tuple[float, float]:
    """A y range around `values` with a little room, so a flat or tight series is still readable."""
    low, high = min(values), max(values)
    room = (high - low) * 0.1 or abs(high) * 0.01 or 1.0
    return low - room, high + room


def category_line_chart(
    title: str,
    x_label: str,
    categories: Sequence[str],
    y_label: str,
    lines: Sequence[tuple[str, Sequence[float]]],
    y_range: tuple[float, float] | None = None,
    palette: Sequence[str] = (),
) -> list[str]:
    """One ```mermaid xychart of lines over named x points (each line has a value per point);
    `palette` (hex colours, one per line) through an init directive, which GitHub honours."""
    axis = "[" + ", ".join(f'"{name}"' for name in unique_categories(categories)) + "]"
    y_axis = f'    y-axis "{label(y_label) or "y"}"'
    if y_range:
        y_axis += f" {number(y_range[0])} --> {number(y_range[1])}"
    block = [
        "```mermaid",
        *palette_directive(palette),
        "xychart-beta",
        f'    title "{label(title, 80) or "trend"}"',
        f'    x-axis "{label(x_label) or "x"}" {axis}',
        y_axis,
    ]
    block += [
        f'    line "{label(name) or "series"}" [' + ", ".join(number(v) for v in row) + "]" for name, row in lines
    ]
    return [*block, "```"]
