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
    assert data["metrics"]["metrics.r2_score"] == "NaN"
    assert {"metric", "op", "threshold", "value", "passed"} <= set(data["checks"][0])


def _with_sources(params_diff=None) -> PRValidationResult:
    from dataclasses import replace

    result = _result(0.92)
    baseline = Baseline(
        "origin/main",
        "c" * 40,
        {"metrics.r2_score": 0.9},
        ("metrics.json", "eval/scores.json"),
        ("metrics.json", "eval/scores.json"),
        {"metrics.json": "git", "eval/scores.json": "dvc"},
    )
    return replace(result, baseline=baseline, params_diff=params_diff)


def test_summary_names_the_baseline_ref_commit_and_each_file_source():
    text = render_markdown(_with_sources())
    assert (
        "baseline: `origin/main` (cccccccc): `metrics.json` from git, `eval/scores.json` from the DVC cache/remote"
        in text
    )
    data = json.loads(report_json(_with_sources()))
    assert data["baseline_source"]["commit"] == "c" * 40
    assert data["baseline_source"]["sources"] == {"metrics.json": "git", "eval/scores.json": "dvc"}


def test_params_diff_in_summary_and_json():
    diff = {"params.yaml": {"train.n_estimators": {"old": 50, "new": 90}, "train.note": {"old": None, "new": "x"}}}
    text = render_markdown(_with_sources(diff))
    assert "Params changed since `origin/main`:" in text
    assert "| `params.yaml` | `train.n_estimators` | `50` | `90` |" in text
    assert "| `params.yaml` | `train.note` | — | `x` |" in text
    assert json.loads(report_json(_with_sources(diff)))["params_diff"] == diff
    assert "Params: unchanged since `origin/main`." in render_markdown(_with_sources({}))
    assert "Params" not in render_markdown(_with_sources(None))


def test_missing_cached_baseline_says_it_was_not_pushed():
    from ci_helpers.report.common import missing_baseline_text

    baseline = Baseline("main", "d" * 40, {}, ("eval/m.json", "m2.json"), (), {}, ("eval/m.json",))
    (check,) = evaluate_gate({"acc": 0.5}, [], [parse_regression("acc=0.01")], {}).checks
    text = missing_baseline_text(check, baseline)
    assert "m2.json does not exist at `main` (dddddddd)" in text
    assert "eval/m.json at `main` (dddddddd) is neither in the DVC cache nor on the remote" in text
    assert "dvc push" in text
    assert "--allow-missing-baseline" in text


def test_the_push_checks_detail_is_in_the_summary_the_json_and_the_message():
    from dataclasses import replace

    detail = "data/train: unchanged since `main`, verified there; 1 object asked (1 existence call)"
    passed = replace(_result(0.92), sanity=(SanityCheck("pushed", True, (), "x", detail),))
    failed = replace(
        passed,
        passed=False,
        verdict="not-pushed",
        sanity=(SanityCheck("pushed", False, ("model is not on remote 'storage'",), "run `dvc push`", detail),),
    )

    assert "Pushed check: data/train: unchanged since \\`main\\`, verified there" in render_markdown(passed)
    assert json.loads(report_json(passed))["sanity"][0]["detail"] == detail
    assert "Checked: data/train: unchanged since" in render_markdown(failed)
    assert failure_messages(failed) == [f"pushed: model is not on remote 'storage' ({detail}). Fix: run `dvc push`"]
    assert SanityCheck("pushed", True, (), "x", detail).message == f"pushed: ok ({detail})"
