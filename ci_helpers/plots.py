"""The plots a project declares, read through DVC's own API for the report.

`dvc.repo.Repo(root).plots.show()` collects every plot definition (top-level `plots:` with their
x/y/template, and the `plots:` outs of stages) with the data of their files, and DVC's renderer
matching (`dvc.render.match.match_defs_renderers`, what `dvc plots show` uses) turns them into one
renderer per plot: flat datapoints for data plots, a file for image plots. Nothing here parses a
DVC file by hand.

Plots inform the reviewer; they gate nothing. A plot whose data DVC cannot read is "unavailable",
and when DVC cannot read the plots at all, `read_plots` returns the reason as one warning line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report.escape import one_line

X_INDEX = "step"  # DVC's x when a plot declares none: the row's index


@dataclass(frozen=True)
class PlotSeries:
    """One line of a chart: a y field of one file, against the plot's x."""

    name: str
    xs: tuple[float | str, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True)
class Plot:
    """One plot as the report shows it.

    kind: "chart" (numeric data, drawn), "image" (an image file DVC tracks as a plot, listed) or
    "unavailable" (DVC could not read its data: `reason` says why).
    """

    id: str
    kind: str
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    series: tuple[PlotSeries, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class PlotsReading:
    plots: tuple[Plot, ...] = ()
    warning: str | None = None  # DVC could not read the plots at all


def _number(value: Any) -> float | None:
    """A finite float from a JSON/YAML/CSV value, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _x_value(value: Any) -> float | str | None:
    number = _number(value)
    if number is not None:
        return number
    if value is None or isinstance(value, dict | list):
        return None
    return one_line(value)


def _error_text(error: Any) -> str:
    if isinstance(error, FileNotFoundError) or type(error).__name__ in ("FileNotFoundError", "PathMissingError"):
        return "its data is not in the workspace nor in the DVC cache (not pulled, or not pushed)"
    return one_line(f"{type(error).__name__}: {error}") if str(error) else type(error).__name__


def _series_of(datapoints: list[dict], properties: dict) -> tuple[PlotSeries, ...]:
    """Group DVC's flat datapoints (one dict per row, tagged with `filename` and `field`) into one
    series per (file, y field), in DVC's order; rows without a numeric y or usable x are dropped."""
    x_field, y_field = properties.get("x", X_INDEX), properties.get("y")
    groups: dict[tuple[str, str], tuple[list[float | str], list[float]]] = {}
    for point in datapoints:
        key = (str(point.get("filename", "")), str(point.get("field", "")))
        xs, ys = groups.setdefault(key, ([], []))
        x, y = _x_value(point.get(x_field)), _number(point.get(y_field)) if y_field else None
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    files = {file for file, _ in groups}
    fields = {field for _, field in groups}
    series = []
    for (file, field), (xs, ys) in groups.items():
        if not ys:
            continue
        if len(fields) > 1 and len(files) > 1:
            name = f"{file}: {field}"
        elif len(fields) > 1:
            name = field
        else:
            name = file or field
        series.append(PlotSeries(name, tuple(xs), tuple(ys)))
    return tuple(series)


def _plot_of(renderer: Any, source_errors: dict, definition_errors: dict) -> Plot:
    properties = dict(getattr(renderer, "properties", {}) or {})
    plot_id = one_line(renderer.name)
    if renderer.TYPE == "image":
        if renderer.datapoints:
            return Plot(plot_id, "image", title=plot_id)
    else:
        series = _series_of(list(renderer.datapoints or []), properties)
        if series:
            return Plot(
                plot_id,
                "chart",
                title=one_line(properties.get("title") or plot_id),
                x_label=one_line(properties.get("x_label") or properties.get("x") or X_INDEX),
                y_label=one_line(properties.get("y_label") or properties.get("y") or ""),
                series=series,
            )
    errors = [error for by_source in source_errors.values() for error in by_source.values()]
    errors += list(definition_errors.values())
    reason = _error_text(errors[0]) if errors else "DVC found no numeric data in it"
    return Plot(plot_id, "unavailable", title=plot_id, reason=reason)


def read_plots(root: Path) -> PlotsReading:
    """Every plot of the DVC project at `root`, as DVC reads it in the workspace (falling back to
    the cache). Never raises: any failure is returned as one warning line."""
    try:
        from dvc.render.match import match_defs_renderers
        from dvc.repo import Repo

        with Repo(str(root), uninitialized=False) as repo:
            data = repo.plots.show()
            matched = match_defs_renderers(data)
        plots = tuple(_plot_of(m.renderer, m.source_errors, m.definition_errors) for m in matched)
    except Exception as error:  # plots never fail a validation
        return PlotsReading((), f"plots left out of the report: DVC could not read them: {_error_text(error)}")
    return PlotsReading(plots)
