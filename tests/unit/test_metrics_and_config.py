import math

import pytest

from ci_helpers.adapters.redact import redact
from ci_helpers.errors import ConfigError
from ci_helpers.metrics import flatten, merge_metrics, parse_metrics_text
from ci_helpers.settings import ProjectSettings, file_defaults, load_project_settings


def test_nested_metrics_flatten_with_dots_like_dvc_metrics_show():
    assert flatten({"metrics": {"r2_score": 0.9, "per_class": {"a": 1}}, "name": "x", "ok": True}) == {
        "metrics.r2_score": 0.9,
        "metrics.per_class.a": 1.0,
        "name": "x",  # kept: the report shows every key; only a gate rule needs a number
        "ok": True,
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


def test_the_file_gives_a_command_only_the_keys_it_has():
    defaults = file_defaults(
        {"remote": "file", "experiment": "file-exp", "threshold": ["a>=1"], "lock_mode": "tag"},
        explicit={"remote"},
        accepted={"repo", "remote", "experiment", "threshold"},
    )
    # click ranks an explicit --remote above the default_map itself; lock_mode is another command's
    assert defaults == {"remote": "file", "experiment": "file-exp", "threshold": ["a>=1"]}


def test_choosing_the_builtin_evaluator_overrides_the_files_eval_stage():
    accepted = {"eval_stage", "model", "test_data", "target", "task"}
    defaults = file_defaults({"eval_stage": "evaluate", "task": "classification"}, {"model"}, accepted)
    assert defaults == {"task": "classification"}


def test_choosing_an_eval_stage_overrides_the_files_builtin_evaluator():
    accepted = {"eval_stage", "model", "test_data", "target"}
    defaults = file_defaults({"model": "m.pkl", "test_data": "t.csv", "target": "y"}, {"eval_stage"}, accepted)
    assert defaults == {}


def test_the_file_alone_may_name_both_alternatives():
    accepted = {"eval_stage", "model"}
    assert file_defaults({"eval_stage": "e", "model": "m.pkl"}, set(), accepted) == {
        "eval_stage": "e",
        "model": "m.pkl",
    }


def test_settings_accept_the_model_source_of_master_build():
    settings = ProjectSettings.model_validate({"model_path": "models/model.pkl", "model_artifact": "housing"})
    assert (settings.model_path, settings.model_artifact) == ("models/model.pkl", "housing")
    with pytest.raises(ValueError, match="must be a string"):
        ProjectSettings.model_validate({"model_path": ["a", "b"]})


def test_a_report_path_in_the_file_is_relative_to_the_project(tmp_path):
    (tmp_path / "mlops.yaml").write_text("report-json: out/r.json\nremote: s3\n")
    assert load_project_settings(tmp_path) == {"report_json": str(tmp_path / "out" / "r.json"), "remote": "s3"}
    (tmp_path / "mlops.yaml").write_text("report_json: /abs/r.json\n")
    assert load_project_settings(tmp_path) == {"report_json": "/abs/r.json"}


def test_no_file_no_settings(tmp_path):
    assert load_project_settings(tmp_path) == {}


def test_a_file_that_is_not_a_mapping_is_a_config_error(tmp_path):
    (tmp_path / "mlops.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_project_settings(tmp_path)


def test_redact_hides_url_credentials_and_secret_values(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-secret")
    text = redact("http://bob:hunter2-secret@127.0.0.1:5000 said hunter2-secret")
    assert "hunter2" not in text
    assert "bob" not in text
    assert "127.0.0.1:5000" in text


def test_redact_is_linear_on_a_long_run_without_a_url(monkeypatch):
    # A 2 MB report body of scheme characters once took the URL pattern minutes (quadratic).
    import time

    body = "a" * 2_000_000 + " https://user:pw@host/x " + "b.c-d+" * 300_000
    start = time.perf_counter()
    text = redact(body)
    assert time.perf_counter() - start < 5
    assert "user:pw" not in text
    assert "https://***@host/x" in text


def test_redact_hides_the_gitlab_tokens(monkeypatch):
    monkeypatch.setenv("CI_HELPERS_GITLAB_TOKEN", "glpat-abcdefgh")
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-ijklmnop")
    assert redact("tokens glpat-abcdefgh glpat-ijklmnop") == "tokens *** ***"
