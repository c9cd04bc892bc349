"""pull-request validation end to end: real dvc, git, moto S3 and MLflow server."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.run import ci_helpers, github_env, read_outputs, read_report, tracked_pr_validate

pytestmark = pytest.mark.integration


def _mlflow_runs(tracking_uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client, (client.search_runs([found.experiment_id]) if found else [])


def test_good_pr_passes_and_is_reported_everywhere(project, mlflow_server, tmp_path):
    checkout = project.checkout("pr-better")
    gh = github_env(
        tmp_path / "gh", GITHUB_REF="refs/pull/17/merge", GITHUB_BASE_REF="main", GITHUB_HEAD_REF="pr-better"
    )
    report = tmp_path / "report.json"
    client_models_before = _registered_versions(mlflow_server.url)

    result = tracked_pr_validate(checkout, mlflow_server.url, "housing-pr-good", report, env=gh)

    assert result.code == 0, result.output
    data = read_report(report)
    assert data["passed"] is True
    assert data["verdict"] == "passed"
    assert data["baseline_commit"] == project.head("main")
    assert data["git"] == {"commit": project.head("pr-better"), "branch": "pr-better", "pr": 17}
    assert set(data["metrics"]) == {"metrics.r2_score", "metrics.rmse", "metrics.mae"}
    # thresholds and regressions come from the project's mlops.yaml
    kinds = {(c["metric"], c["kind"]) for c in data["checks"]}
    assert ("metrics.r2_score", "threshold") in kinds
    assert ("metrics.rmse", "regression") in kinds
    assert all(c["passed"] for c in data["checks"])
    for check in data["checks"]:
        assert set(check) >= {"metric", "op", "threshold", "value", "passed"}
    # the CI numbers equal what the developer committed: no mismatch
    assert data["evaluation"]["mismatches"] == []

    summary = (tmp_path / "gh" / "summary").read_text()
    assert "PR #17" in summary
    assert "passed" in summary
    assert "| metric | baseline | this PR | delta | threshold | status |" in summary
    assert "`metrics.r2_score`" in summary
    outputs = read_outputs(tmp_path / "gh" / "output")
    assert outputs["passed"] == "true"
    assert json.loads(outputs["metrics"]) == data["metrics"]
    assert outputs["report-json"] == str(report)

    client, runs = _mlflow_runs(mlflow_server.url, "housing-pr-good")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_id == data["mlflow"]["run_id"] == outputs["mlflow-run-id"]
    assert run.data.tags["mlops.pr"] == "17"
    assert run.data.tags["mlops.git_commit"] == project.head("pr-better")
    assert run.data.tags["mlops.branch"] == "pr-better"
    assert run.data.tags["mlops.verdict"] == "passed"
    assert run.data.metrics["metrics.r2_score"] == pytest.approx(data["metrics"]["metrics.r2_score"])
    assert run.data.params["train.n_estimators"] == "90"
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert "pr-validation-report.json" in artifacts
    # a PR run never touches the registry
    assert _registered_versions(mlflow_server.url) == client_models_before


def _registered_versions(tracking_uri: str) -> list[tuple[str, str]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    return sorted((v.name, v.version) for v in client.search_model_versions())


def test_pull_fetches_only_what_evaluation_needs(project, tmp_path):
    checkout = project.checkout("pr-better")

    result = ci_helpers("pull", "--eval-stage", "evaluate", cwd=checkout)

    assert result.code == 0, result.output
    assert (checkout / "models" / "model.pkl").is_file()
    assert (checkout / "data" / "features" / "test.csv").is_file()
    # upstream data that evaluation does not read stays on the remote
    assert not (checkout / "data" / "raw" / "housing.csv").exists()
    assert not (checkout / "data" / "features" / "train.csv").exists()
    assert "models/model.pkl" in result.output


def test_worse_model_fails_the_threshold_with_annotations(project, mlflow_server, tmp_path):
    checkout = project.checkout("pr-worse")
    gh = github_env(tmp_path / "gh", GITHUB_REF="refs/pull/18/merge", GITHUB_BASE_REF="main")
    report = tmp_path / "report.json"

    result = tracked_pr_validate(checkout, mlflow_server.url, "housing-pr-worse", report, env=gh)

    assert result.code == 1, result.output
    data = read_report(report)
    assert data["passed"] is False
    assert data["verdict"] == "gate-failed"
    failing = {(c["metric"], c["kind"]) for c in data["checks"] if not c["passed"]}
    assert ("metrics.r2_score", "threshold") in failing
    assert ("metrics.r2_score", "regression") in failing
    assert "::error" in result.stdout
    assert "metrics.r2_score" in result.stdout
    assert "❌" in (tmp_path / "gh" / "summary").read_text()
    assert read_outputs(tmp_path / "gh" / "output")["passed"] == "false"
    _, runs = _mlflow_runs(mlflow_server.url, "housing-pr-worse")
    assert runs[0].data.tags["mlops.verdict"] == "gate-failed"


def test_regression_against_baseline_fails_even_above_threshold(project, tmp_path):
    checkout = project.checkout("pr-worse")

    result = ci_helpers(
        "pr-validate",
        "--no-track",
        "--threshold",
        "metrics.r2_score>=0.1",
        "--max-regression",
        "metrics.r2_score=1%",
        "--baseline-ref",
        "main",
        "--report-json",
        str(tmp_path / "r.json"),
        cwd=checkout,
    )

    assert result.code == 1, result.output
    checks = read_report(tmp_path / "r.json")["checks"]
    by_kind = {c["kind"]: c for c in checks if c["metric"] == "metrics.r2_score"}
    assert by_kind["threshold"]["passed"] is True
    assert by_kind["regression"]["passed"] is False
    assert by_kind["regression"]["baseline"] > by_kind["regression"]["value"]


def test_unpushed_model_fails_with_the_fix(project, tmp_path):
    checkout = project.checkout("pr-unpushed")

    result = ci_helpers("pr-validate", "--no-track", "--report-json", str(tmp_path / "r.json"), cwd=checkout)

    assert result.code == 1, result.output
    assert "models/model.pkl is not on remote 'storage'" in result.output
    assert "dvc push" in result.output
    data = read_report(tmp_path / "r.json")
    assert data["verdict"] == "not-pushed"
    assert not (checkout / "models" / "model.pkl").exists()  # nothing was evaluated


def test_stale_lock_fails_with_the_fix(project, tmp_path):
    checkout = project.checkout("pr-stale")

    result = ci_helpers("pr-validate", "--no-track", "--report-json", str(tmp_path / "r.json"), cwd=checkout)

    assert result.code == 1, result.output
    assert "train.learning_rate" in result.output or "param train" in result.output
    assert "dvc repro" in result.output
    assert read_report(tmp_path / "r.json")["verdict"] == "stale-lock"


def test_check_commands_on_their_own(project):
    good, stale, unpushed = project.checkout("pr-better"), project.checkout("pr-stale"), project.checkout("pr-unpushed")

    assert ci_helpers("check-remote", cwd=good).code == 0
    assert ci_helpers("check-lock", cwd=good).code == 0
    lock = ci_helpers("check-lock", cwd=stale)
    assert lock.code == 1
    assert "dvc repro" in lock.output
    remote = ci_helpers("check-remote", cwd=unpushed)
    assert remote.code == 1
    assert "models/model.pkl" in remote.output


def test_an_out_added_to_dvc_yaml_without_repro_is_a_stale_lock(project):
    """In a fresh clone DVC calls such an out `deleted`, as it calls every never-pulled out; the lock
    must still be found stale, not "ok"."""
    import yaml

    checkout = project.checkout("pr-better")
    dvc_yaml = checkout / "dvc.yaml"
    pipeline = yaml.safe_load(dvc_yaml.read_text())
    pipeline["stages"]["train"]["outs"].append("models/feature_names.json")
    dvc_yaml.write_text(yaml.safe_dump(pipeline, sort_keys=False))

    lock = ci_helpers("check-lock", cwd=checkout)

    assert lock.code == 1, lock.output
    assert "stage 'train': output models/feature_names.json is in dvc.yaml but not in dvc.lock" in lock.output
    assert "dvc repro" in lock.output


def test_ci_numbers_that_differ_from_the_committed_ones_are_reported(project, tmp_path):
    checkout = project.checkout("pr-tampered")
    gh = github_env(tmp_path / "gh")

    result = ci_helpers("pr-validate", "--no-track", "--report-json", str(tmp_path / "r.json"), cwd=checkout, env=gh)

    data = read_report(tmp_path / "r.json")
    assert data["evaluation"], result.output
    mismatch = {m["metric"]: m for m in data["evaluation"]["mismatches"]}
    assert mismatch["metrics.r2_score"]["committed"] == 0.99
    assert mismatch["metrics.r2_score"]["ci"] == pytest.approx(data["metrics"]["metrics.r2_score"])
    assert data["metrics"]["metrics.r2_score"] < 0.95  # gated on CI's number, not the committed one
    assert "differs from the metrics committed" in (tmp_path / "gh" / "summary").read_text()
    assert result.code == 0, result.output


def test_builtin_evaluator_matches_the_projects_own_numbers(project, tmp_path):
    checkout = project.checkout("main")

    result = ci_helpers(
        "pr-validate",
        "--no-track",
        "--model",
        "models/model.pkl",
        "--test-data",
        "data/features/test.csv",
        "--target",
        "median_house_value",
        "--task",
        "regression",
        "--threshold",
        "r2>=0.8",
        "--max-regression",
        "r2=0.05",
        "--allow-missing-baseline",  # the built-in evaluator has no baseline of its own
        "--report-json",
        str(tmp_path / "r.json"),
        cwd=checkout,
    )

    assert result.code == 0, result.output
    data = read_report(tmp_path / "r.json")
    committed = json.loads((checkout / "metrics.json").read_text())["metrics"]
    assert data["evaluation"]["method"] == "builtin"
    assert data["metrics"]["r2"] == pytest.approx(committed["r2_score"], abs=1e-5)
    assert data["metrics"]["rmse"] == pytest.approx(committed["rmse"], abs=1e-5)
    assert data["metrics"]["mae"] == pytest.approx(committed["mae"], abs=1e-5)
    assert not (checkout / "data" / "raw" / "housing.csv").exists()
    assert {c["metric"] for c in data["checks"]} == {"r2"}


def test_shallow_checkout_fetches_the_baseline(project, tmp_path):
    checkout = project.checkout("pr-better", shallow=True)

    result = ci_helpers(
        "pr-validate", "--no-track", "--baseline-ref", "main", "--report-json", str(tmp_path / "r.json"), cwd=checkout
    )

    assert result.code == 0, result.output
    data = read_report(tmp_path / "r.json")
    assert data["baseline_commit"] == project.head("main")
    assert data["baseline"]["metrics.r2_score"] > 0.9


def test_a_depth_1_clone_takes_every_spelling_of_the_base_ref(project, tmp_path):
    """actions/checkout's default clone has no base branch; each spelling must fetch it itself."""
    main = project.head("main")
    spellings = [("main", {}), ("origin/main", {}), ("refs/heads/main", {}), (None, {"GITHUB_BASE_REF": "main"})]
    for index, (ref, env) in enumerate(spellings):
        checkout = project.checkout("pr-worse", name=f"shallow-{index}", shallow=True)
        args = ["--baseline-ref", ref] if ref else []
        report = tmp_path / f"{index}.json"
        result = ci_helpers(
            "gate",
            "--metrics-file",
            "metrics.json",
            "--max-regression",
            "metrics.r2_score=0.02",
            *args,
            "--report-json",
            str(report),
            cwd=checkout,
            env={**github_env(tmp_path / f"gh-{index}"), **env} if env else None,
        )
        assert result.code == 1, (ref, env, result.output)  # pr-worse regressed against main
        assert "regressed below" in result.output, (ref, env)
        assert read_report(report)["baseline_commit"] == main, (ref, env)


