"""The provenance statement of a registered version and `ci-helpers verify`, on real parts: a
master-build on moto S3 and the MLflow server, register-model on the embedded sqlite default."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.conftest import MLFLOW_BUCKET
from tests.support.project import sh, write_local_remote
from tests.support.provenance_schema import assert_valid_statement
from tests.support.run import ci_helpers, github_env, read_outputs
from tests.support.servers import s3_client

pytestmark = pytest.mark.integration

CI_IDENTITY = {"GIT_COMMITTER_NAME": "CI Bot", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}


def statement_path(name: str, version: str) -> str:
    return f"provenance/{name}/v{version}/statement.intoto.json"


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def served_digests(uri: str, name: str, version: str, tmp: Path) -> dict[str, str]:
    """sha256 of each file MLflow serves for the version, fetched as a deploy job fetches it."""
    import hashlib

    import mlflow.artifacts

    from ci_helpers.adapters.tracking import process_default_tracking_uri

    with process_default_tracking_uri(uri):
        local = Path(
            mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp), tracking_uri=uri)
        )
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    root = local.parent if local.is_file() else local
    digests = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    digests.pop("registered_model_meta", None)  # MLflow's registry rewrites it at each registration
    return digests


def stored_statement(uri: str, name: str, version: str, tmp: Path) -> tuple[dict, bytes]:
    client = _client(uri)
    run_id = client.get_model_version(name, version).run_id
    local = client.download_artifacts(run_id, statement_path(name, version), str(tmp))
    data = Path(local).read_bytes()
    return json.loads(data), data


def _verify(uri: str, model: str, *args: str, cwd: Path, env: dict | None = None):
    return ci_helpers("verify", model, "--tracking-uri", uri, *args, cwd=cwd, env=env)


def _overwrite_one_byte(endpoint: str, bucket: str, key: str) -> bytes:
    s3 = s3_client(endpoint)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    tampered = bytes([original[0] ^ 0xFF]) + original[1:]
    s3.put_object(Bucket=bucket, Key=key, Body=tampered)
    return original


def test_master_build_statement_on_s3_and_verify_catches_each_tamper(project, mlflow_server, tmp_path):
    import hashlib

    uri, name = mlflow_server.url, f"housing-{uuid.uuid4().hex[:8]}"
    checkout = project.checkout("dev-model")
    built = project.head("dev-model")
    gh = github_env(
        tmp_path / "gh",
        GITHUB_SERVER_URL="https://github.example",
        GITHUB_REPOSITORY="acme/housing",
        GITHUB_RUN_ID="4242",
        GITHUB_REF="refs/heads/dev-model",
        GITHUB_WORKFLOW_REF="acme/housing/.github/workflows/main.yml@refs/heads/dev-model",
    )
    result = ci_helpers(
        "master-build", "--model-name", name, "--tracking-uri", uri, "--threshold", "metrics.r2_score>=0.1",
        cwd=checkout, env={**gh, **CI_IDENTITY},
    )  # fmt: skip
    assert result.code == 0, result.output
    assert "done: provenance statement written" in result.output
    outputs = read_outputs(tmp_path / "gh" / "output")
    version = outputs["model-version"]

    statement, data = stored_statement(uri, name, version, tmp_path / "stored")
    assert_valid_statement(statement)
    # the subjects are the files MLflow serves (S3 behind the server), byte for byte
    served = served_digests(uri, name, version, tmp_path / "served")
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == served
    assert "MLmodel" in served
    # the version's tag is the stored statement's digest; the step output is the same statement
    tags = _client(uri).get_model_version(name, version).tags
    assert tags["mlops.provenance_sha256"] == hashlib.sha256(data).hexdigest()
    assert Path(outputs["statement-path"]).read_bytes() == data
    build = statement["predicate"]["buildDefinition"]
    assert build["buildType"] == "https://github.com/org/mlops-actions/provenance/model-build/v1"
    assert build["externalParameters"]["stages"] == ["train", "evaluate"]
    assert build["externalParameters"]["gate"]["thresholds"] == ["metrics.r2_score>=0.1"]
    origin_uri = "git+" + Path(project.origin).absolute().as_uri()
    assert {"uri": origin_uri, "digest": {"gitCommit": built}} in build["resolvedDependencies"]
    names = {dep.get("name") for dep in build["resolvedDependencies"]}
    assert {"data/features/train.csv", "data/features/test.csv", "params.yaml"} <= names
    details = statement["predicate"]["runDetails"]
    assert (
        details["builder"]["id"]
        == "https://github.example/acme/housing/.github/workflows/main.yml@refs/heads/dev-model"
    )
    assert details["metadata"]["invocationId"] == "https://github.example/acme/housing/actions/runs/4242"
    assert {"name": "mlflow-run", "uri": f"runs:/{outputs['run-id']}"}.items() <= details["byproducts"][0].items()
    model_out = next(b for b in details["byproducts"] if b["name"] == "models/model.pkl")

    # untouched: exit 0, by alias and by number, and against the DVC remote
    assert _verify(uri, f"{name}@staging", cwd=tmp_path).code == 0
    by_number = _verify(uri, f"{name}/{version}", cwd=tmp_path)
    assert by_number.code == 0, by_number.output
    remote = _verify(uri, f"{name}@staging", "--against-remote", "--repo", str(checkout), cwd=tmp_path)
    assert remote.code == 0, remote.output
    assert f"holds models/model.pkl at md5 {model_out['annotations']['dvcHash']}" in remote.output

    # 1. one byte of the model object overwritten in the artifact store
    client = _client(uri)
    source = client.get_model_version(name, version).source
    location = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    key = f"mlflow/{location.removeprefix('mlflow-artifacts:/').strip('/')}/model.pkl"
    original = _overwrite_one_byte(project.s3_endpoint, MLFLOW_BUCKET, key)
    tampered = _verify(uri, f"{name}@staging", cwd=tmp_path)
    assert tampered.code == 1, tampered.output
    assert f"model.pkl: expected sha256 {served['model.pkl']}, got sha256 " in tampered.output
    s3_client(project.s3_endpoint).put_object(Bucket=MLFLOW_BUCKET, Key=key, Body=original)
    assert _verify(uri, f"{name}@staging", cwd=tmp_path).code == 0

    # 2. the version's digest tag changed
    client.set_model_version_tag(name, version, "mlops.provenance_sha256", "0" * 64)
    retagged = _verify(uri, f"{name}/{version}", cwd=tmp_path)
    assert retagged.code == 1, retagged.output
    assert f"{statement_path(name, version)}: expected sha256 {'0' * 64}" in retagged.output
    client.set_model_version_tag(name, version, "mlops.provenance_sha256", hashlib.sha256(data).hexdigest())

    # 3. the statement artifact replaced (a forged one naming other digests)
    forged = tmp_path / "forged" / "statement.intoto.json"
    forged.parent.mkdir()
    statement["subject"][0]["digest"]["sha256"] = "f" * 64
    forged.write_text(json.dumps(statement))
    client.log_artifact(
        client.get_model_version(name, version).run_id, str(forged), statement_path(name, version).rpartition("/")[0]
    )
    replaced = _verify(uri, f"{name}@staging", cwd=tmp_path)
    assert replaced.code == 1, replaced.output
    assert f"{statement_path(name, version)}: expected sha256 {hashlib.sha256(data).hexdigest()}" in replaced.output
    forged.write_bytes(data)
    client.log_artifact(
        client.get_model_version(name, version).run_id, str(forged), statement_path(name, version).rpartition("/")[0]
    )
    assert _verify(uri, f"{name}@staging", cwd=tmp_path).code == 0

    # 4. the DVC remote's model object differs
    md5 = model_out["annotations"]["dvcHash"]
    dvc_key = f"dvc/files/md5/{md5[:2]}/{md5[2:]}"
    pushed = _overwrite_one_byte(project.s3_endpoint, project.bucket, dvc_key)
    drifted = _verify(uri, f"{name}@staging", "--against-remote", "--repo", str(checkout), cwd=tmp_path)
    assert drifted.code == 1, drifted.output
    assert f"models/model.pkl: expected md5 {md5}, got md5 " in drifted.output
    assert "testing-secret-key" not in drifted.output

    s3_client(project.s3_endpoint).put_object(Bucket=project.bucket, Key=dvc_key, Body=pushed)

    # a re-run of the build of the same commit reuses the version and keeps its one valid statement
    rerun = project.root / "again"
    sh(["git", "clone", "-q", str(project.origin), str(rerun)], project.root)
    sh(["git", "checkout", "-q", "-B", "dev-model", built], rerun)
    write_local_remote(rerun, project.remote_url)
    again = ci_helpers(
        "master-build", "--model-name", name, "--tracking-uri", uri, "--lock-mode", "none", cwd=rerun, env=CI_IDENTITY
    )
    assert again.code == 0, again.output
    assert "provenance statement kept" in again.output
    assert stored_statement(uri, name, version, tmp_path / "after")[1] == data


def _run_with_model(uri: str) -> str:
    import mlflow
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    from ci_helpers.adapters.tracking import process_default_tracking_uri

    with process_default_tracking_uri(uri):
        mlflow.set_experiment("provenance-tests")
        with mlflow.start_run() as run:
            model = DummyClassifier().fit([[0], [1]], [0, 1])
            mlflow.sklearn.log_model(
                model, name="model", pip_requirements=["scikit-learn"], serialization_format="cloudpickle"
            )
    return run.info.run_id


def test_register_model_on_the_sqlite_default_and_a_version_registered_by_hand(tmp_path):
    import hashlib

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    name = "churn"
    run_id = _run_with_model(uri)
    registered = ci_helpers(
        "register-model", "--model-name", name, "--run-id", run_id, "--alias", "production", "--tracking-uri", uri,
        cwd=tmp_path,
    )  # fmt: skip
    assert registered.code == 0, registered.output
    statement, _ = stored_statement(uri, name, "1", tmp_path / "stored")
    assert_valid_statement(statement)
    served = served_digests(uri, name, "1", tmp_path / "served")
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == served
    assert (
        statement["predicate"]["runDetails"]["builder"]["id"]
        == "https://github.com/org/mlops-actions/builders/local@v1"
    )
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["command"] == "register-model"

    gh = github_env(tmp_path / "gh")
    kept = tmp_path / "deploy" / "model"
    ok = _verify(uri, "churn@production", "--download-to", str(kept), cwd=tmp_path, env=gh)
    assert ok.code == 0, ok.output
    assert "verified models:/churn/1 (churn@production)" in ok.output
    # the deploy takes the version pinned by number, and the very files that were checked
    assert read_outputs(tmp_path / "gh" / "output")["model-uri"] == "models:/churn/1"
    assert {p.name for p in kept.iterdir()} >= {"MLmodel", "model.pkl"}
    as_json = json.loads(_verify(uri, "churn", "--json", cwd=tmp_path).stdout)
    assert (as_json["model_uri"], as_json["verified"]) == ("models:/churn/1", True)

    # a re-run of the same registration finds v1 again: no second version
    again = ci_helpers(
        "register-model", "--model-name", name, "--run-id", run_id, "--alias", "production", "--tracking-uri", uri,
        cwd=tmp_path,
    )  # fmt: skip
    assert again.code == 0, again.output
    assert "provenance statement kept" in again.output
    assert [str(v.version) for v in _client(uri).search_model_versions(f"name='{name}'")] == ["1"]

    # a re-run never re-certifies a version whose tag and statement disagree
    client = _client(uri)
    _, data = stored_statement(uri, name, "1", tmp_path / "before")
    client.set_model_version_tag(name, "1", "mlops.provenance_sha256", "0" * 64)
    refused = ci_helpers(
        "register-model", "--model-name", name, "--run-id", run_id, "--alias", "production", "--tracking-uri", uri,
        cwd=tmp_path,
    )  # fmt: skip
    assert refused.code == 1, refused.output
    assert "0" * 64 in refused.output
    assert hashlib.sha256(data).hexdigest() in refused.output
    assert stored_statement(uri, name, "1", tmp_path / "kept")[1] == data
    # no tag at all (a crash between the statement and its tag): the re-run finishes it
    client.delete_model_version_tag(name, "1", "mlops.provenance_sha256")
    finished = ci_helpers(
        "register-model", "--model-name", name, "--run-id", run_id, "--alias", "production", "--tracking-uri", uri,
        cwd=tmp_path,
    )  # fmt: skip
    assert finished.code == 0, finished.output
    assert "provenance statement written" in finished.output
    assert _verify(uri, "churn/1", cwd=tmp_path).code == 0

    # a storage URI belongs to no run: no statement, so no alias onto it, and nothing registered
    storage = ci_helpers(
        "register-model", "--model-name", name, "--model-uri", (tmp_path / "nowhere").as_uri(), "--alias",
        "production", "--tracking-uri", uri, cwd=tmp_path,
    )  # fmt: skip
    assert storage.code == 2, storage.output
    assert "belongs to no MLflow run" in storage.output
    assert len(client.search_model_versions(f"name='{name}'")) == 1

    # registered by hand, straight through MLflow: no statement, exit 2
    from ci_helpers.adapters.tracking import process_default_tracking_uri

    with process_default_tracking_uri(uri):  # the sqlite registry looks the logged model up there
        client.create_model_version(name, client.get_model_version(name, "1").source, run_id=run_id)
    bare = _verify(uri, "churn/2", cwd=tmp_path)
    assert bare.code == 2, bare.output
    assert "v2 of 'churn' has no provenance statement" in bare.output
    assert len(bare.output.strip().splitlines()) == 1, bare.output

    # the statement of v1 replayed onto v2 (tag and artifact): a statement of another version
    version_two_run = client.get_model_version(name, "2").run_id
    replay = tmp_path / "replay" / "statement.intoto.json"
    replay.parent.mkdir()
    replay.write_bytes(data)
    client.log_artifact(version_two_run, str(replay), statement_path(name, "2").rpartition("/")[0])
    client.set_model_version_tag(name, "2", "mlops.provenance_sha256", hashlib.sha256(data).hexdigest())
    replayed = _verify(uri, "churn/2", cwd=tmp_path)
    assert replayed.code == 1, replayed.output
    assert "(the model it describes): expected churn/2, got churn/1" in replayed.output

    # unknown version, bad input: exit 2 with one line
    assert _verify(uri, "churn/9", cwd=tmp_path).code == 2
    assert _verify(uri, "churn@@x", cwd=tmp_path).code == 2
    zero = _verify(uri, "churn/0", cwd=tmp_path)  # trace's parser: a version is a number from 1
    assert zero.code == 2, zero.output
    assert "a number from 1" in zero.output


def test_an_unreachable_artifact_store_is_named_not_the_tracking_server(tmp_path):
    """A sqlite store whose experiment keeps its artifacts on S3 directly, at a dead endpoint: the
    error names that endpoint (exit 3), not the MLflow store."""
    from ci_helpers.adapters.tracking import process_default_tracking_uri
    from tests.support.servers import refused_port

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    dead = f"http://127.0.0.1:{refused_port()}"
    client = _client(uri)
    with process_default_tracking_uri(uri):
        experiment = client.create_experiment("dead-store", artifact_location="s3://models-bucket/artifacts")
        run = client.create_run(experiment)
        client.set_terminated(run.info.run_id)
        client.create_registered_model("churn")
        client.create_model_version(
            "churn", f"s3://models-bucket/artifacts/{run.info.run_id}/artifacts/model", run_id=run.info.run_id
        )
    client.set_model_version_tag("churn", "1", "mlops.provenance_sha256", "a" * 64)
    env = {"MLFLOW_S3_ENDPOINT_URL": dead, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "PLANTED-s3-7"}
    result = ci_helpers("verify", "churn/1", "--tracking-uri", uri, cwd=tmp_path, env=env)
    assert result.code == 3, result.output
    assert f"the artifact store s3://models-bucket at {dead} is unreachable" in result.output
    assert "PLANTED-s3-7" not in result.output


def test_verify_names_an_unreachable_tracking_server_and_no_secret(tmp_path):
    from tests.support.servers import refused_port

    uri = f"http://ci-user:PLANTED-verify-9@127.0.0.1:{refused_port()}"
    result = _verify(uri, "churn@production", cwd=tmp_path)
    assert result.code == 3, result.output
    assert "127.0.0.1" in result.output
    assert "PLANTED-verify-9" not in result.output


def test_against_remote_checks_a_directory_manifest_by_its_bytes(tmp_path):
    """A `.dir` manifest on the remote rewritten (two files' entries swapped: every object it names
    is still there, with its right md5) is caught by the md5 of the manifest's own bytes."""
    import sys

    import yaml

    from ci_helpers.adapters import dvc
    from ci_helpers.flows.verify import RemoteTarget, _remote_mismatches
    from ci_helpers.provenance_statement import DvcDependency

    repo, remote = tmp_path / "repo", tmp_path / "remote"
    (repo / "model").mkdir(parents=True)
    (repo / "model" / "a.bin").write_bytes(b"weights a")
    (repo / "model" / "b.bin").write_bytes(b"weights b")
    sh(["git", "init", "-q"], repo)
    for command in (
        ["init", "-q"],
        ["remote", "add", "-d", "store", str(remote)],
        ["add", "-q", "model"],
        ["push", "-q"],
    ):
        sh([str(Path(sys.executable).parent / "dvc"), *command], repo)

    md5 = yaml.safe_load((repo / "model.dvc").read_text())["outs"][0]["md5"]
    target = RemoteTarget(
        "store", dvc.remote_endpoint(repo, "store"), str(remote), DvcDependency("model", md5, str(remote))
    )
    assert _remote_mismatches(repo, target, {}, False) == []

    manifest = remote / "files" / "md5" / md5[:2] / md5[2:]
    entries = json.loads(manifest.read_text())
    entries[0]["relpath"], entries[1]["relpath"] = entries[1]["relpath"], entries[0]["relpath"]
    manifest.chmod(0o644)
    manifest.write_text(json.dumps(entries))
    (found,) = _remote_mismatches(repo, target, {}, False)
    assert found.file == "model (.dir manifest)"
    assert found.got.startswith("a manifest whose bytes hash to md5 ")


def test_airflow_promote_writes_no_statement_naming_its_commit_for_a_version_of_another_commit(tmp_path):
    """A version reused from an older run of the same outputs, registered at another commit: a
    statement composed now would name this run's commit. It is left as it is."""
    from ci_helpers.adapters.registry import RegisteredVersion, find_run_model
    from ci_helpers.adapters.tracking import process_default_tracking_uri
    from ci_helpers.flows.scheduled import _attach_statement
    from ci_helpers.pipeline_run import PipelineRun

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = _run_with_model(uri)
    client = _client(uri)
    with process_default_tracking_uri(uri):
        client.create_registered_model("churn")
        source, model_id = find_run_model(uri, run_id, "model")
        client.create_model_version(
            "churn", source, run_id=run_id, tags={"mlops.git_commit": "a" * 40}, model_id=model_id
        )
    pipeline = PipelineRun(str(tmp_path / "no-project"), uri, "b" * 40, "f" * 64, True, run_id)
    _attach_statement(pipeline, RegisteredVersion("churn", "1", source, run_id, True), "production", None, "dag", None)
    assert "mlops.provenance_sha256" not in client.get_model_version("churn", "1").tags
