"""What the MLflow Model Registry accepts as a model name and an alias, checked before any write."""

from __future__ import annotations

import re

from .errors import ConfigError

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,254}$")


def validate_model_name(name: str | None) -> str:
    if not name or not _MODEL_NAME.match(name):
        raise ConfigError(
            f"invalid model name '{name or ''}': use letters, digits, '.', '_' or '-' (max 128), e.g. housing-regressor"
        )
    return name


def validate_alias(alias: str | None, option: str = "--alias") -> str:
    if not alias or not _ALIAS.match(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ConfigError(
            f"invalid alias '{alias or ''}' for {option}: use letters, digits, '_' or '-', not 'latest' or 'v<N>', e.g. staging"
        )
    return alias


_STAGES = ("Staging", "Production", "Archived", "None")


def validate_stage(stage: str) -> str:
    """A legacy MLflow stage, spelled as MLflow spells it."""
    for known in _STAGES:
        if stage.strip().lower() == known.lower():
            return known
    raise ConfigError(f"invalid --stage-transition '{stage}': pass one of {', '.join(_STAGES)}")
