import math

import pytest

from ci_helpers.errors import ConfigError
from ci_helpers.gate import evaluate_gate, parse_regression, parse_threshold


@pytest.mark.parametrize("text", ["r2>>0.7", "r2>=abc", "", "r2", ">=0.7", "r2=>0.7", "r2>=nan", "r2 >= 0.7 0.8"])
def test_malformed_thresholds_are_config_errors_that_show_the_syntax(text):
    with pytest.raises(ConfigError) as error:
        parse_threshold(text)
    assert "malformed threshold" in str(error.value)
    assert "METRIC OP VALUE" in str(error.value)


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("metrics.r2_score>=0.75", ">=", 0.75),
        (" rmse < 1e-1 ", "<", 0.1),
        ("a.b.c<=-3", "<=", -3.0),
        ("acc>0", ">", 0.0),
    ],
)
def test_thresholds_parse(text, op, value):
    parsed = parse_threshold(text)
    assert (parsed.op, parsed.value) == (op, value)


@pytest.mark.parametrize("text", ["rmse", "rmse=", "rmse=abc", "rmse=-1", "rmse=5%%", "=5", "rmse=5:sideways"])
def test_malformed_regressions(text):
    with pytest.raises(ConfigError, match="malformed max-regression"):
        parse_regression(text)


def test_threshold_pass_and_fail():
    gate = evaluate_gate({"r2": 0.8, "rmse": 0.5}, [parse_threshold("r2>=0.75"), parse_threshold("rmse<0.5")], [], None)
    assert not gate.passed
    assert [c.passed for c in gate.checks] == [True, False]
    assert gate.failures[0].metric == "rmse"


def test_absolute_regression_direction_from_threshold_operator():
    thresholds = [parse_threshold("r2>=0.5")]
    ok = evaluate_gate({"r2": 0.79}, thresholds, [parse_regression("r2=0.02")], {"r2": 0.80})
    bad = evaluate_gate({"r2": 0.77}, thresholds, [parse_regression("r2=0.02")], {"r2": 0.80})
    assert ok.passed
    assert not bad.passed
    assert bad.checks[1].threshold == pytest.approx(0.78)


def test_relative_regression_lower_is_better():
    rule = [parse_regression("loss=10%")]
    assert evaluate_gate({"loss": 1.09}, [], rule, {"loss": 1.0}).passed
    assert not evaluate_gate({"loss": 1.11}, [], rule, {"loss": 1.0}).passed


def test_explicit_direction_beats_the_name():
    rule = [parse_regression("error_budget=0.1:higher")]
    assert not evaluate_gate({"error_budget": 0.5}, [], rule, {"error_budget": 0.7}).passed


def test_regression_without_baseline_fails_closed():
    gate = evaluate_gate({"r2": 0.7}, [], [parse_regression("r2=0.01")], None)
    assert not gate.passed
    assert gate.checks[0].detail == "no baseline value"
    assert not evaluate_gate({"r2": 0.7}, [], [parse_regression("r2=0.01")], {"other": 1.0}).passed


def test_a_missing_baseline_passes_only_when_allowed():
    gate = evaluate_gate({"r2": 0.7}, [], [parse_regression("r2=0.01")], None, allow_missing_baseline=True)
    assert gate.passed
    assert gate.checks[0].detail == "no baseline value"


def test_missing_metric_is_a_config_error_naming_what_exists():
    with pytest.raises(ConfigError, match=r"no metrics file has a metric 'r2'.*metrics\.r2_score"):
        evaluate_gate({"metrics.r2_score": 0.9}, [parse_threshold("r2>=0.5")], [], None)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_or_infinite_metric_fails(bad):
    assert not evaluate_gate({"r2": bad}, [parse_threshold("r2>=0.5")], [], None).passed
    assert not evaluate_gate({"r2": bad}, [parse_threshold("r2<=0.5")], [], None).passed
    # even when no rule names it
    assert not evaluate_gate({"r2": 0.9, "other": bad}, [parse_threshold("r2>=0.5")], [], None).passed
