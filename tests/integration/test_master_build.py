"""The official build on main, end to end: real dvc, git (bare origin), moto S3, MLflow server."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.support.project import lock_out_md5, set_train_params, sh, write_local_remote
from tests.support.run import ci_helpers, github_env, read_outputs, read_report

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _versions(uri, name):
    return sorted(int(v.version) for v in _client(uri).search_model_versions(f"name = '{name}'"))


def _master_build(cwd, name: str, tracking_uri: str, *args: str, env: dict | None = None):
    """`ci-helpers master-build` of model `name`, committing as the CI identity."""
    return ci_helpers(
        "master-build",
        "--model-name",
        name,
        "--tracking-uri",
        tracking_uri,
        *args,
        cwd=cwd,
        env={**(env or {}), **CI_IDENTITY},
    )


def test_main_build_rebuilds_pushes_commits_registers_and_is_idempotent(project, mlflow_server, tmp_path):
    name = f"housing-{uuid.uuid4().hex[:8]}"
    built = project.head("dev-model")
    dev_md5 = lock_out_md5(sh(["git", "show", f"{built}:dvc.lock"], project.origin).stdout, "models/model.pkl")
    checkout = project.checkout("dev-model")
    gh = github_env(
        tmp_path / "gh",
        GITHUB_SERVER_URL="https://github.example",
        GITHUB_REPOSITORY="acme/housing",
        GITHUB_RUN_ID="4242",
        GITHUB_REF="refs/heads/dev-model",
    )

    result = _master_build(checkout, name, mlflow_server.url, "--report-json", str(tmp_path / "build.json"), env=gh)

    assert result.code == 0, result.output
    report = read_report(tmp_path / "build.json")
    # the forced stage and its downstream ran; upstream stages were reused, not re-run
    assert report["stages"]["forced"] == ["train"]
    assert report["stages"]["downstream"] == ["evaluate"]
    assert "Running stage 'train'" in result.output
    assert "Running stage 'evaluate'" in result.output
    assert "Running stage 'featurize'" not in result.output
    assert "Running stage 'generate'" not in result.output
    # judged in-process: no `dvc repro` of the upstream stages only to hear them skipped
    assert "unchanged since dvc.lock (missing data aside): generate, featurize" in result.output
    assert "didn't change, skipping" not in result.output
    assert not (checkout / "data" / "raw" / "housing.csv").exists()
    # the developer's pushed binary was never fetched; the workspace holds the CI-built one
    ci_md5 = report["provenance"]["mlops.ci_md5.models/model.pkl"]
    assert ci_md5 != dev_md5
    assert not list((checkout / ".dvc" / "cache").rglob(dev_md5[2:]))
    assert report["provenance"]["mlops.dev_md5.models/model.pkl"] == dev_md5
    assert report["provenance"]["mlops.dev_model_matches_ci"] == "false"

    # the run the helper opened is the one the training script logged into
    client = _client(mlflow_server.url)
    run = client.get_run(report["mlflow"]["run_id"])
    assert run.data.params["train.n_estimators"] == "60"  # logged by src/train.py
    assert run.data.tags["mlops.git_commit"] == built
    assert run.data.tags["mlops.ci_run_url"] == "https://github.example/acme/housing/actions/runs/4242"
    assert run.data.metrics["metrics.r2_score"] == pytest.approx(report["metrics"]["metrics.r2_score"])

    # dvc.lock came back to the branch as one [skip ci] commit on top of the built commit
    tip = project.head("dev-model")
    assert report["lock"]["status"] == "committed"
    assert report["lock"]["commit"] == tip
    assert sh(["git", "rev-parse", f"{tip}^"], project.origin).stdout.strip() == built
    message = sh(["git", "log", "-1", "--format=%s%n%an <%ae>", tip], project.origin).stdout
    assert "[skip ci]" in message
    assert "CI Bot <ci@example.invalid>" in message
    assert lock_out_md5(sh(["git", "show", f"{tip}:dvc.lock"], project.origin).stdout, "models/model.pkl") == ci_md5
    # and the CI-built outputs are on the remote: a fresh clone of the tip is in sync
    fresh = project.checkout("dev-model", name="after-build")
    assert ci_helpers("check-remote", cwd=fresh).code == 0

    # registered with provenance, alias set
    version = client.get_model_version(name, report["model"]["version"])
    assert version.tags["mlops.git_commit"] == built
    assert version.tags["mlops.dev_model_matches_ci"] == "false"
    assert version.run_id == run.info.run_id
    assert client.get_model_version_by_alias(name, "staging").version == version.version
    outputs = read_outputs(tmp_path / "gh" / "output")
    assert outputs["model-uri"] == f"models:/{name}/{version.version}"
    assert outputs["lock-commit"] == tip
    assert outputs["run-id"] == run.info.run_id
    assert "Developer's model hash matches the CI build: **false**" in (tmp_path / "gh" / "summary").read_text()

    # re-running the build of the same commit reuses the version: no duplicate
    again = project.root / "again"
    sh(["git", "clone", "-q", str(project.origin), str(again)], project.root)
    sh(["git", "checkout", "-q", "-B", "dev-model", built], again)
    write_local_remote(again, project.remote_url)
    rerun = _master_build(again, name, mlflow_server.url, "--report-json", str(tmp_path / "again.json"))
    assert rerun.code == 0, rerun.output
    assert read_report(tmp_path / "again.json")["model"]["reused"] is True
    assert _versions(mlflow_server.url, name) == [int(version.version)]
    assert project.head("dev-model") == tip  # nothing new to commit, nothing lost


def test_failed_gate_alerts_and_moves_nothing(project, mlflow_server, tmp_path):
    name = f"housing-{uuid.uuid4().hex[:8]}"
    before = project.head("pr-worse")
    checkout = project.checkout("pr-worse")

    result = _master_build(
        checkout, name, mlflow_server.url, "--report-json", str(tmp_path / "r.json"), env=github_env(tmp_path / "gh")
    )

    assert result.code == 1, result.output
    assert "::error" in result.stdout
    assert "fails the gate" in result.stdout
    assert read_report(tmp_path / "r.json")["verdict"] == "gate-failed"
    assert _versions(mlflow_server.url, name) == []
    assert project.head("pr-worse") == before

    # asked for explicitly, the failed build is registered for the record, but no alias moves
    kept = _master_build(checkout, name, mlflow_server.url, "--register-failed")
    assert kept.code == 1, kept.output
    assert _versions(mlflow_server.url, name) == [1]
    model = _client(mlflow_server.url).get_registered_model(name)
    assert model.aliases == {}
    assert _client(mlflow_server.url).get_model_version(name, "1").tags["mlops.verdict"] == "gate-failed"
    assert project.head("pr-worse") == before


def _runs_of(uri: str, experiment: str) -> list:
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def test_a_rejected_git_push_then_a_rerun_completes(project, mlflow_server, tmp_path):
    """The lock push is refused after the push and the registration: the alias must not move (it
    would point at a build whose dvc.lock is nowhere), and a re-run finishes with no duplicate."""
    name, experiment = f"housing-{uuid.uuid4().hex[:8]}", f"exp-{uuid.uuid4().hex[:6]}"
    hook = project.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch is frozen for the release'\nexit 1\n")
    hook.chmod(0o755)
    before = project.head("dev-model")
    checkout = project.checkout("dev-model")
    args = ["master-build", "--model-name", name, "--tracking-uri", mlflow_server.url, "--experiment", experiment]

    result = ci_helpers(*args, cwd=checkout, env=CI_IDENTITY)

    assert result.code == 3, result.output
    assert "branch is frozen for the release" in result.output
    assert str(project.origin) in result.output
    last = result.output.strip().splitlines()[-1]
    assert (
        "Build state: pushed to 'storage'; registered v1; provenance statement written; "
        "dvc.lock not committed, alias 'staging' not moved: re-run the build to finish" in last
    )
    assert project.head("dev-model") == before
    client = _client(mlflow_server.url)
    assert "staging" not in (client.get_registered_model(name).aliases or {})
    assert [run.info.status for run in _runs_of(mlflow_server.url, experiment)] == ["FAILED"]

    hook.unlink()
    rerun = ci_helpers(*args, cwd=project.checkout("dev-model", name="rerun"), env=CI_IDENTITY)
    assert rerun.code == 0, rerun.output
    assert _versions(mlflow_server.url, name) == [1]  # the re-run reused v1
    assert client.get_model_version_by_alias(name, "staging").version == "1"
    assert "[skip ci]" in sh(["git", "log", "-1", "--format=%s", "dev-model"], project.origin).stdout
    assert sorted(run.info.status for run in _runs_of(mlflow_server.url, experiment)) == ["FAILED", "FINISHED"]


def test_s3_stopped_during_push_then_a_rerun_completes(project, tmp_path):
    from tests.support.servers import restartable_port, start_moto

    port = restartable_port()  # nobody else's while this server is down
    server, endpoint = start_moto(port)  # shares moto's in-process state: same buckets
    checkout = project.checkout("dev-model")
    before = project.head("dev-model")
    write_local_remote(checkout, project.remote_url, endpoint=endpoint)
    env = {
        **CI_IDENTITY,
        "CI_HELPERS_RETRY_ATTEMPTS": "2",
        "AWS_MAX_ATTEMPTS": "2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
    }
    import os
    import shutil

    proc = subprocess.Popen(
        [shutil.which("ci-helpers"), "master-build"],
        cwd=checkout,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "Push CI-built outputs" in line:
            server.stop()  # the S3 server goes away just as the push starts
    code = proc.wait(timeout=600)
    output = "".join(seen)
    assert code == 3, output
    assert endpoint in output
    assert "attempt 2/2" in output
    assert (
        "Build state: nothing pushed, registered or committed; outputs not pushed, dvc.lock not committed: re-run the build to finish"
        in output
    )
    assert project.head("dev-model") == before  # no lock commit without a push
    runs = _runs_of(env["MLFLOW_TRACKING_URI"], "origin")
    assert [run.info.status for run in runs] == ["FAILED"]  # never left RUNNING

    server2, _ = start_moto(port)
    try:
        rerun = ci_helpers("master-build", cwd=checkout, env=env)
        assert rerun.code == 0, rerun.output
        assert "[skip ci]" in sh(["git", "log", "-1", "--format=%s", "dev-model"], project.origin).stdout
        fresh = project.checkout("dev-model", name="after-rerun")
        assert ci_helpers("check-remote", cwd=fresh).code == 0  # nothing lost
    finally:
        server2.stop()


def test_mlflow_unreachable_during_registration_then_a_rerun_completes(project, mlflow_server, tmp_path):
    from tests.support.proxy import FlakyProxy

    name, experiment = f"housing-{uuid.uuid4().hex[:8]}", f"exp-{uuid.uuid4().hex[:6]}"
    before = project.head("dev-model")
    checkout = project.checkout("dev-model")
    with FlakyProxy(mlflow_server.url, ("registered-models", "model-versions")) as proxy:
        result = _master_build(checkout, name, proxy.url, "--experiment", experiment)
    assert result.code == 3, result.output
    assert "MLflow tracking server" in result.output
    assert proxy.url in result.output
    assert proxy.failed_requests  # it really got as far as the registry
    # the registry is first asked (before the push) whether this commit has a version already
    assert (
        "Build state: nothing pushed, registered or committed; outputs not pushed, model not registered, "
        "dvc.lock not committed, alias 'staging' not moved: re-run the build to finish" in result.output
    )
    # no pointer moved: origin's dvc.lock and the registry are as they were, the run ended FAILED
    assert project.head("dev-model") == before
    client = _client(mlflow_server.url)
    assert _versions(mlflow_server.url, name) == []
    assert not [m for m in client.search_registered_models() if m.name == name]
    assert [run.info.status for run in _runs_of(mlflow_server.url, experiment)] == ["FAILED"]

    rerun = _master_build(
        project.checkout("dev-model", name="rerun"), name, mlflow_server.url, "--experiment", experiment
    )
    assert rerun.code == 0, rerun.output
    assert _versions(mlflow_server.url, name) == [1]
    assert client.get_model_version_by_alias(name, "staging").version == "1"
    assert project.head("dev-model") != before


def test_a_lock_whose_outs_exist_nowhere_is_never_committed(project, tmp_path):
    """An upstream out the rebuild reuses, but nobody ever pushed: the new dvc.lock would record it,
    so the lock must not reach the branch (the CI-built outputs may be pushed, nothing else moves)."""
    from tests.support.servers import s3_client

    before = project.head("pr-tampered")
    raw_md5 = lock_out_md5(sh(["git", "show", f"{before}:dvc.lock"], project.origin).stdout, "data/raw/housing.csv")
    s3_client(project.s3_endpoint).delete_object(
        Bucket=project.bucket, Key=f"dvc/files/md5/{raw_md5[:2]}/{raw_md5[2:]}"
    )
    checkout = project.checkout("pr-tampered")

    result = ci_helpers(
        "master-build",
        "--stage",
        "evaluate",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
        cwd=checkout,
        env=CI_IDENTITY,
    )

    assert result.code == 1, result.output
    assert "dvc.lock records data/raw/housing.csv, which is on no remote" in result.output
    assert "dvc.lock not committed" in result.output
    assert "Traceback" not in result.output
    assert project.head("pr-tampered") == before


def test_an_upstream_stage_changed_without_repro_is_rebuilt_before_the_forced_stage(project, tmp_path):
    """A merged commit changed the params of an upstream stage but not dvc.lock: the build re-runs
    that stage and the ones after it, forces train on what they made, and then refuses to record
    upstream outs that only this runner holds (the fix is --stage generate)."""
    checkout = project.checkout("main", name="upstream-changed")
    set_train_params(checkout, noise=0.2)  # data.noise: a param of `generate` only (less noise: the gate passes)
    sh(["git", "commit", "-qam", "generate: less noise, dvc repro forgotten"], checkout)

    result = ci_helpers(
        "master-build",
        "--lock-mode",
        "none",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
        "--report-json",
        str(tmp_path / "build.json"),
        cwd=checkout,
        env=CI_IDENTITY,
    )

    assert result.code == 1, result.output
    assert "upstream stages changed since dvc.lock: generate\n" in result.output  # featurize follows it
    assert "Running stage 'generate'" in result.output
    assert "Running stage 'featurize'" in result.output
    assert "Running stage 'train'" in result.output
    committed = sh(["git", "show", "HEAD:dvc.lock"], checkout).stdout
    rebuilt = (checkout / "dvc.lock").read_text()
    assert lock_out_md5(rebuilt, "data/raw/housing.csv") != lock_out_md5(committed, "data/raw/housing.csv")
    assert "data/raw/housing.csv, which is on no remote" in result.output
