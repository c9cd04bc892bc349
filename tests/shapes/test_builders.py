"""build_shape works without S3: with a local-folder DVC remote, and with no remote at all; its PR branches
move the metrics the way their names say."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.shapes.builders import FEATURE_BRANCH, PR_BRANCHES, SHAPES, build_shape, head, tool_env
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


def _metric(shown: dict, path: str, key: str) -> float:
    """`key` (dotted, as `dvc metrics show` prints it) of file `path` in `dvc metrics show --json`."""
    value = shown[""]["data"][path]["data"]
    for part in key.split("."):
        value = value[part]
    return value


def test_get_started_declares_top_level_metrics_plots_artifacts_and_its_pr_branches_move_the_metric(
    tmp_path, fast_python_env
):
    shape = SHAPES["get_started"]
    origin = tmp_path / "origin.git"
    dev = build_shape("get_started", tmp_path / "dev", tmp_path / "remote", origin=origin, env=fast_python_env)
    env = tool_env(fast_python_env)

    def dvc(*args: str) -> str:
        return sh(["dvc", *args], clone, env).stdout

    assert head(dev, "main") == head(origin, "main")
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    dvc("pull", "-q")
    assert tuple(dvc("stage", "list", "--all", "--name-only").split()) == shape.stages

    # what dvc.yaml declares at the top level is there after a plain `dvc pull`, all inside eval/
    spec = yaml.safe_load((clone / "dvc.yaml").read_text())
    assert spec["metrics"] == [shape.metrics_file]
    assert "metrics" not in spec["stages"]["evaluate"]
    assert spec["stages"]["evaluate"]["outs"] == ["eval"]
    plot_files = [path for plot in spec["plots"] for (definition,) in [plot.values()] for path in definition["y"]]
    assert len(plot_files) == 4
    assert all(path.startswith("eval/") and (clone / path).is_file() for path in plot_files), plot_files
    assert spec["artifacts"] == {"model": {"path": "models/model.json", "type": "model"}}
    assert (clone / "models" / "model.json").is_file()
    assert (clone / shape.metrics_file).is_file()
    assert sh(["git", "ls-files", "eval", "models/model.json"], clone).stdout == ""  # DVC-cached, not in git

    main = json.loads(dvc("metrics", "show", "--json"))
    assert set(main[""]["data"]) == {shape.metrics_file}
    assert set(main[""]["data"][shape.metrics_file]["data"]) == {"avg_prec", "roc_auc"}
    before = _metric(main, shape.metrics_file, shape.metric)

    metrics = {}
    for kind, branch in PR_BRANCHES.items():
        assert sh(["git", "rev-parse", f"origin/{branch}^"], clone).stdout.strip() == head(origin, "main")
        sh(["git", "checkout", "-q", branch], clone)
        dvc("pull", "-q")  # everything the branch's locks record was pushed
        metrics[kind] = _metric(json.loads(dvc("metrics", "show", "--json")), shape.metrics_file, shape.metric)
        status = json.loads(dvc("status", "--json") or "{}")
        if kind == "stale":  # train re-run with the new scale, evaluate not: its model dep changed
            assert set(status) == {"evaluate"}, status
            assert status["evaluate"] == [{"changed deps": {"models/model.json": "modified"}}]
        else:
            assert status == {}, (branch, status)

    assert metrics["regress"] < before * 0.95, (before, metrics)
    assert metrics["harmless"] > before, (before, metrics)
    assert metrics["stale"] == before, (before, metrics)  # evaluate did not run: main's metrics file
