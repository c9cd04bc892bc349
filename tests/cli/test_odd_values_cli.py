"""The real `ci-helpers gate` on metrics files holding null, NaN, ±inf, strings and booleans, and
on one so large that its job summary would pass GitHub's 1 MiB limit."""

from __future__ import annotations

import json

from tests.support.run import ci_helpers, github_env, read_outputs

ODD_METRICS = (
    '{"metrics": {"r2": null, "rmse": 0.31, "nested": {"auc": 0.8}}, "loss": NaN, "up": Infinity, '
    '"down": -Infinity, "model": "random forest", "converged": true, "diverged": false}'
)
KEYS = {"metrics.r2", "metrics.rmse", "metrics.nested.auc", "loss", "up", "down", "model", "converged", "diverged"}


def test_a_threshold_on_a_null_metric_fails_naming_the_value_and_every_key_is_reported(mini_repo, tmp_path):
    (mini_repo / "odd.json").write_text(ODD_METRICS)
    report = tmp_path / "out" / "report.json"
    env = github_env(tmp_path / "gh")
    result = ci_helpers(
        "gate",
        "--repo",
        str(mini_repo),
        "--metrics-file",
        "odd.json",
        "--threshold",
        "metrics.r2>=0.5",
        "--threshold",
        "metrics.rmse<=0.5",
        "--report-json",
        str(report),
        cwd=mini_repo,
        env=env,
    )
    assert result.code == 1, result.output  # not 2: the metric is there, its value is not a number
    assert "metrics.r2 is null, not a number" in result.stdout  # the ::error:: annotation
    assert "loss is NaN, not a finite number" in result.stdout  # an ungated NaN fails, and says so
    assert "fix the metric name" not in result.output

    summary = (tmp_path / "gh" / "summary").read_text()
    for key in KEYS:
        assert f"| `{key}` |" in summary
    rows = {line.split(" | ")[0]: line for line in summary.splitlines() if line.startswith("| `")}
    assert "| `null` |" in rows["| `metrics.r2`"]
    assert "❌" in rows["| `metrics.r2`"]
    assert "| NaN |" in rows["| `loss`"]
    assert "| Infinity |" in rows["| `up`"]
    assert "| -Infinity |" in rows["| `down`"]
    assert '`"random forest"`' in rows["| `model`"]
    assert "`true`" in rows["| `converged`"]
    assert "- metrics.r2 is null, not a number" in summary

    data = json.loads(report.read_text())  # strict JSON
    assert set(data["metrics"]) == KEYS
    assert data["metrics"]["metrics.r2"] is None
    assert data["metrics"]["loss"] == "NaN"
    assert data["metrics"]["up"] == "Infinity"
    assert data["metrics"]["down"] == "-Infinity"
    assert data["metrics"]["model"] == "random forest"
    assert data["metrics"]["diverged"] is False
    outputs = read_outputs(tmp_path / "gh" / "output")
    assert json.loads(outputs["metrics"]) == data["metrics"]


def test_a_summary_that_would_pass_1_mib_is_cut_with_a_note_and_the_report_json_stays_whole(mini_repo, tmp_path):
    count = 40_000
    metrics = {"features": {f"importance_of_column_number_{i:06d}": i / count for i in range(count)}}
    metrics["eval"] = {"accuracy": 0.4, "f1": 0.9}
    (mini_repo / "many.json").write_text(json.dumps(metrics))
    report = tmp_path / "out" / "report.json"
    env = github_env(tmp_path / "gh")
    result = ci_helpers(
        "gate",
        "--repo",
        str(mini_repo),
        "--metrics-file",
        "many.json",
        "--threshold",
        "eval.accuracy>=0.8",
        "--threshold",
        "eval.f1>=0.8",
        "--report-json",
        str(report),
        cwd=mini_repo,
        env=env,
    )
    assert result.code == 1, result.output
    summary_bytes = (tmp_path / "gh" / "summary").read_bytes()
    assert len(summary_bytes) < 1024 * 1024
    summary = summary_bytes.decode()
    lines = summary.splitlines()
    assert lines[0].startswith("## Model validation for ")
    assert "❌ failed: metrics gate" in lines[0]
    assert lines[2] == "Failing checks:"
    assert lines[4] == "- eval.accuracy = 0.4 does not meet &gt;= 0.8"
    rows = [line for line in lines if line.startswith("| `")]
    assert rows[0].startswith("| `eval.accuracy` |")  # the gated metrics first
    assert rows[1].startswith("| `eval.f1` |")
    assert 1000 < len(rows) < count
    note = summary.rstrip().splitlines()[-1]
    assert f"left out {count + 2 - len(rows)} of {count + 2} metrics rows" in note
    assert f"The full report is in the JSON report `{report}`" in note
    assert summary.count("```") % 2 == 0

    data = json.loads(report.read_text())
    assert len(data["metrics"]) == count + 2
    assert data["metrics"]["features.importance_of_column_number_039999"] == 39_999 / count
