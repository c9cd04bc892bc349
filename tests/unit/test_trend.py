"""The report's trend of gated metrics over main builds, and its links to MLflow (pure rendering)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from ci_helpers.adapters.registry import ModelVersionRef
from ci_helpers.adapters.tracking import METRIC_KEYS_TAG, metric_names
from ci_helpers.mlflow_links import model_version_link, run_link, ui_base
from ci_helpers.report.trend import sparkline, trend_section
from ci_helpers.trend import MetricTrend, NewestBuild, Trend, TrendPoint, branch_of_ref, read_trend

from .test_report import _result

QUOTED = r'"[^"`\n<>#%&;\\]*"'
NUM = r"-?(?:\d+(?:\.\d+)?)"
INIT = re.compile(r'%%\{init: \{"themeVariables": \{"xyChart": \{"plotColorPalette": "#[0-9a-f]{6}"\}\}\}\}%%')
CHART = [
    re.compile(r"xychart-beta"),
    re.compile(rf"    title {QUOTED}"),
    re.compile(rf"    x-axis {QUOTED} \[{QUOTED}(?:, {QUOTED})*\]"),
    re.compile(rf"    y-axis {QUOTED} {NUM} --> {NUM}"),
    re.compile(rf"    line {QUOTED} \[{NUM}(?:, {NUM})*\]"),
]


def charts(markdown: str) -> list[list[str]]:
    return [block.split("\n") for block in re.findall(r"```mermaid\n(.*?)\n```", markdown, re.S)]


def check_chart(block: list[str]) -> tuple[list[str], list[float]]:
    """Assert the block follows the xychart grammar; return its x ticks and the line's values."""
    assert INIT.fullmatch(block[0]), block[0]
    assert len(block) == 6, block
    for pattern, line in zip(CHART, block[1:], strict=True):
        assert pattern.fullmatch(line), line
    ticks = re.findall(r'"([^"]*)"', block[3].split(" [", 1)[1])
    values = [float(v) for v in block[5].split("[", 1)[1].rstrip("]").split(", ")]
    assert len(ticks) == len(values)
    low, high = (float(v) for v in block[4].rsplit('" ', 1)[1].split(" --> "))
    assert low < high  # a flat line too gets a range to be drawn in
    assert all(low <= v <= high for v in values)
    return ticks, values


def _trend(values=(0.90, 0.91, 0.93), current=0.95, metric="metrics.r2_score", uri="sqlite:///m.db", **changes):
    points = tuple(TrendPoint(f"run{i}", f"{i}" * 40, v) for i, v in enumerate(values, 1))
    newest = NewestBuild("run3", "7", "3" * 40, ModelVersionRef("housing", "4")) if values else None
    trend = Trend("main", ("housing",), 10, len(values), (MetricTrend(metric, points, current),), newest, uri)
    return replace(trend, **changes)


def test_the_pr_report_draws_each_gated_metric_over_main_builds_with_this_pr_last():
    from ci_helpers.report.pr import render_markdown, report_json

    result = replace(_result(0.95), trend=_trend())
    text = render_markdown(result)

    assert "### Trend over the last 10 main builds" in text
    assert "3 finished main builds in experiment `housing`, oldest first:" in text
    line = next(x for x in text.splitlines() if x.startswith("- `metrics.r2_score`"))
    assert "main builds: 0.9, 0.91, 0.93 → this PR **0.95** (+0.02 vs the newest build)" in line
    assert "│█`" in line  # this PR's point is the last one, set apart
    (chart,) = charts(text)
    ticks, values = check_chart(chart)
    assert ticks == ["1", "2", "3", "PR"]
    assert values == [0.9, 0.91, 0.93, 0.95]
    data = json.loads(report_json(result))["trend"]
    assert [b["value"] for b in data["metrics"]["metrics.r2_score"]["builds"]] == [0.9, 0.91, 0.93]
    assert data["metrics"]["metrics.r2_score"]["current"] == 0.95
    assert data["newest_build"]["model"]["uri"] == "models:/housing/4"