def test_a_regression_rule_without_a_baseline_fails_closed_unless_allowed(project, tmp_path):
    checkout = project.checkout("pr-better")
    args = ["gate", "--metrics-file", "metrics.json", "--max-regression", "metrics.r2_score=0.02"]

    missing_ref = ci_helpers(*args, "--baseline-ref", "no-such-branch", cwd=checkout)
    assert missing_ref.code == 2, missing_ref.output
    assert "baseline ref 'no-such-branch' is not a branch, tag or commit" in missing_ref.output

    settings = checkout / "mlops.yaml"  # the example sets baseline_ref: main
    settings.write_text(settings.read_text().replace("baseline_ref: main", ""))
    no_ref = ci_helpers(*args, cwd=checkout)
    assert no_ref.code == 1, no_ref.output
    assert "metrics.r2_score: no baseline to check --max-regression against" in no_ref.output
    assert "--allow-missing-baseline" in no_ref.output

    from tests.support.project import sh

    # a base commit whose tree has no metrics.json (a project's first PR adds it)
    listing = [
        line for line in sh(["git", "ls-tree", "HEAD"], checkout).stdout.splitlines() if "metrics.json" not in line
    ]
    tree = subprocess.run(
        ["git", "mktree"], cwd=checkout, input="\n".join(listing) + "\n", capture_output=True, text=True, check=True
    ).stdout.strip()
    base = sh(["git", "commit-tree", tree, "-p", "HEAD", "-m", "before metrics"], checkout).stdout.strip()
    sh(["git", "tag", "before-metrics", base], checkout)
    renamed = ci_helpers(
        *args, "--baseline-ref", "before-metrics", "--report-json", str(tmp_path / "r.json"), cwd=checkout
    )
    assert renamed.code == 1, renamed.output
    assert "metrics.json does not exist at `before-metrics`" in renamed.output
    (check,) = [c for c in read_report(tmp_path / "r.json")["checks"] if c["kind"] == "regression"]
    assert check["passed"] is False
    assert check["detail"] == "no baseline value"

    allowed = ci_helpers(*args, "--allow-missing-baseline", cwd=checkout)
    assert allowed.code == 0, allowed.output


