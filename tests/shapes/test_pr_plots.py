"""The plots in the PR report, on the `get_started` shape: its dvc.yaml declares top-level plots
Precision-Recall and ROC over eval/plots/sklearn/{prc,roc}/{train,test}.json inside the cached out
eval/. `ci-helpers pr-validate` on a fresh CI clone (empty DVC cache) draws each as a Mermaid
xychart-beta block in the job summary, read through DVC's API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.run import ci_helpers, github_env, read_report

pytestmark = pytest.mark.integration


def test_the_summary_draws_get_started_plots_as_mermaid_charts(shape_project):
    project = shape_project("get_started")
    clone = project.clone("ci")
    runner = github_env(project.root / "runner")
    report_path = project.root / "report.json"
    result = ci_helpers(
        "pr-validate",
        "--no-track",
        "--report-json",
        str(report_path),
        cwd=project.project_dir(clone),
        env={**project.env, **runner},
        timeout=240,
    )
    assert result.code == 0, result.output[-4000:]
    summary = Path(runner["GITHUB_STEP_SUMMARY"]).read_text()

    blocks = re.findall(r"```mermaid\n(.*?)\n```", summary, re.S)
    assert len(blocks) == 2, summary
    # each block opens with the palette directive (readable line colours), then the chart
    directive = '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "#0969da, #cf222e"}}}}%%'
    assert [block.split("\n")[0] for block in blocks] == [directive, directive]
    prc, roc = (block.split("\n")[1:] for block in blocks)
    assert prc[:5] == [
        "xychart-beta",
        '    title "Precision-Recall"',
        '    x-axis "recall" 0 --> 1',
        '    y-axis "precision"',
        prc[4],
    ]
    assert roc[1:4] == ['    title "ROC"', '    x-axis "fpr" 0 --> 1', '    y-axis "tpr"']
    for block in (prc, roc):
        lines = block[4:]
        assert [line.split(" [")[0] for line in lines] == ['    line "train.json"', '    line "test.json"']
        for line in lines:  # 5 points per curve in the shape, evenly spaced recall/fpr
            assert len(line.split(" [")[1].rstrip("]").split(", ")) == 5
    # evaluate.py's curves: precision = 1 - recall^k and tpr = fpr^k
    assert all(line.endswith(", 0]") and " [1, " in line for line in prc[4:])
    assert all(line.endswith(", 1]") and " [0, " in line for line in roc[4:])
    assert "Not available" not in summary
    assert "⚠️" not in summary.split("### Plots")[1]

    report = read_report(report_path)
    assert [(p["id"], p["kind"], [s["name"] for s in p["series"]]) for p in report["plots"]] == [
        ("Precision-Recall", "chart", ["train.json", "test.json"]),
        ("ROC", "chart", ["train.json", "test.json"]),
    ]
    assert report["plots_warning"] is None
