"""Values in metrics files that are not finite numbers: read as written, shown as written, and a
gate rule on one fails naming it."""

import json
import math

import pytest

from ci_helpers.adapters.tracking import split_loggable
from ci_helpers.baseline import Baseline
from ci_helpers.evaluation import EvalReport
from ci_helpers.gate import evaluate_gate, parse_regression, parse_threshold
from ci_helpers.metrics import parse_metrics_text
from ci_helpers.provenance import GitContext
from ci_helpers.report.pr import failure_messages, render_markdown, report_dict, report_json, step_outputs
from ci_helpers.results import PRValidationResult

JSON_TEXT = json.dumps(
    {
        "metrics": {"r2": None, "rmse": 0.31, "nested": {"deep": {"auc": 0.8}}},
        "nan": float("nan"),
        "pos": float("inf"),
        "neg": float("-inf"),
        "label": "a string",
        "converged": True,
        "diverged": False,
        "sizes": [1, 2],
        "empty": {},
    }
)  # json.dumps writes NaN, Infinity, -Infinity, as pandas and Python's json do
YAML_TEXT = """
metrics:
  r2: null
  rmse: 0.31
  nested: {deep: {auc: 0.8}}
nan: .nan
pos: .inf
neg: -.inf
label: a string
converged: true
diverged: false
sizes: [1, 2]
empty: {}
"""


@pytest.mark.parametrize(("text", "name"), [(JSON_TEXT, "m.json"), (YAML_TEXT, "m.yaml")])
def test_every_value_of_a_json_or_yaml_metrics_file_is_read_as_written(text, name):
    values = parse_metrics_text(text, name)
    assert set(values) == {
        "metrics.r2",
        "metrics.rmse",
        "metrics.nested.deep.auc",
        "nan",
        "pos",
        "neg",
        "label",
        "converged",
        "diverged",
        "sizes",
        "empty",
    }
    assert values["metrics.r2"] is None
    assert values["metrics.rmse"] == 0.31
    assert values["metrics.nested.deep.auc"] == 0.8
    assert math.isnan(values["nan"])
    assert values["pos"] == math.inf
    assert values["neg"] == -math.inf
    assert values["label"] == "a string"
    assert values["converged"] is True
    assert values["diverged"] is False
    assert values["sizes"] == [1.0, 2.0]
    assert values["empty"] == {}


def test_strings_that_spell_non_finite_numbers_are_those_numbers():
    values = parse_metrics_text('{"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": "0.9"}', "m.json")
    assert math.isnan(values["a"])
    assert values["b"] == math.inf
    assert values["c"] == -math.inf
    assert values["d"] == "0.9"  # a number in quotes is a string, as DVC reads it


ODD = [
    (None, "metrics.r2 is null, not a number"),
    (math.nan, "metrics.r2 is NaN, not a finite number"),
    (math.inf, "metrics.r2 is Infinity, not a finite number"),
    (-math.inf, "metrics.r2 is -Infinity, not a finite number"),
    ("a string", 'metrics.r2 is the string "a string", not a number'),
    (True, "metrics.r2 is true (a boolean), not a number"),
    (False, "metrics.r2 is false (a boolean), not a number"),
    ([1.0], "metrics.r2 is a list ([1.0]), not a number"),
]


@pytest.mark.parametrize(("value", "message"), ODD)
def test_a_threshold_on_a_value_that_is_not_a_finite_number_fails_naming_it(value, message):
    for rule in ("metrics.r2>=0.5", "metrics.r2<=0.5"):
        gate = evaluate_gate({"metrics.r2": value}, [parse_threshold(rule)], [], None)
        assert not gate.passed
        assert gate.failures[0].problem == message


@pytest.mark.parametrize(("value", "message"), ODD)
def test_a_regression_rule_on_such_a_value_fails_naming_it(value, message):
    gate = evaluate_gate({"metrics.r2": value}, [], [parse_regression("metrics.r2=5%")], {"metrics.r2": 0.9})
    assert not gate.passed
    assert gate.failures[0].problem == message


