"""Read metrics files (JSON or YAML, nested) into flat `a.b.c` keys, as `dvc metrics show` prints them."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import yaml

from .errors import ConfigError

# A leaf of a metrics file as written: a number (NaN and ±inf included, ints as floats), or what
# else JSON/YAML can hold there: null, a string, a boolean, a list, an empty mapping. Every leaf is
# kept, so that the report shows each key; only finite numbers can pass a rule of the gate.
MetricValue = float | str | bool | None | list | dict
Metrics = dict[str, MetricValue]

# Strings that spell a non-finite number are read as that number: that is how our own report.json
# (and many writers) spell them, since JSON has no NaN or Infinity.
_NON_FINITE_SPELLINGS = {"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}


def metric_value(value: object) -> MetricValue:
    """A leaf as read from JSON/YAML (or read back from our own report JSON) as a MetricValue."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value) if value.strip().lower() in _NON_FINITE_SPELLINGS else value
    if isinstance(value, (list, tuple)):
        return [metric_value(item) if not isinstance(item, Mapping) else dict(item) for item in value]
    if isinstance(value, Mapping):
        return {}
    return str(value)  # YAML dates and other scalars: shown as written


def flatten(data: object, prefix: str = "") -> Metrics:
    """Every leaf of nested mappings, keyed with dots (an empty mapping below the top is a leaf too)."""
    flat: Metrics = {}
    if isinstance(data, Mapping) and (data or not prefix):
        for key, value in data.items():
            flat.update(flatten(value, f"{prefix}{key}."))
    elif prefix:
        flat[prefix.rstrip(".")] = metric_value(data)
    return flat


def finite_number(value: MetricValue) -> float | None:
    """`value` when it is a finite number (a boolean is not one), else None."""
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def spell(value: MetricValue) -> str:
    """How a value reads in the report and in messages: numbers as Python's repr, NaN, Infinity,
    -Infinity, null, true/false, a string as JSON (quoted), lists and mappings as compact JSON."""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else NON_FINITE_JSON[_non_finite_kind(value)]
    return json.dumps(json_value(value), ensure_ascii=False)


NON_FINITE_JSON = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _non_finite_kind(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def json_value(value: object) -> object:
    """`value` as JSON can hold it: NaN, Infinity and -Infinity become those strings (JSON has no
    such numbers); everything else is kept as it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return NON_FINITE_JSON[_non_finite_kind(value)]
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    return value


def value_problem(metric: str, value: MetricValue, whose: str = "") -> str | None:
    """Why `value` cannot be compared with a limit, as one line naming it ('metrics.r2 is null,
    not a number'); None when it is a finite number. `whose` names a baseline ('the baseline's ')."""
    if finite_number(value) is not None:
        return None
    if isinstance(value, float):
        what = f"{spell(value)}, not a finite number"
    elif isinstance(value, bool):
        what = f"{spell(value)} (a boolean), not a number"
    elif isinstance(value, str):
        what = f"the string {spell(value)}, not a number"
    elif isinstance(value, list):
        what = f"a list ({spell(value)[:80]}), not a number"
    elif isinstance(value, Mapping):
        what = "an empty mapping, not a number"
    else:
        what = f"{spell(value)}, not a number"
    return f"{whose}{metric} is {what}"


MAX_DEPTH = 100  # deeper nesting is not a metrics file; refused before Python's recursion limit


def _depth_ok(data: object) -> bool:
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, Mapping):
            stack += [(value, depth + 1) for value in item.values()]
        elif isinstance(item, list):
            stack += [(value, depth + 1) for value in item]
    return True


def parse_metrics_text(text: str, source: str) -> Metrics:
    try:
        data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except RecursionError:
        data = None
    except (ValueError, yaml.YAMLError) as error:
        first = " ".join(str(error).split())[:200]
        raise ConfigError(f"metrics file {source} is not valid JSON/YAML ({first}); fix or regenerate it") from None
    if data is None and text.strip() and text.lstrip()[:1] in "[{":
        raise ConfigError(
            f"metrics file {source} is nested more than {MAX_DEPTH} levels deep; write flat or shallow metrics"
        )
    if not _depth_ok(data):
        raise ConfigError(
            f"metrics file {source} is nested more than {MAX_DEPTH} levels deep; write flat or shallow metrics"
        )
    return flatten(data or {})


def decode_metrics_bytes(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"metrics file {source} is not UTF-8 text (byte {error.start}); write it as UTF-8 JSON or YAML"
        ) from None


def merge_metrics(per_file: Mapping[str, Metrics]) -> Metrics:
    """One flat mapping over several files; a key in two files is ambiguous."""
    merged: Metrics = {}
    origin: dict[str, str] = {}
    for source, values in per_file.items():
        for key, value in values.items():
            if key in merged:
                raise ConfigError(
                    f"metric '{key}' appears in both {origin[key]} and {source}; rename one of them so gates are unambiguous"
                )
            merged[key], origin[key] = value, source
    return merged


def read_metrics_files(repo: Path, files: list[str]) -> Metrics:
    """Metrics from files in the workspace; a missing file is a configuration error."""
    per_file = {}
    for name in files:
        path = repo / name
        if not path.is_file():
            raise ConfigError(
                f"metrics file {name} does not exist in {repo}; check --metrics-file or run the stage that writes it"
            )
        per_file[name] = parse_metrics_text(decode_metrics_bytes(path.read_bytes(), name), name)
    return merge_metrics(per_file)


def is_finite(value: MetricValue) -> bool:
    """Whether `value` is a finite number."""
    return finite_number(value) is not None
