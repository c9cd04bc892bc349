import math

import pytest

from ci_helpers.adapters.redact import redact
from ci_helpers.errors import ConfigError
from ci_helpers.metrics import flatten, merge_metrics, parse_metrics_text
from ci_helpers.settings import ProjectSettings, merge_settings


def test_nested_metrics_flatten_with_dots_like_dvc_metrics_show():
    assert flatten({"metrics": {"r2_score": 0.9, "per_class": {"a": 1}}, "name": "x", "ok": True}) == {
        "metrics.r2_score": 0.9,
        "metrics.per_class.a": 1.0,
    }


def test_yaml_metrics_and_nan():
    values = parse_metrics_text("eval:\n  loss: .nan\n  acc: 0.5\n", "m.yaml")
    assert math.isnan(values["eval.loss"])
    assert values["eval.acc"] == 0.5


def test_invalid_json_metrics_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_metrics_text("{nope", "metrics.json")


def test_same_key_in_two_files_is_ambiguous():
    with pytest.raises(ConfigError, match=r"appears in both a\.json and b\.json"):
        merge_metrics({"a.json": {"x": 1.0}, "b.json": {"x": 2.0}})


def test_settings_accept_plural_and_kebab_keys():
    settings = ProjectSettings.model_validate({"thresholds": "r2>=0.5", "eval_stage": "evaluate"})
    assert settings.threshold == ["r2>=0.5"]


def test_command_line_beats_the_file_and_the_file_beats_defaults():
    merged = merge_settings(
        {"remote": "cli", "experiment": None, "threshold": ()},
        {"remote"},
        {"remote": "file", "experiment": "file-exp", "threshold": ["a>=1"]},
    )
    assert merged == {"remote": "cli", "experiment": "file-exp", "threshold": ("a>=1",)}


def test_choosing_the_builtin_evaluator_overrides_the_files_eval_stage():
    merged = merge_settings({"eval_stage": None, "model": "m.pkl"}, {"model"}, {"eval_stage": "evaluate"})
    assert merged["eval_stage"] is None


def test_redact_hides_url_credentials_and_secret_values(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-secret")
    text = redact("http://bob:hunter2-secret@127.0.0.1:5000 said hunter2-secret")
    assert "hunter2" not in text
    assert "bob" not in text
    assert "127.0.0.1:5000" in text