def test_no_builds_yet_or_no_mlflow_is_said_and_the_verdict_stays():
    from ci_helpers.report.pr import render_markdown, report_json

    empty = replace(_result(0.95), trend=_trend(values=()))
    assert "No main builds in MLflow yet (experiment `housing`)" in render_markdown(empty)
    down = replace(_result(0.5), trend=_trend(reason="MLflow tracking server http://127.0.0.1:9 is unreachable"))
    text = render_markdown(down)
    assert "Trend not available: MLflow tracking server http://127.0.0.1:9 is unreachable" in text
    assert "❌ failed: metrics gate" in text  # the failed gate stays failed, with or without a trend
    assert json.loads(report_json(down))["trend"]["available"] is False
    assert "Trend" not in render_markdown(replace(_result(0.95), trend=None))  # --trend-builds 0


def test_a_metric_no_build_logged_and_a_nan_pr_value_are_said_in_words():
    lines = "\n".join(trend_section(_trend(values=(), builds=2), "this PR", "PR"))
    assert "`metrics.r2_score`: no main build logged it yet: this PR **0.95**" in lines
    assert "```mermaid" not in lines
    nan = "\n".join(trend_section(_trend(current=float("nan")), "this PR", "PR"))
    assert "→ this PR: NaN" in nan
    ticks, values = check_chart(charts(nan)[0])
    assert ticks == ["1", "2", "3"]  # no point for a value that is not a number
    assert values == [0.9, 0.91, 0.93]


def test_hostile_metric_names_cannot_break_the_chart_or_the_markdown():
    name = 'm"]\n```\n<img src=x>`|#%%{x}'
    text = "\n".join(trend_section(_trend(metric=name), "this PR", "PR"))
    (chart,) = charts(text)
    check_chart(chart)
    assert "<img" not in text
    assert "\n```\n<img" not in text


def test_flat_and_single_build_trends_still_draw_a_readable_range():
    ticks, values = check_chart(charts("\n".join(trend_section(_trend(values=(0.5,), current=0.5), "x", "PR")))[0])
    assert ticks == ["1", "PR"]
    assert values == [0.5, 0.5]
    assert sparkline([1.0, 1.0]) == "▄▄"
    assert sparkline([0.0, 0.5, 1.0]) == "▁▅█"


def test_charts_are_capped_and_the_rest_is_still_listed():
    metrics = tuple(
        MetricTrend(f"m{i}", (TrendPoint("r", "c" * 40, 1.0), TrendPoint("s", "d" * 40, 2.0)), 3.0) for i in range(8)
    )
    text = "\n".join(trend_section(replace(_trend(), metrics=metrics), "this PR", "PR"))
    assert len(charts(text)) == 6
    assert "2 more metric(s) not charted" in text
    assert all(f"- `m{i}`" in text for i in range(8))


@pytest.mark.parametrize(
    ("ref", "branch"),
    [
        ("main", "main"),
        ("origin/main", "main"),
        ("refs/heads/main", "main"),
        ("refs/remotes/up/dev", "dev"),
        (None, None),
    ],
)
def test_the_trend_reads_the_builds_of_the_baseline_refs_branch(ref, branch):
    assert branch_of_ref(ref) == branch


def test_zero_builds_turns_the_trend_off_and_no_branch_says_why():
    assert read_trend("sqlite:///nowhere.db", ["p"], "main", ["m"], {}, limit=0) is None
    trend = read_trend("sqlite:///nowhere.db", ["p"], None, ["m"], {}, no_branch="no base branch")
    assert trend is not None
    assert trend.reason == "no base branch"


def test_sanitised_metric_keys_map_back_to_the_projects_dotted_names():
    tags = {METRIC_KEYS_TAG: json.dumps({"fi.ocean_<1H": "fi.ocean_<1H OCEAN", "…": "3 more in the run's artifact"})}
    assert metric_names(tags) == {"fi.ocean_<1H": "fi.ocean_<1H OCEAN"}
    assert metric_names({}) == {}
    assert metric_names({METRIC_KEYS_TAG: "not json"}) == {}


# -- links -----------------------------------------------------------------------------------


def test_links_to_the_run_and_the_model_version_on_an_http_server():
    assert (
        run_link("https://mlflow.example.com/", "3", "abc").url == "https://mlflow.example.com/#/experiments/3/runs/abc"
    )
    link = model_version_link("http://127.0.0.1:5000/mlflow", "my model/x", "7")
    assert link.url == "http://127.0.0.1:5000/mlflow/#/models/my%20model%2Fx/versions/7"
    assert link.text == "models:/my model/x/7"