def test_a_downstream_stage_that_was_not_rerun_is_stale_in_a_fresh_clone(project, tmp_path):
    """The developer re-ran only `train` (`dvc repro -s train`) and pushed: evaluate's metrics are
    from the old model. In a fresh clone nothing is pulled, so only the lock hashes can tell."""
    from tests.support.project import set_train_params, sh

    dev = project.dev
    sh(["git", "checkout", "-q", "-b", "pr-partial", "main"], dev)
    set_train_params(dev, n_estimators=20)
    sh(["dvc", "repro", "-q", "-s", "train"], dev, {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'dev.db'}"})
    sh(["git", "commit", "-qam", "pr-partial: retrain, forget evaluate"], dev)
    sh(["git", "push", "-q", "origin", "pr-partial"], dev)
    sh(["dvc", "push", "-q"], dev)
    checkout = project.checkout("pr-partial")

    result = ci_helpers("pr-validate", "--no-track", "--report-json", str(tmp_path / "r.json"), cwd=checkout)

    assert result.code == 1, result.output
    assert read_report(tmp_path / "r.json")["verdict"] == "stale-lock"
    assert (
        "stage 'evaluate': dependency models/model.pkl changed (rebuilt by 'train') but 'evaluate' was not re-run"
        in result.output
    )
    assert "dvc repro" in result.output


def test_embedded_defaults_local_folder_remote_and_sqlite(project, tmp_path):
    from tests.support.project import sh, write_local_remote

    folder = tmp_path / "dvc-store"
    write_local_remote(project.dev, str(folder), name="folder", default=True)
    sh(["dvc", "push", "-q"], project.dev)
    checkout = project.checkout("main")
    write_local_remote(checkout, str(folder), name="folder", default=True)

    result = ci_helpers("pr-validate", "--report-json", str(tmp_path / "r.json"), cwd=checkout)

    assert result.code == 0, result.output
    data = read_report(tmp_path / "r.json")
    assert data["mlflow"]["tracking_uri"] == f"sqlite:///{checkout / 'mlflow.db'}"
    _, runs = _mlflow_runs(data["mlflow"]["tracking_uri"], data["mlflow"]["experiment"])
    assert [r.info.run_id for r in runs] == [data["mlflow"]["run_id"]]
