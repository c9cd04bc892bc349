"""The DVC cache key's parts, on project models built in memory (no DVC, no files)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from ci_helpers import dvc_cache
from ci_helpers.dvc_cache import PulledObjects, compose_key, pulled_objects, restore_prefix, runner_os
from ci_helpers.errors import ConfigError
from ci_helpers.project import Out, Project, Stage

MODEL = "9f7e3bbe6c0fbba8e7715a365c3d0b2a"
TEST_CSV = "ed89f15a2d69ba5fa47d6f86b2eac449"
TRAIN_CSV = "a736bd59aaa880295e220117a2239a43"
FEATURES_DIR = "6c828bef125b3f6686e14d0af4612f38.dir"


def _project(root: str = "/ci/run-1/repo", **md5s: str | None) -> Project:
    """featurize -> train -> evaluate, with these outs; md5s override a recorded hash by out name."""
    recorded = {"model": MODEL, "test": TEST_CSV, "train": TRAIN_CSV, "features": FEATURES_DIR, **md5s}

    def out(path: str, stage: str, name: str, is_dir: bool = False, cached: bool = True, kind: str = "out") -> Out:
        return Out(path, stage, kind, cached, is_dir, recorded.get(name))

    def stage(name: str, *outs: Out) -> Stage:
        return Stage(name, "dvc.yaml", "", f"python {name}.py", (), (), outs, False, True)

    stages = (
        stage(
            "featurize",
            out("data/features/train.csv", "featurize", "train"),
            out("data/features/test.csv", "featurize", "test"),
            out("data/images", "featurize", "features", is_dir=True),
        ),
        stage("train", out("models/model.pkl", "train", "model")),
        stage("evaluate", out("metrics.json", "evaluate", "metrics", cached=False, kind="metrics")),
    )
    edges = (("featurize", "train"), ("train", "evaluate"))
    return Project(Path(root), Path(root), stages, edges, (), (), ())


def _key(project: Project, targets: list[str], os_name: str = "linux") -> str:
    return compose_key(pulled_objects(project, targets), os_name)


def test_the_key_is_the_os_and_16_hex_of_sha256_over_the_sorted_hashes():
    key = _key(_project(), ["models/model.pkl", "data/features/test.csv"])
    expected = hashlib.sha256("\n".join(sorted([MODEL, TEST_CSV])).encode()).hexdigest()[:16]
    assert key == f"mlops-dvc-linux-{expected}"
    assert re.fullmatch(r"mlops-dvc-linux-[0-9a-f]{16}", key)


def test_the_key_does_not_depend_on_target_order_duplicates_or_spelling():
    project = _project()
    one = _key(project, ["models/model.pkl", "data/features/test.csv"])
    assert _key(project, ["data/features/test.csv", "models/model.pkl"]) == one
    assert _key(project, ["./models/model.pkl", "data/features/test.csv", "models//model.pkl"]) == one
    assert _key(project, ["/ci/run-1/repo/models/model.pkl", "data/features/test.csv"]) == one


def test_the_same_commit_in_another_clone_folder_has_the_same_key():
    targets = ["models/model.pkl", "data/features/test.csv"]
    assert _key(_project("/ci/run-1/repo"), targets) == _key(_project("/home/runner/work/x/x"), targets)


def test_a_new_recorded_hash_of_a_pulled_out_is_a_new_key():
    targets = ["models/model.pkl", "data/features/test.csv"]
    assert _key(_project(model="0" * 32), targets) != _key(_project(), targets)


def test_a_change_to_an_out_that_is_not_pulled_keeps_the_key():
    targets = ["models/model.pkl", "data/features/test.csv"]
    assert _key(_project(train="1" * 32, features="2" * 32 + ".dir"), targets) == _key(_project(), targets)


def test_a_directory_out_counts_once_by_its_manifest_hash_whatever_is_pulled_inside_it():
    project = _project()
    pulled = pulled_objects(project, ["data/images/cat/1.png", "data/images/dog/2.png"])
    assert pulled == PulledObjects((FEATURES_DIR,), ())
    assert _key(project, ["data/images"]) == _key(project, ["data/images/cat/1.png"])
    # a file changed inside the directory changes its manifest's hash, so the key
    assert _key(_project(features="3" * 32 + ".dir"), ["data/images"]) != _key(project, ["data/images"])


def test_a_folder_that_holds_outs_covers_every_out_in_it():
    pulled = pulled_objects(_project(), ["data/features"])
    assert pulled.hashes == tuple(sorted([TRAIN_CSV, TEST_CSV]))


def test_outs_git_keeps_are_not_keyed():
    pulled = pulled_objects(_project(), ["metrics.json", "models/model.pkl"])
    assert pulled == PulledObjects((MODEL,), ())


def test_nothing_to_pull_is_a_key_over_no_objects():
    assert pulled_objects(_project(), []) == PulledObjects((), ())
    assert re.fullmatch(r"mlops-dvc-linux-[0-9a-f]{16}", _key(_project(), []))


def test_an_out_without_a_recorded_hash_is_marked_and_never_matches_a_recorded_state():
    unrecorded = _project(model=None)
    targets = ["models/model.pkl", "data/features/test.csv"]
    pulled = pulled_objects(unrecorded, targets)
    assert pulled == PulledObjects((TEST_CSV,), ("models/model.pkl",))
    key = compose_key(pulled, "linux")
    assert key.endswith("-unrecorded")
    assert key != _key(_project(), targets)
    # nor the key of pulling the other targets alone (the same objects, a different state)
    assert key.removesuffix("-unrecorded") != _key(_project(), ["data/features/test.csv"])


def test_the_os_is_part_of_the_key():
    project, targets = _project(), ["models/model.pkl"]
    assert _key(project, targets, "linux") != _key(project, targets, "macos")
    assert _key(project, targets, "macos").startswith("mlops-dvc-macos-")


def test_every_key_of_an_os_starts_with_its_restore_prefix(monkeypatch):
    monkeypatch.setattr(dvc_cache.platform, "system", lambda: "Darwin")
    assert restore_prefix() == "mlops-dvc-macos-"
    for targets in ([], ["models/model.pkl"], ["data/features"]):
        assert _key(_project(), targets, runner_os()).startswith(restore_prefix())
    assert compose_key(pulled_objects(_project(model=None), ["models/model.pkl"]), "linux").startswith(
        restore_prefix("linux")
    )


@pytest.mark.parametrize(("system", "name"), [("Linux", "linux"), ("Darwin", "macos"), ("Windows", "windows")])
def test_the_os_is_named_as_the_runner_names_it(monkeypatch, system, name):
    monkeypatch.setattr(dvc_cache.platform, "system", lambda: system)
    assert runner_os() == name


def test_a_target_dvc_does_not_track_is_refused_naming_it_and_the_fix():
    with pytest.raises(ConfigError) as raised:
        pulled_objects(_project(), ["models/model.pkl", "src/train.py"])
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert "pull target src/train.py is no DVC-tracked path of the project in /ci/run-1/repo" in message
    assert "pass a path that `dvc pull` takes" in message
    assert "\n" not in message


def test_a_target_outside_the_project_is_refused():
    with pytest.raises(ConfigError, match=r"pull target \.\./other/model\.pkl is outside the project"):
        pulled_objects(_project(), ["../other/model.pkl"])
