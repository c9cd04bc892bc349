"""pr-validate's --track/--no-track (CI_HELPERS_TRACK, the older CI_HELPERS_NO_TRACK) and
--trend-builds (CI_HELPERS_TREND_BUILDS, mlops.yaml) on a small real project, with the embedded
sqlite store: what is logged, and what the report says."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ci_helpers.cli import cli

GATE = ("--threshold", "eval.accuracy>=0.5", "--baseline-ref", "main")


def validate(repo, tmp_path, *args: str, env: dict | None = None):
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        ["pr-validate", "--repo", str(repo), *GATE, "--report-json", str(report), *args],
        catch_exceptions=False,
        env={"CI_HELPERS_TRACK": None, "CI_HELPERS_NO_TRACK": None, "CI_HELPERS_TREND_BUILDS": None, **(env or {})},
    )
    data = json.loads(report.read_text()) if report.is_file() else None
    return result, data


def test_help_names_the_options_and_their_variables():
    result = CliRunner().invoke(cli, ["pr-validate", "--help"])
    assert "--track / --no-track" in result.output
    for name in ("CI_HELPERS_TRACK", "CI_HELPERS_NO_TRACK", "CI_HELPERS_TREND_BUILDS", "CI_HELPERS_BUILD_EXPERIMENT"):
        assert name in result.output
    assert "CI_HELPERS_TREND_BUILDS" in CliRunner().invoke(cli, ["master-build", "--help"]).output


def _closed_port_uri() -> str:
    from tests.support.servers import refused_port

    return f"http://127.0.0.1:{refused_port()}"  # nothing listens there: connection refused at once


def test_an_empty_track_variable_means_tracked_and_an_unreachable_server_leaves_the_trend_out(mini_repo, tmp_path):
    uri = _closed_port_uri()
    result, data = validate(mini_repo, tmp_path, "--tracking-uri", uri, env={"CI_HELPERS_TRACK": ""})

    assert result.exit_code == 3, result.output  # tracking was on, and its server is down
    assert "Not logged to MLflow" in result.stdout
    assert f"Trend not available: MLflow tracking server {uri} is unreachable" in result.stdout
    assert data["verdict"] == "passed"  # the verdict was still reported
    assert data["trend"]["available"] is False


def test_tracking_off_an_unreachable_server_only_costs_the_trend(mini_repo, tmp_path):
    uri = _closed_port_uri()
    result, data = validate(mini_repo, tmp_path, "--tracking-uri", uri, env={"CI_HELPERS_TRACK": "false"})

    assert result.exit_code == 0, result.output
    assert data["mlflow"] is None
    assert f"Trend not available: MLflow tracking server {uri} is unreachable" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "file"),
    [
        ((), {"CI_HELPERS_TRACK": "false"}, ""),
        (("--no-track",), {}, ""),
        ((), {"CI_HELPERS_NO_TRACK": "true"}, ""),  # the older spelling still works
        ((), {}, "track: false\n"),
    ],
    ids=["CI_HELPERS_TRACK=false", "--no-track", "CI_HELPERS_NO_TRACK=true", "mlops.yaml"],
)
def test_tracking_off_logs_nothing_and_creates_no_store(mini_repo, tmp_path, args, env, file):
    if file:
        (mini_repo / "mlops.yaml").write_text(file)
    result, data = validate(mini_repo, tmp_path, *args, env=env)

    assert result.exit_code == 0, result.output
    assert data["mlflow"] is None
    assert not (mini_repo / "mlflow.db").exists()  # reading the trend created no database
    assert "No main builds in MLflow yet" in result.stdout


def test_the_new_variable_wins_over_the_older_one(mini_repo, tmp_path):
    result, data = validate(mini_repo, tmp_path, env={"CI_HELPERS_TRACK": "false", "CI_HELPERS_NO_TRACK": "false"})
    assert result.exit_code == 0, result.output
    assert data["mlflow"] is None


@pytest.mark.parametrize(
    ("args", "env", "file", "message"),
    [
        ((), {"CI_HELPERS_TRACK": "maybe"}, "", "CI_HELPERS_TRACK"),
        ((), {"CI_HELPERS_NO_TRACK": "maybe"}, "", "CI_HELPERS_NO_TRACK='maybe' is not a boolean"),
        (("--trend-builds", "-1"), {}, "", "--trend-builds"),
        ((), {"CI_HELPERS_TREND_BUILDS": "ten"}, "", "CI_HELPERS_TREND_BUILDS"),
        ((), {}, "trend_builds: -1\n", "mlops.yaml"),
    ],
    ids=["track", "no-track", "negative", "not-a-number", "mlops.yaml"],
)
def test_bad_values_are_refused_with_exit_2_naming_the_setting(tmp_path, args, env, file, message):
    if file:
        (tmp_path / "mlops.yaml").write_text(file)
    result, data = validate(tmp_path, tmp_path, *args, env=env)  # refused before the project is read

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert data is None  # refused before anything ran


def test_trend_builds_zero_leaves_the_trend_out(mini_repo, tmp_path):
    (mini_repo / "mlops.yaml").write_text("trend-builds: 0\n")
    result, data = validate(mini_repo, tmp_path, "--no-track")

    assert result.exit_code == 0, result.output
    assert data["trend"] is None
    assert "Trend" not in result.stdout


def test_a_gitlab_merge_request_reads_baseline_and_trend_at_its_target_branch(mini_repo, tmp_path):
    report = tmp_path / "report.json"
    args = ["--repo", str(mini_repo), "--no-track", "--threshold", "eval.accuracy>=0.5", "--report-json", str(report)]
    result = CliRunner().invoke(
        cli,
        ["pr-validate", *args],
        catch_exceptions=False,
        env={"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "GITHUB_BASE_REF": None},
    )

    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["baseline_ref"] == "main"
    assert data["trend"]["branch"] == "main"
