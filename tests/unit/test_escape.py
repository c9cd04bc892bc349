"""User-derived names cannot add summary rows, markup, or workflow commands."""

from __future__ import annotations

from ci_helpers.baseline import Baseline
from ci_helpers.evaluation import EvalReport
from ci_helpers.gate import evaluate_gate, parse_threshold
from ci_helpers.provenance import GitContext
from ci_helpers.report.escape import code, text
from ci_helpers.report.pr import render_markdown
from ci_helpers.results import PRValidationResult
from ci_helpers.sanity_checks import SanityCheck

HOSTILE = ["acc\n::error::forged", "a|b", "tick`s", "<img src=x onerror=alert(1)>", "plain.metric"]


def _result(branch: str) -> PRValidationResult:
    metrics = dict.fromkeys(HOSTILE, 0.5)
    gate = evaluate_gate(metrics, [parse_threshold("plain.metric>=0.1")], [], None)
    return PRValidationResult(
        gate.passed,
        "passed",
        GitContext("b" * 40, branch, None),
        (SanityCheck("pushed", True, (), "x"),),
        EvalReport(metrics, "recorded:m|x.json"),
        Baseline("main", "a" * 40, {}),
        gate,
    )


def test_hostile_metric_names_give_one_row_each_and_no_command():
    markdown = render_markdown(_result("feature"))
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(HOSTILE)  # the header, then one row per metric
    assert all(row.count("|") == 7 for row in rows)  # six cells each: no cell was split
    assert not any(line.lstrip().startswith("::") for line in markdown.splitlines())
    assert "<img" not in markdown
    assert "`plain.metric`" in markdown  # safe names keep their plain code span


def test_hostile_branch_names_in_the_heading():
    for branch in ("x<img>", "tick`<img>"):
        heading = render_markdown(_result(branch)).splitlines()[0]
        assert "<img>" not in heading
        assert "&lt;img&gt;" in heading


def test_code_and_text():
    assert code("a.b") == "`a.b`"
    assert code("a|b`c") == "<code>a&#124;b&#96;c</code>"
    assert code("x\n::error::y") == "`x ::error::y`"  # one line: it cannot start a command
    assert text("*bold* [link](x) <b>") == r"\*bold\* \[link\]\(x\) &lt;b&gt;"
