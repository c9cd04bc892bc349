"""Project settings from an optional mlops.yaml, validated with pydantic.

Priority, highest first: CLI option, environment variable, mlops.yaml, built-in default. The CLI
hands the file's settings to click as each command's `default_map` (see `file_defaults`), so a
value from the file goes through the option's own type and callback, exactly like a typed one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

CONFIG_FILE = "mlops.yaml"


def _plural(name: str) -> AliasChoices:
    return AliasChoices(name, f"{name}s")


class ProjectSettings(BaseModel):
    """Keys accepted in mlops.yaml (kebab-case or snake_case; repeatable ones also plural)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=False)

    remote: str | None = None
    eval_stage: str | None = None
    metrics_file: list[str] | None = Field(None, validation_alias=_plural("metrics_file"))
    model: str | None = None
    test_data: str | None = None
    target: str | None = None
    task: Literal["regression", "classification"] | None = None
    threshold: list[str] | None = Field(None, validation_alias=_plural("threshold"))
    max_regression: list[str] | None = Field(None, validation_alias=_plural("max_regression"))
    baseline_ref: str | None = None
    allow_missing_baseline: bool | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    report_json: str | None = None
    comment: bool | None = None
    track: bool | None = None
    trend_builds: int | None = Field(None, ge=0)
    build_experiment: str | None = None
    # master-build and the registry commands
    stage: list[str] | None = Field(None, validation_alias=_plural("stage"))
    model_name: str | None = None
    alias: str | None = None
    stage_transition: str | None = None
    lock_mode: Literal["commit", "tag", "none"] | None = None
    git_remote: str | None = None
    branch: str | None = None
    register_failed: bool | None = None
    push_run_cache: bool | None = None
    model_artifact_path: str | None = None
    model_path: str | None = None
    model_artifact: str | None = None
    git_user_name: str | None = None
    git_user_email: str | None = None

    @field_validator("metrics_file", "threshold", "max_regression", "stage", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator(
        "remote",
        "eval_stage",
        "model",
        "test_data",
        "target",
        "baseline_ref",
        "tracking_uri",
        "experiment",
        "build_experiment",
        "report_json",
        "model_name",
        "alias",
        "stage_transition",
        "git_remote",
        "branch",
        "model_artifact_path",
        "model_path",
        "model_artifact",
        "git_user_name",
        "git_user_email",
        mode="before",
    )
    @classmethod
    def _text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise ValueError("must be a string")
        return value


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        known = ", ".join(sorted(name.replace("_", "-") for name in ProjectSettings.model_fields))
        return f"unknown key '{where}' (known keys: {known})"
    return f"key '{where}': {first['msg']}"


# Settings naming a file the CLI writes: relative to the project root, where mlops.yaml lives.
_OUTPUT_PATHS = ("report_json",)


def load_project_settings(repo: Path) -> dict[str, object]:
    """The settings mlops.yaml sets, keyed by CLI parameter name; {} when there is no file."""
    path = repo / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML ({str(error).splitlines()[0]}); fix its syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of setting: value; see docs/configuration.md")
    normalized = {str(key).replace("-", "_"): value for key, value in raw.items()}
    try:
        settings = ProjectSettings.model_validate(normalized).model_dump(exclude_none=True)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_describe(error)}; fix or remove it") from None
    for name in _OUTPUT_PATHS:
        if name in settings:
            settings[name] = str(repo / settings[name])  # an absolute path stays as it is
    return settings


# Settings that choose between alternatives: choosing one explicitly overrides the file's other.
_ALTERNATIVES = ({"eval_stage"}, {"model", "test_data", "target"})


def file_defaults(file_settings: dict[str, object], explicit: set[str], accepted: set[str]) -> dict[str, object]:
    """One command's click `default_map`: the file's settings that command accepts (a file shared
    by every command), without those overridden by an alternative chosen on the command line or in
    the environment (`explicit`). Click itself then ranks CLI > env > this map > built-in default."""
    overridden: set[str] = set()
    for group in _ALTERNATIVES:
        if group & explicit:
            overridden |= set().union(*_ALTERNATIVES) - group
    return {name: value for name, value in file_settings.items() if name in accepted and name not in overridden}
