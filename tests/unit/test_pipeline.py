from pathlib import Path

import pytest

from ci_helpers.errors import ConfigError
from ci_helpers.pipeline import load_stages, pipeline_input_paths, plan_rebuild

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "housing"


def test_forcing_train_reuses_upstream_and_reruns_downstream():
    plan = plan_rebuild(load_stages(EXAMPLE), ["train"])
    assert plan.forced == ("train",)
    assert plan.downstream == ("evaluate",)
    assert plan.upstream == ("generate", "featurize")
    # inputs of train and evaluate made upstream; never the model train itself writes
    assert plan.pull_targets == ("data/features/train.csv", "data/features/test.csv")
    assert "models/model.pkl" not in plan.pull_targets
    assert plan.rebuilt_cached_outputs == ("models/model.pkl",)
    assert plan.rebuilt_outputs == ("models/model.pkl", "metrics.json")


def test_forcing_the_first_stage_rebuilds_everything_and_pulls_nothing():
    plan = plan_rebuild(load_stages(EXAMPLE), ["generate"])
    assert plan.downstream == ("featurize", "train", "evaluate") and plan.upstream == ()
    assert plan.pull_targets == ()


def test_unknown_stage_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown DVC stage 'trian'"):
        plan_rebuild(load_stages(EXAMPLE), ["trian"])


def test_pipeline_inputs_are_code_params_and_dvc_yaml_not_outputs():
    inputs = pipeline_input_paths(load_stages(EXAMPLE))
    assert {"dvc.yaml", "params.yaml", "src/train.py", "src/evaluate.py"} <= inputs
    assert "models/model.pkl" not in inputs and "data/features/train.csv" not in inputs
