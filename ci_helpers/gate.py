"""The metrics gate: absolute thresholds and allowed regression against a baseline."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError
from .metrics import MetricValue, finite_number, is_finite, value_problem

OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_THRESHOLD = re.compile(r"^\s*(?P<metric>[^\s<>=]+)\s*(?P<op>>=|<=|>|<)\s*(?P<value>\S+)\s*$")
_REGRESSION = re.compile(
    r"^\s*(?P<metric>[^\s<>=]+)\s*=\s*(?P<delta>[^\s%:]+)(?P<percent>%)?\s*(?::\s*(?P<direction>higher|lower))?\s*$"
)
# Metric names where smaller is better, used only when no operator or explicit direction says.
_LOWER_IS_BETTER = re.compile(r"(rmse|mse|mae|mape|loss|error|latency)$", re.IGNORECASE)
THRESHOLD_HELP = "expected METRIC OP VALUE with OP one of >= <= > <, e.g. metrics.r2_score>=0.75"
REGRESSION_HELP = "expected METRIC=DELTA or METRIC=P% (optionally :higher or :lower), e.g. metrics.rmse=5%"


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: str
    value: float

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">=", ">")


@dataclass(frozen=True)
class RegressionRule:
    metric: str
    delta: float
    relative: bool
    direction: str | None  # "higher" or "lower"; None means infer


@dataclass(frozen=True)
class Check:
    """One comparison of the gate, as the report shows it."""

    metric: str
    kind: str  # "threshold" or "regression"
    op: str
    threshold: float | None
    value: MetricValue  # as the metrics file holds it: null, NaN, a string... fail the check
    baseline: MetricValue  # None also when there is no baseline value; `problem` tells them apart
    passed: bool
    detail: str = ""
    problem: str = ""  # why the rule could not be checked, naming the value ('metrics.r2 is null, not a number')


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: tuple[Check, ...]

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)


def parse_threshold(text: str) -> Threshold:
    match = _THRESHOLD.match(text or "")
    if not match:
        raise ConfigError(f"malformed threshold '{text}': {THRESHOLD_HELP}")
    try:
        value = float(match["value"])
    except ValueError:
        raise ConfigError(
            f"malformed threshold '{text}': '{match['value']}' is not a number; {THRESHOLD_HELP}"
        ) from None
    if not is_finite(value):
        raise ConfigError(f"malformed threshold '{text}': the limit must be a finite number; {THRESHOLD_HELP}")
    return Threshold(match["metric"], match["op"], value)


def parse_regression(text: str) -> RegressionRule:
    match = _REGRESSION.match(text or "")
    if not match:
        raise ConfigError(f"malformed max-regression '{text}': {REGRESSION_HELP}")
    try:
        delta = float(match["delta"])
    except ValueError:
        raise ConfigError(
            f"malformed max-regression '{text}': '{match['delta']}' is not a number; {REGRESSION_HELP}"
        ) from None
    if not is_finite(delta) or delta < 0:
        raise ConfigError(
            f"malformed max-regression '{text}': the allowance must be a finite number >= 0; {REGRESSION_HELP}"
        )
    return RegressionRule(match["metric"], delta, bool(match["percent"]), match["direction"])


def parse_gate_rules(
    thresholds: tuple[str, ...] | list[str], regressions: tuple[str, ...] | list[str]
) -> tuple[tuple[Threshold, ...], tuple[RegressionRule, ...]]:
    """Parse every rule before anything runs, so that a malformed one changes nothing."""
    return tuple(parse_threshold(t) for t in thresholds), tuple(parse_regression(r) for r in regressions)


def _direction(rule: RegressionRule, thresholds: list[Threshold]) -> str:
    if rule.direction:
        return rule.direction
    for threshold in thresholds:
        if threshold.metric == rule.metric:
            return "higher" if threshold.higher_is_better else "lower"
    return "lower" if _LOWER_IS_BETTER.search(rule.metric) else "higher"


def _require_metric(metrics: Mapping[str, MetricValue], name: str) -> MetricValue:
    if name not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        raise ConfigError(f"no metrics file has a metric '{name}' (found: {known}); fix the metric name in the gate")
    return metrics[name]


def _threshold_check(threshold: Threshold, value: MetricValue) -> Check:
    number = finite_number(value)
    passed = number is not None and OPERATORS[threshold.op](number, threshold.value)
    problem = value_problem(threshold.metric, value) or ""
    return Check(threshold.metric, "threshold", threshold.op, threshold.value, value, None, passed, "", problem)


MISSING_BASELINE = "no baseline value"


def _regression_check(
    rule: RegressionRule,
    direction: str,
    value: MetricValue,
    baseline: Mapping[str, MetricValue] | None,
    allow_missing_baseline: bool,
) -> Check:
    """A baseline without the metric is the missing-baseline case (`allow_missing_baseline` may let
    it pass); a baseline that holds it as something other than a finite number fails the rule,
    allowed or not: the base branch recorded a broken value, and nothing can be compared with it."""
    op = ">=" if direction == "higher" else "<="
    number = finite_number(value)
    problem = value_problem(rule.metric, value) or ""
    if baseline is None or rule.metric not in baseline:
        # Fail closed: a regression rule that cannot compare must not pass, unless the user said so.
        passed = allow_missing_baseline and number is not None
        return Check(rule.metric, "regression", op, None, value, None, passed, MISSING_BASELINE, problem)
    base_value = baseline[rule.metric]
    base = finite_number(base_value)
    if base is None:
        base_problem = value_problem(rule.metric, base_value, "the baseline's ") or ""
        problem = "; ".join(filter(None, (problem, f"{base_problem}: the regression rule cannot be checked")))
        return Check(rule.metric, "regression", op, None, value, base_value, False, "", problem)
    allowance = abs(base) * rule.delta / 100 if rule.relative else rule.delta
    limit = base - allowance if direction == "higher" else base + allowance
    passed = number is not None and OPERATORS[op](number, limit)
    allowed = f"{rule.delta:g}%" if rule.relative else f"{rule.delta:g}"
    return Check(
        rule.metric, "regression", op, limit, value, base, passed, f"may regress by {allowed} from baseline", problem
    )


def evaluate_gate(
    metrics: Mapping[str, MetricValue],
    thresholds: list[Threshold],
    regressions: list[RegressionRule],
    baseline: Mapping[str, MetricValue] | None,
    allow_missing_baseline: bool = False,
) -> GateResult:
    """Compare metrics with every rule; a metric no file has is a configuration error.

    A regression rule whose baseline value is missing fails, unless `allow_missing_baseline`
    (a project's first PR has nothing to compare with)."""
    checks = [_threshold_check(t, _require_metric(metrics, t.metric)) for t in thresholds]
    for rule in regressions:
        value = _require_metric(metrics, rule.metric)
        checks.append(_regression_check(rule, _direction(rule, thresholds), value, baseline, allow_missing_baseline))
    # Numbers no rule covers still fail on NaN/inf: a broken evaluation must not pass. Null,
    # strings and booleans fail only where a rule gates them (they are often labels, not scores).
    covered = {check.metric for check in checks}
    for name, value in sorted(metrics.items()):
        if name not in covered and isinstance(value, float) and not is_finite(value):
            problem = value_problem(name, value) or ""
            checks.append(Check(name, "finite", "", None, value, None, False, "metric is not a finite number", problem))
    return GateResult(all(check.passed for check in checks), tuple(checks))


def delta(value: MetricValue, baseline: MetricValue) -> float | None:
    """value - baseline, when both are finite numbers."""
    now, then = finite_number(value), finite_number(baseline)
    return None if now is None or then is None else now - then
