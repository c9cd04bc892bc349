"""The job summary stays under GitHub's 1 MiB and the comment under 65,536 characters: verdict,
failing checks and gated metrics first, cut between whole blocks and rows, with a note."""

import re

from ci_helpers.baseline import Baseline
from ci_helpers.evaluation import EvalReport
from ci_helpers.gate import evaluate_gate, parse_threshold
from ci_helpers.provenance import GitContext
from ci_helpers.report.comment import MAX_BODY, comment_body
from ci_helpers.report.limits import (
    COMMENT_LIMIT_CHARS,
    SUMMARY_LIMIT_BYTES,
    Block,
    Markdown,
    fit,
    fit_summary,
    utf8_bytes,
)
from ci_helpers.report.pr import render_markdown
from ci_helpers.results import PRValidationResult
from ci_helpers.sanity_checks import SanityCheck

RUN = "https://github.example/acme/housing/actions/runs/7"
GATED = ("zz.gated_pass", "zz.gated_fail", "zz.gated_null")


def _big(count: int) -> PRValidationResult:
    """A PR whose metrics files hold `count` ungated metrics and three gated ones, two failing."""
    metrics: dict = {f"feature_importance.column_{i:06d}_ünïcode": i / count for i in range(count)}
    metrics.update({"zz.gated_pass": 0.9, "zz.gated_fail": 0.1, "zz.gated_null": None})
    rules = [parse_threshold(f"{name}>=0.5") for name in GATED]
    baseline = Baseline("main", "a" * 40, {"zz.gated_pass": 0.88})
    gate = evaluate_gate(metrics, rules, [], baseline.metrics)
    return PRValidationResult(
        False,
        "gate-failed",
        GitContext("b" * 40, "feature", 9),
        (SanityCheck("pushed", True, (), "x"),),
        EvalReport(metrics, "files:metrics.json"),
        baseline,
        gate,
    )


def _assert_whole_markdown(text: str, columns: int = 6) -> None:
    """No open fence, no unclosed <details>, no half table row."""
    assert text.count("```") % 2 == 0
    assert text.count("<details") == text.count("</details>")
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
            assert line.count(" | ") == columns - 1, line


def _assert_verdict_failures_and_gated_first(text: str) -> None:
    lines = text.splitlines()
    assert lines[0].startswith("## Model validation for PR #9: ❌ failed: metrics gate")
    before_table = text.split("| metric |", maxsplit=1)[0]
    assert "- zz.gated\\_fail = 0.1 does not meet &gt;= 0.5" in before_table
    assert "- zz.gated\\_null is null, not a number" in before_table
    rows = [line for line in lines if line.startswith("| `")]
    assert [row.split(" | ")[0] for row in rows[:3]] == [f"| `{name}`" for name in sorted(GATED)]


def test_a_summary_over_1_mib_is_cut_to_fit_keeping_verdict_failures_and_gated_metrics():
    markdown = render_markdown(_big(15_000))
    assert utf8_bytes(markdown) > SUMMARY_LIMIT_BYTES  # the case of the issue: GitHub would drop it whole
    summary = fit_summary(markdown, "out/report.json")
    assert utf8_bytes(summary) < SUMMARY_LIMIT_BYTES
    _assert_verdict_failures_and_gated_first(summary)
    _assert_whole_markdown(summary)
    note = summary.rstrip().splitlines()[-1]
    cut = int(re.search(r"left out (\d+) of 15003 metrics rows", note)[1])
    kept = sum(1 for line in summary.splitlines() if line.startswith("| `"))
    assert kept + cut == 15_003
    assert "The full report is in the JSON report `out/report.json`" in note
    assert "MLflow" not in note  # what was kept is not named as cut


def test_a_summary_without_a_report_file_says_how_to_get_the_whole_report():
    summary = fit_summary(render_markdown(_big(15_000)), None)
    assert "pass --report-json" in summary.splitlines()[-1]


def test_a_comment_over_65536_characters_is_cut_and_points_where_the_whole_report_is():
    markdown = render_markdown(_big(15_000))
    body = comment_body(markdown, ".", RUN)
    assert len(body) <= MAX_BODY == COMMENT_LIMIT_CHARS
    assert body.startswith("<!-- mlops-actions:pr-validate -->\n")
    _assert_verdict_failures_and_gated_first(body.split("\n", 1)[1])
    _assert_whole_markdown(body)
    # the summary was cut too, so the comment must not send readers there
    assert f"the JSON report of [this run]({RUN})" in body
    assert "in the job summary" not in body


def test_a_comment_cut_while_the_summary_is_whole_points_to_the_summary():
    markdown = render_markdown(_big(2_000))
    assert len(markdown) > MAX_BODY
    assert utf8_bytes(markdown) < SUMMARY_LIMIT_BYTES
    body = comment_body(markdown, ".", RUN)
    assert len(body) <= MAX_BODY
    assert f"The full report is in the job summary of [this run]({RUN})" in body
    assert fit_summary(markdown, None) == markdown  # which is indeed whole


def test_cuts_fall_between_whole_blocks_never_inside_a_fence_or_details():
    chart = Block(
        "the plots", head=("", "<details><summary>plots</summary>", "", "```mermaid", *["x"] * 500, "```", "</details>")
    )
    table = Block("rows", head=("| a |", "| --- |"), items=tuple(f"| {i} |" for i in range(100)), essential_items=2)
    markdown = Markdown([Block("the verdict", head=("## verdict", ""), essential=True), table, chart])
    text = fit(markdown, 600, len, "a test limit", "report.json")
    assert len(text) <= 600
    assert text.startswith("## verdict\n\n| a |\n| --- |\n| 0 |\n| 1 |")
    assert "```" not in text
    assert "<details>" not in text
    assert "left out" in text
    assert "of 100 rows; the plots" in text
    _assert_whole_markdown(text, columns=1)


def test_plain_markdown_is_cut_by_lines_keeping_fences_and_details_whole():
    markdown = (
        "# title\n" + "```\n" + "code\n" * 200 + "```\n" + "<details>\n" + "x\n" * 50 + "</details>\n" + "line\n" * 100
    )
    text = fit(markdown, 600, len, "a test limit", "report.json")
    assert len(text) <= 600
    assert text.startswith("# title\n")
    _assert_whole_markdown(text)
