"""The rebuild plan of the example project, read through the project model."""

from pathlib import Path

import pytest

from ci_helpers.errors import ConfigError
from ci_helpers.project import load_project
from ci_helpers.rebuild_plan import plan_rebuild

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "housing"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example project as a git + DVC checkout (DVC needs `dvc init`; git, a work tree)."""
    import shutil
    import subprocess

    root = tmp_path_factory.mktemp("example") / "housing"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("mlflow.db", "mlruns", "__pycache__"))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    return load_project(root)


def test_forcing_train_reuses_upstream_and_reruns_downstream(example):
    plan = plan_rebuild(example, ["train"])
    assert plan.forced == ("train",)
    assert plan.downstream == ("evaluate",)
    assert plan.upstream == ("generate", "featurize")
    # inputs of train and evaluate made upstream; never the model train itself writes
    assert plan.pull_targets == ("data/features/train.csv", "data/features/test.csv")
    assert "models/model.pkl" not in plan.pull_targets
    assert plan.rebuilt_cached_outputs == ("models/model.pkl",)
    assert plan.rebuilt_outputs == ("models/model.pkl", "metrics.json")


def test_forcing_the_first_stage_rebuilds_everything_and_pulls_nothing(example):
    plan = plan_rebuild(example, ["generate"])
    assert plan.downstream == ("featurize", "train", "evaluate")
    assert plan.upstream == ()
    assert plan.pull_targets == ()


def test_unknown_stage_is_a_config_error_naming_the_closest(example):
    with pytest.raises(ConfigError, match=r"unknown DVC stage 'trian' \(did you mean train\?\)"):
        plan_rebuild(example, ["trian"])


def test_pipeline_inputs_are_code_params_and_dvc_yaml_not_outputs(example):
    inputs = example.pipeline_inputs
    assert {"dvc.yaml", "params.yaml", "src/train.py", "src/evaluate.py"} <= inputs
    assert "models/model.pkl" not in inputs
    assert "data/features/train.csv" not in inputs
