"""Metric and param keys that MLflow accepts.

MLflow refuses (with an exception, failing the whole batch) a metric or param key that:
- holds a character other than alphanumerics, `_ - . / space` and, except on Windows, `:`
  (mlflow.utils.validation.validate_param_and_metric_name);
- does not survive `posixpath.normpath` unchanged, or is `.`, starts with `..` or `/`
  (`path_not_unique`: keys become file names in some stores), among them the empty key;
- is longer than 250 characters (MAX_ENTITY_KEY_LENGTH).

A real project's `feature_importance.ocean_proximity_<1H OCEAN` is such a key. `sanitise_keys`
turns each key into one MLflow takes, keeps the keys unique, and says which keys changed so that
the original names can be recorded next to the run.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from typing import TypeVar

MAX_KEY_LENGTH = 250  # MLflow's MAX_ENTITY_KEY_LENGTH, for metrics and params alike
# \w is Unicode-aware, as in MLflow's own pattern.
_ALLOWED = re.compile(r"^[/\w.\- ]*$") if os.name == "nt" else re.compile(r"^[/\w.\- :]*$")
_BAD_CHARACTER = re.compile(r"[^/\w.\- ]") if os.name == "nt" else re.compile(r"[^/\w.\- :]")

V = TypeVar("V")


def is_valid_key(key: str) -> bool:
    """Whether MLflow accepts `key` as a metric or param key (the checks of its own validation)."""
    if not key or len(key) > MAX_KEY_LENGTH or not _ALLOWED.match(key):
        return False
    normal = posixpath.normpath(key)
    return normal == key and normal != "." and not normal.startswith("..") and not normal.startswith("/")


def safe_key(key: str, limit: int = MAX_KEY_LENGTH) -> str:
    """`key` with every character MLflow refuses replaced by `_`, each path segment MLflow would
    normalise away made explicit (`a//b` -> `a/_/b`, `/a` -> `_/a`, `a/../b` -> `a/__/b`), cut to `limit`."""
    text = _BAD_CHARACTER.sub("_", key)
    segments = text.split("/")
    text = "/".join("_" * max(1, len(segment)) if segment in ("", ".", "..") else segment for segment in segments)
    if text.startswith(".."):
        text = "_" + text[1:]
    text = text[:limit].rstrip("/")
    while text and not is_valid_key(text):  # the cut ended on a `.` or `..` segment
        text = text[:-1].rstrip("/")
    return text or "_"


def sanitise_keys(values: Mapping[str, V]) -> tuple[dict[str, V], dict[str, str]]:
    """(the values under keys MLflow accepts, {safe key: original key} for every key that changed).

    Keys MLflow already accepts are kept as they are; each other key gets its `safe_key`, suffixed
    `_2`, `_3`... when that is taken, so that no two values share a key. Order is kept.
    """
    taken = {key for key in values if is_valid_key(key)}
    safe: dict[str, V] = {}
    renamed: dict[str, str] = {}
    for key, value in values.items():
        if is_valid_key(key):
            safe[key] = value
            continue
        candidate, number = safe_key(key), 1
        while candidate in taken:
            number += 1
            suffix = f"_{number}"
            candidate = safe_key(key, MAX_KEY_LENGTH - len(suffix)) + suffix
        taken.add(candidate)
        safe[candidate] = value
        renamed[candidate] = key
    return safe, renamed


def sanitise_metric_keys(metrics: Mapping[str, float]) -> tuple[dict[str, float], dict[str, str]]:
    """(the metrics under keys MLflow accepts, {safe key: original key} for the keys that changed)."""
    return sanitise_keys(metrics)
