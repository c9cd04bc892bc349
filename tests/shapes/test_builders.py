"""build_shape works without S3: with a local-folder DVC remote, and with no remote at all."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.shapes.builders import FEATURE_BRANCH, SHAPES, build_shape, head, tool_env
from tests.support.project import sh

pytestmark = pytest.mark.integration


def test_a_shape_with_a_local_folder_remote_clones_and_pulls(tmp_path, fast_python_env):
    shape = SHAPES["subdir"]
    dev = build_shape(
        "subdir", tmp_path / "dev", tmp_path / "remote", origin=tmp_path / "origin.git", env=fast_python_env
    )

    assert head(dev, "main") == head(tmp_path / "origin.git", "main")
    assert sh(["git", "log", "-1", "--format=%P", "main"], dev).stdout.split()[1] == head(dev, FEATURE_BRANCH)
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(tmp_path / "origin.git"), str(clone)], tmp_path)
    env = tool_env(fast_python_env)
    sh(["dvc", "pull", "-q"], clone / shape.project, env)
    assert json.loads(sh(["dvc", "status", "--json"], clone / shape.project, env).stdout or "{}") == {}
    assert (clone / "README.md").is_file()
    assert (clone / "ml" / "data" / "raw.csv").is_file()


def test_a_shape_without_a_remote(tmp_path, fast_python_env):
    shape = SHAPES["foreach_dict"]
    dev = build_shape("foreach_dict", tmp_path / "dev", env=fast_python_env)

    lock = yaml.safe_load((dev / shape.lock).read_text())["stages"]
    assert set(lock) == set(shape.pipeline_stages)
    assert lock["train@large"]["cmd"].endswith("--n 3")
    assert sh(["git", "status", "--porcelain"], dev).stdout == ""
    assert sh(["dvc", "remote", "list"], dev, tool_env(fast_python_env)).stdout == ""
