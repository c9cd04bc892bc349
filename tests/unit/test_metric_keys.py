"""Metric and param keys turned into keys MLflow accepts, with the original names kept aside."""

from __future__ import annotations

import json

import pytest

from ci_helpers.adapters.auth import rejection_reason
from ci_helpers.adapters.metric_keys import MAX_KEY_LENGTH, is_valid_key, safe_key, sanitise_keys, sanitise_metric_keys
from ci_helpers.adapters.tracking import MAX_TAG_VALUE, key_mapping_tag

HOUSING_KEY = "feature_importance.ocean_proximity_<1H OCEAN"


def mlflow_accepts(key: str) -> bool:
    """MLflow's own verdict: its metric-name validation and its key length limit."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH, _validate_metric_name, _validate_param_name

    try:
        _validate_metric_name(key)
        _validate_param_name(key)
    except MlflowException:
        return False
    return len(key) <= MAX_ENTITY_KEY_LENGTH


def test_the_housing_key_gets_an_underscore_and_its_original_is_kept():
    metrics = {HOUSING_KEY: 0.12, "r2_score": 0.81}

    safe, renamed = sanitise_metric_keys(metrics)

    assert safe == {"feature_importance.ocean_proximity__1H OCEAN": 0.12, "r2_score": 0.81}
    assert renamed == {"feature_importance.ocean_proximity__1H OCEAN": HOUSING_KEY}
    assert all(mlflow_accepts(key) for key in safe)


def test_keys_mlflow_accepts_are_left_alone():
    metrics = {"a": 1.0, "test/r2": 2.0, "with space-and.dot": 3.0, "rmse:val": 4.0, "x" * MAX_KEY_LENGTH: 5.0}

    safe, renamed = sanitise_metric_keys(metrics)

    assert safe == metrics
    assert renamed == {}


def test_keys_that_collapse_to_one_stay_apart_and_a_valid_key_keeps_its_name():
    metrics = {"a<b": 1.0, "a_b": 2.0, "a>b": 3.0, "a|b": 4.0}

    safe, renamed = sanitise_metric_keys(metrics)

    assert safe == {"a_b_2": 1.0, "a_b": 2.0, "a_b_3": 3.0, "a_b_4": 4.0}
    assert renamed == {"a_b_2": "a<b", "a_b_3": "a>b", "a_b_4": "a|b"}
    assert {renamed.get(key, key): value for key, value in safe.items()} == metrics


def test_a_suffixed_key_never_takes_a_name_already_in_use():
    safe, renamed = sanitise_metric_keys({"a<b": 1.0, "a_b": 2.0, "a_b_2": 3.0})

    assert safe == {"a_b_3": 1.0, "a_b": 2.0, "a_b_2": 3.0}
    assert renamed == {"a_b_3": "a<b"}


def test_long_keys_are_cut_to_mlflows_limit_and_stay_unique():
    long_a, long_b = "m" * 300 + "a", "m" * 300 + "b"

    safe, renamed = sanitise_metric_keys({long_a: 1.0, long_b: 2.0})

    assert all(len(key) <= MAX_KEY_LENGTH and mlflow_accepts(key) for key in safe)
    assert len(safe) == 2
    assert sorted(renamed.values()) == [long_a, long_b]
    assert set(renamed) == {"m" * MAX_KEY_LENGTH, "m" * (MAX_KEY_LENGTH - 2) + "_2"}


@pytest.mark.parametrize(
    "key",
    [
        HOUSING_KEY,
        "",
        ".",
        "..",
        "..hidden",
        "/absolute",
        "trailing/",
        "a//b",
        "a/./b",
        "a/../b",
        "./a",
        "tab\there",
        "new\nline",
        "quote'\"",
        "percent%(x)",
        "émoji🙂",
        "a" * 249 + "/.",
        "a/" * 200,
        "x" * 1000,
    ],
)
def test_every_safe_key_is_one_mlflow_accepts(key):
    safe = safe_key(key)

    assert mlflow_accepts(safe), safe
    assert is_valid_key(safe)
    assert is_valid_key(key) == mlflow_accepts(key)


def test_params_are_sanitised_the_same_way_whatever_their_values():
    safe, renamed = sanitise_keys({"model.features[0]": "rooms", "model.depth": 3})

    assert safe == {"model.features_0_": "rooms", "model.depth": 3}
    assert renamed == {"model.features_0_": "model.features[0]"}


def test_the_mapping_tag_is_json_and_fits_a_tag_when_there_are_many_keys():
    _, renamed = sanitise_metric_keys({f"importance<{i:04d}> " + "f" * 60: 0.1 for i in range(400)})

    tag = key_mapping_tag(renamed, "metric_keys.json")

    assert len(tag) <= MAX_TAG_VALUE
    shown = json.loads(tag)
    more = shown.pop("…")
    assert 0 < len(shown) < 400
    assert more == f"{400 - len(shown)} more in the run's artifact metric_keys.json"
    assert all(renamed[key] == original for key, original in shown.items())


def test_a_short_mapping_tag_holds_every_key():
    _, renamed = sanitise_metric_keys({HOUSING_KEY: 1.0})

    assert json.loads(key_mapping_tag(renamed, "metric_keys.json")) == renamed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("API request to endpoint /api/2.0/mlflow/runs/create failed with error code 401 != 200", "HTTP 401"),
        ("403 Client Error: FORBIDDEN for url: http://127.0.0.1/api", "HTTP 403"),
        (
            "ERROR: failed to connect to s3 (b/dvc) - Forbidden: An error occurred (403) when calling HeadObject",
            "HTTP 403",
        ),
        ("An error occurred (AccessDenied) when calling the ListObjectsV2 operation: Access Denied", "AccessDenied"),
        ("An error occurred (InvalidAccessKeyId) when calling the PutObject operation", "InvalidAccessKeyId"),
        ("An error occurred (SignatureDoesNotMatch) when calling the PutObject operation", "SignatureDoesNotMatch"),
        ("fatal: unable to access 'http://h/r.git/': The requested URL returned error: 403", "HTTP 403"),
        ("fatal: Authentication failed for 'https://github.com/o/r.git/'", "Authentication failed"),
        (
            "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
            "no credentials for the remote (the server asked for them)",
        ),
        (
            "git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            "Permission denied (publickey)",
        ),
        ("remote: Permission to o/r.git denied to github-actions[bot].", "permission denied"),
    ],
)
def test_rejections_are_told_apart_by_their_text(text, reason):
    assert rejection_reason(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "fatal: unable to access 'http://h/r.git/': Failed to connect to h port 80: Connection refused",
        "Could not connect to the endpoint URL: http://127.0.0.1:9/b",
        "API request to endpoint /api/2.0/mlflow/runs/create failed with error code 503 != 200",
        "PermissionError: [Errno 13] Permission denied: '/srv/dvc-remote/files'",
        "! [rejected]        HEAD -> main (fetch first)",
        "stage 'train' exited with 1: 4030 rows, 401 features",
    ],
)
def test_failures_that_are_not_rejections(text):
    assert rejection_reason(text) is None
