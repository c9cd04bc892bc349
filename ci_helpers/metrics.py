"""Read metrics files (JSON or YAML, nested) into flat `a.b.c` keys, as `dvc metrics show` prints them."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import yaml

from .errors import ConfigError

Metrics = dict[str, float]


def flatten(data: object, prefix: str = "") -> Metrics:
    """Numeric leaves of nested mappings, keyed with dots; other leaves are ignored."""
    flat: Metrics = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            flat.update(flatten(value, f"{prefix}{key}."))
    elif (isinstance(data, (int, float)) and not isinstance(data, bool)) or (
        isinstance(data, str) and data.strip().lower() in {"nan", "inf", "-inf", "infinity", "-infinity"}
    ):
        flat[prefix.rstrip(".")] = float(data)
    return flat


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


def is_finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