@pytest.mark.parametrize(("value", "message"), ODD)
def test_a_baseline_value_that_is_not_a_finite_number_fails_the_rule_even_when_missing_ones_are_allowed(value, message):
    baseline = {"metrics.r2": value}
    for allow in (False, True):
        gate = evaluate_gate({"metrics.r2": 0.9}, [], [parse_regression("metrics.r2=5%")], baseline, allow)
        assert not gate.passed
        assert gate.failures[0].problem == f"the baseline's {message}: the regression rule cannot be checked"


def test_a_baseline_without_the_metric_is_still_the_missing_baseline_case():
    rule = [parse_regression("metrics.r2=5%")]
    assert not evaluate_gate({"metrics.r2": 0.9}, [], rule, {"other": 1.0}).passed
    assert evaluate_gate({"metrics.r2": 0.9}, [], rule, {"other": 1.0}, allow_missing_baseline=True).passed


def test_ungated_labels_pass_and_ungated_non_finite_numbers_fail_naming_them():
    metrics = {"r2": 0.9, "label": "rf", "note": None, "ok": True}
    assert evaluate_gate(metrics, [parse_threshold("r2>=0.5")], [], None).passed
    gate = evaluate_gate({**metrics, "loss": math.nan}, [parse_threshold("r2>=0.5")], [], None)
    assert [check.problem for check in gate.failures] == ["loss is NaN, not a finite number"]


def _result(metrics, baseline=None, thresholds=("metrics.r2>=0.5",)) -> PRValidationResult:
    base = Baseline("main", "a" * 40, baseline or {})
    gate = evaluate_gate(metrics, [parse_threshold(t) for t in thresholds], [], base.metrics)
    return PRValidationResult(
        gate.passed,
        "passed" if gate.passed else "gate-failed",
        GitContext("b" * 40, "feature", 3),
        (),
        EvalReport(metrics, "files:metrics.json"),
        base,
        gate,
    )


def test_the_report_shows_every_value_as_written():
    metrics = parse_metrics_text(JSON_TEXT, "m.json")
    result = _result(metrics, baseline={"metrics.rmse": None, "label": "old"})
    summary = render_markdown(result)
    rows = {line.split(" | ")[0].strip("| `"): line for line in summary.splitlines() if line.startswith("| `")}
    assert set(rows) == set(metrics)  # no key dropped
    assert "| null |" in rows["metrics.r2"].replace("`", "")
    assert "❌" in rows["metrics.r2"]
    assert "| NaN |" in rows["nan"]
    assert "| Infinity |" in rows["pos"]
    assert "| -Infinity |" in rows["neg"]
    assert '`"a string"`' in rows["label"]
    assert '`"old"`' in rows["label"]
    assert "`true`" in rows["converged"]
    assert "`false`" in rows["diverged"]
    assert "`[1.0, 2.0]`" in rows["sizes"]
    assert "`{}`" in rows["empty"]
    assert "`null` | 0.31 |" in rows["metrics.rmse"]  # the baseline's null, shown as null
    # the failed check is said under the verdict and in the annotations, naming the value
    assert "- metrics.r2 is null, not a number" in summary.split("| metric |")[0]
    assert "metrics.r2 is null, not a number" in failure_messages(result)

    data = json.loads(report_json(result))  # strict JSON: no NaN token
    assert data["metrics"]["metrics.r2"] is None
    assert data["metrics"]["nan"] == "NaN"
    assert data["metrics"]["pos"] == "Infinity"
    assert data["metrics"]["neg"] == "-Infinity"
    assert data["metrics"]["label"] == "a string"
    assert data["metrics"]["converged"] is True
    assert data["metrics"]["diverged"] is False
    assert data["metrics"]["sizes"] == [1.0, 2.0]
    assert data["metrics"]["empty"] == {}
    assert set(data["metrics"]) == set(metrics)
    failed = next(c for c in data["checks"] if c["metric"] == "metrics.r2")
    assert failed["value"] is None
    assert failed["problem"] == "metrics.r2 is null, not a number"
    assert step_outputs(result)["metrics"] == report_dict(result)["metrics"]


def test_values_mlflow_cannot_log_are_kept_apart_as_json():
    loggable, other = split_loggable({"a": 0.5, "b": None, "c": math.nan, "d": "x", "e": True, "f": -math.inf})
    assert loggable == {"a": 0.5}
    assert other == {"b": None, "c": "NaN", "d": "x", "e": True, "f": "-Infinity"}
    json.dumps(other, allow_nan=False)
