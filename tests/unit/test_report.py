import json

from ci_helpers.baseline import Baseline
from ci_helpers.evaluation import EvalReport, MetricMismatch
from ci_helpers.gate import evaluate_gate, parse_regression, parse_threshold
from ci_helpers.provenance import GitContext
from ci_helpers.report.pr import failure_messages, render_markdown, report_json
from ci_helpers.results import PRValidationResult
from ci_helpers.sanity_checks import SanityCheck


def _result(value: float) -> PRValidationResult:
    metrics = {"metrics.r2_score": value, "metrics.rmse": 0.3}
    baseline = Baseline("main", "a" * 40, {"metrics.r2_score": 0.9, "metrics.rmse": 0.31})
    gate = evaluate_gate(
        metrics, [parse_threshold("metrics.r2_score>=0.75")], [parse_regression("metrics.rmse=5%")], baseline.metrics
    )
    return PRValidationResult(
        gate.passed,
        "passed" if gate.passed else "gate-failed",
        GitContext("b" * 40, "feature", 12),
        (SanityCheck("pushed", True, (), "x"),),
        EvalReport(metrics, "stage:evaluate", {}, (MetricMismatch("metrics.rmse", 0.2, 0.3),)),
        baseline,
        gate,
    )


def test_summary_table_has_baseline_value_delta_threshold_and_status():
    text = render_markdown(_result(0.92))
    assert "## Model validation for PR #12: ✅ passed" in text
    assert "| `metrics.r2_score` | 0.9 | 0.92 | +0.02 | >= 0.75 | ✅ |" in text
    assert "<= 0.3255 (regression)" in text
    assert "`metrics.rmse`: committed 0.2, CI 0.3" in text


def test_failed_summary_and_annotations():
    result = _result(0.5)
    assert "❌" in render_markdown(result)
    assert failure_messages(result) == ["metrics.r2_score = 0.5 does not meet >= 0.75"]


def test_json_report_is_strict_json_even_with_nan():
    data = json.loads(report_json(_result(float("nan"))))
    assert data["passed"] is False
    assert data["metrics"]["metrics.r2_score"] == "nan"
    assert {"metric", "op", "threshold", "value", "passed"} <= set(data["checks"][0])
