"""The DVC cache across runs: `ci-helpers dvc-cache-key` names what a pull needs; with the cache of
a first pr-validate restored (copied, as actions/cache does), a second run fetches nothing from S3.

Real git, real dvc, the moto S3 server behind a counting proxy."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ci_helpers.dvc_cache import PulledObjects, cache_dir, cache_key, compose_key, runner_os
from ci_helpers.flows.pr import PRValidationOptions, dvc_cache_key
from ci_helpers.project import load_project
from tests.shapes.builders import build_shape
from tests.support.project import sh, write_local_remote
from tests.support.proxy import Exchange, FlakyProxy
from tests.support.run import ci_helpers

pytestmark = pytest.mark.integration

# bytecode cached outside the venv and the repo: the shape builds' dvc starts twice as fast
FAST_PYTHON = {
    "PYTHONDONTWRITEBYTECODE": "",
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "mlops-actions-tests-pycache"),
}


def _key_outputs(checkout: Path, *args: str) -> dict[str, str]:
    result = ci_helpers("dvc-cache-key", *args, cwd=checkout)
    assert result.code == 0, result.output
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def _object_downloads(exchanges: list[Exchange], bucket: str) -> list[Exchange]:
    """GETs of objects (`/<bucket>/<key>`), not of listings (`/<bucket>?list-type=2...`)."""
    return [e for e in exchanges if e.method == "GET" and urlparse(e.path).path.startswith(f"/{bucket}/")]


def _key_of(repo: Path, **options) -> str:
    return dvc_cache_key(PRValidationOptions(repo=repo, **options)).key


def test_a_second_pr_validate_with_the_restored_cache_downloads_nothing_from_the_remote(project, tmp_path):
    first, second = project.checkout("pr-better", "first"), project.checkout("pr-better", "second")
    keyed = _key_outputs(first)  # through the CLI, reading mlops.yaml as pr-validate does
    restored = dvc_cache_key(PRValidationOptions(repo=second, eval_stage="evaluate"))
    assert restored.key == keyed["key"]  # the same PR commit, two fresh clones
    assert Path(keyed["path"]) == first / ".dvc" / "cache"
    assert restored.path == second / ".dvc" / "cache"
    assert restored.objects == 2  # models/model.pkl and data/features/test.csv, evaluate's DVC inputs

    with FlakyProxy(project.s3_endpoint) as proxy:
        write_local_remote(first, project.remote_url, endpoint=proxy.url)
        result = ci_helpers("pr-validate", "--no-track", "--report-json", str(tmp_path / "1.json"), cwd=first)
        assert result.code == 0, result.output
        run_one = _object_downloads(proxy.exchanges, project.bucket)
        pulled_bytes = sum(p.stat().st_size for p in [first / "models/model.pkl", first / "data/features/test.csv"])
        assert len(run_one) == 2  # the model and the test set: what the key covers
        assert sum(e.sent for e in run_one) == pulled_bytes

        # actions/cache: the first job's cache folder, saved under the key, restored at the second's path
        shutil.copytree(keyed["path"], restored.path, symlinks=True, dirs_exist_ok=True)
        write_local_remote(second, project.remote_url, endpoint=proxy.url)
        before = len(proxy.exchanges)
        result = ci_helpers("pr-validate", "--no-track", "--report-json", str(tmp_path / "2.json"), cwd=second)
        assert result.code == 0, result.output
        run_two = proxy.exchanges[before:]

    assert run_two, "the second run never asked the remote: the proxy saw nothing"  # it still checks the push
    assert _object_downloads(run_two, project.bucket) == []
    assert (second / "models/model.pkl").read_bytes() == (first / "models/model.pkl").read_bytes()
    assert _key_of(second, eval_stage="evaluate") == keyed["key"]  # the run did not change what the key names


def test_the_key_follows_the_pulled_outs_only(project):
    main, pr = project.checkout("main"), project.checkout("pr-better")
    assert _key_of(main, eval_stage="evaluate") != _key_of(pr, eval_stage="evaluate")  # a new model.pkl hash

    # a new out, then a new version of it, that evaluation never pulls: the same key
    before = _key_of(pr, eval_stage="evaluate")
    for rows in ("a,b\n1,2\n", "a,b\n1,2\n3,4\n"):
        (pr / "data" / "extra.csv").write_text(rows)
        sh(["dvc", "add", "-q", "data/extra.csv"], pr)
        assert _key_of(pr, eval_stage="evaluate") == before
    model = load_project(pr)
    extra = model.out_covering("data/extra.csv")
    assert extra is not None
    assert extra.md5  # recorded: the key ignored a real out
    # pulled, it is keyed
    keyed = cache_key(model, ["models/model.pkl", "data/features/test.csv", "data/extra.csv"])
    assert keyed.objects == 3
    assert keyed.key != before


def test_an_out_dvc_lock_does_not_record_gets_a_marked_key(project):
    checkout = project.checkout("pr-better")
    dvcyaml = checkout / "dvc.yaml"
    dvcyaml.write_text(
        dvcyaml.read_text().replace(
            "- models/model.pkl\n  evaluate", "- models/model.pkl\n      - models/extra.pkl\n  evaluate"
        )
    )
    options = {"model": "models/extra.pkl", "test_data": "data/features/test.csv", "target": "price"}

    marked = dvc_cache_key(PRValidationOptions(repo=checkout, **options))

    assert marked.key.endswith("-unrecorded")
    assert marked.objects == 1  # the test set; the model has no hash yet
    assert marked.key != _key_of(checkout, eval_stage="evaluate")


def test_the_key_path_is_where_dvc_keeps_the_cache_and_no_remote_is_asked(project, tmp_path):
    checkout = project.checkout("pr-better")
    before = dvc_cache_key(PRValidationOptions(repo=checkout, eval_stage="evaluate"))
    write_local_remote(checkout, project.remote_url, endpoint="http://127.0.0.1:9")  # nothing listens there
    elsewhere = tmp_path / "shared-dvc-cache"
    sh(["dvc", "config", "--local", "cache.dir", str(elsewhere)], checkout)

    after = dvc_cache_key(PRValidationOptions(repo=checkout, eval_stage="evaluate"))

    assert after.path == cache_dir(load_project(checkout)) == elsewhere
    assert after.key == before.key  # where the cache lives is no part of what it holds


def test_a_directory_out_is_keyed_by_its_manifest(project):
    checkout = project.checkout("pr-better")
    exported = checkout / "models" / "exported"  # an MLflow model folder, as --model takes one
    (exported / "artifacts").mkdir(parents=True)
    (exported / "MLmodel").write_text("flavors: {}\n")
    options = {"model": "models/exported", "test_data": "data/features/test.csv", "target": "price"}
    keys = []
    for weights in ("v1", "v2"):  # a file inside the directory changes
        (exported / "artifacts" / "weights.bin").write_text(weights)
        sh(["dvc", "add", "-q", "models/exported"], checkout)
        keys.append(dvc_cache_key(PRValidationOptions(repo=checkout, **options)))

    model = load_project(checkout)
    folder, test_csv = model.out_covering("models/exported"), model.out_covering("data/features/test.csv")
    assert folder is not None
    assert folder.is_dir
    assert folder.md5
    assert folder.md5.endswith(".dir")
    assert test_csv is not None
    assert test_csv.md5
    assert keys[1].objects == 2  # the manifest counts once, not per file
    assert keys[1].key == compose_key(PulledObjects(tuple(sorted([folder.md5, test_csv.md5])), ()), runner_os())
    assert keys[0].key != keys[1].key
    inside = cache_key(model, ["models/exported/artifacts/weights.bin", "data/features/test.csv"])
    assert inside.key == keys[1].key


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory) -> Path:
    """The `subdir` shape (git root on top, `dvc init --subdir` in ml/), no DVC remote: its bare origin."""
    base = tmp_path_factory.mktemp("cache-key-monorepo")
    build_shape("subdir", base / "dev", origin=base / "origin.git", env=FAST_PYTHON)
    return base / "origin.git"


def test_a_project_in_a_monorepo_subfolder_keys_its_own_cache(monorepo, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for clone in (one, two):
        sh(["git", "clone", "-q", str(monorepo), str(clone)], tmp_path)

    outputs = _key_outputs(one, "--repo", "ml", "--eval-stage", "evaluate")

    assert Path(outputs["path"]) == one / "ml" / ".dvc" / "cache"
    assert outputs["key"] == _key_of(two / "ml", eval_stage="evaluate")
    assert dvc_cache_key(PRValidationOptions(repo=two / "ml", eval_stage="evaluate")).objects == 1