def test_no_credential_reaches_a_link(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-abcdef-123")
    uri = "https://alice:pa55w0rd-secret@mlflow.example.com:8443/tok-abcdef-123/?token=qs-secret#frag"
    url = run_link(uri, "1", "r").url
    assert url == "https://mlflow.example.com:8443/***/#/experiments/1/runs/r"
    for secret in ("alice", "pa55w0rd-secret", "tok-abcdef-123", "qs-secret"):
        assert secret not in url


def test_the_pr_and_build_reports_link_without_the_uris_credentials():
    from ci_helpers.adapters.tracking import TrackedRun
    from ci_helpers.report.pr import render_markdown, report_json

    uri = "https://bob:hunter2-secret@mlflow.example.com"
    result = replace(_result(0.95), run=TrackedRun(uri, "5", "pr-run"), experiment="housing-pr", trend=_trend(uri=uri))
    text, data = render_markdown(result), report_json(result)
    assert "this PR's [run pr-run](https://mlflow.example.com/#/experiments/5/runs/pr-run)" in text
    assert "[run run3](https://mlflow.example.com/#/experiments/7/runs/run3)" in text
    assert "[models:/housing/4](https://mlflow.example.com/#/models/housing/versions/4)" in text
    assert json.loads(data)["mlflow"]["run_url"] == "https://mlflow.example.com/#/experiments/5/runs/pr-run"
    assert "hunter2-secret" not in text
    assert "hunter2-secret" not in json.loads(data)["mlflow"]["run_url"]

    from ci_helpers.adapters.registry import RegisteredVersion
    from ci_helpers.gate import evaluate_gate, parse_threshold
    from ci_helpers.provenance import GitContext
    from ci_helpers.rebuild_plan import RebuildPlan
    from ci_helpers.report.build import build_report_dict, render_build_markdown
    from ci_helpers.results import BuildResult

    metrics = {"metrics.r2_score": 0.94}
    build = BuildResult(
        True,
        "passed",
        GitContext("e" * 40, "main", None),
        RebuildPlan(("train",), ("evaluate",), (), (), (), ()),
        metrics,
        TrackedRun(uri, "7", "build-run"),
        "housing",
        {},
        evaluate_gate(metrics, [parse_threshold("metrics.r2_score>=0.8")], [], None),
        registered=RegisteredVersion("housing", "5", "models:/m-1", "build-run", False),
        trend=_trend(uri=uri, current=0.94),
    )
    text, data = render_build_markdown(build), build_report_dict(build)
    assert "Model: [models:/housing/5](https://mlflow.example.com/#/models/housing/versions/5)" in text
    assert "this build's [run build-run](https://mlflow.example.com/#/experiments/7/runs/build-run)" in text
    assert "main builds: 0.9, 0.91, 0.93 → this build **0.94**" in text
    assert check_chart(charts(text)[0])[0] == ["1", "2", "3", "this"]
    assert data["model"]["url"] == "https://mlflow.example.com/#/models/housing/versions/5"
    assert "hunter2-secret" not in text


def test_a_sqlite_store_has_no_page_the_ids_are_shown_as_text():
    from ci_helpers.adapters.tracking import TrackedRun
    from ci_helpers.report.pr import render_markdown

    assert ui_base("sqlite:////tmp/mlflow.db") is None
    assert ui_base("file:./mlruns") is None
    uri = "sqlite:////tmp/mlflow.db"
    result = replace(_result(0.95), run=TrackedRun(uri, "1", "abc123"), experiment="p-pr", trend=_trend(uri=uri))
    text = render_markdown(result)
    assert "MLflow: this PR's `run abc123` in experiment `p-pr`" in text
    assert "model `models:/housing/4`" in text
    assert "](" not in text.split("### Trend")[1]


def test_a_path_that_would_end_the_markdown_link_is_encoded():
    url = run_link("https://h.example/a (b)<c>", "1", "r").url
    assert url == "https://h.example/a%20%28b%29%3Cc%3E/#/experiments/1/runs/r"
    assert run_link("https://h(x)/", "1", "r").url is None  # not a host name: no link
