"""The project model on every shape agrees with what DVC itself prints (`dvc stage list --all`,
`dvc metrics show`), and resolves what hand parsing got wrong."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ci_helpers.project import Project, load_project
from ci_helpers.rebuild_plan import plan_rebuild
from tests.shapes.builders import SHAPES, build_shape, tool_env


@pytest.fixture(scope="module")
def built(tmp_path_factory, fast_python_env) -> dict[str, Path]:
    """Every shape built once (no remote: nothing to push), keyed by name -> the project folder."""
    base = tmp_path_factory.mktemp("shapes-model")
    projects = {}
    for name, shape in SHAPES.items():
        git_root = build_shape(name, base / name, env=fast_python_env)
        projects[name] = git_root / shape.project if shape.project else git_root
    return projects


def _dvc(project: Path, *args: str) -> str:
    result = subprocess.run(["dvc", *args], cwd=project, env={**tool_env()}, capture_output=True, text=True, check=True)
    return result.stdout


@pytest.mark.parametrize("name", SHAPES)
def test_stage_names_are_dvcs_own(built, name):
    project = load_project(built[name])
    listed = [line.strip() for line in _dvc(built[name], "stage", "list", "--all", "--name-only").splitlines()]
    assert sorted(project.stage_names) == sorted(line for line in listed if line)
    assert sorted(project.stage_names) == sorted(SHAPES[name].stages)


@pytest.mark.parametrize("name", SHAPES)
def test_edges_are_those_of_dvcs_own_graph(built, name):
    """The model reads the edges from DVC's outs trie, not DVC's networkx graph: the same edges."""
    from dvc.repo import Repo

    from ci_helpers.project import _address

    project = load_project(built[name])
    with Repo(str(project.root)) as repo:
        graph = {(_address(up, project.root), _address(down, project.root)) for down, up in repo.index.graph.edges}
    assert set(project.edges) == graph
    assert graph, "a shape without edges checks nothing"


@pytest.mark.parametrize("name", SHAPES)
def test_metrics_files_are_those_dvc_metrics_show_reads(built, name):
    project = load_project(built[name])
    shown = json.loads(_dvc(built[name], "metrics", "show", "--json"))
    files = set((shown.get("") or {}).get("data", {}))
    assert files, shown
    assert set(project.metrics_files) == files


@pytest.mark.parametrize("name", SHAPES)
def test_nothing_is_left_unresolved_and_every_stage_is_locked(built, name):
    project = load_project(built[name])
    for stage in project.stages:
        assert stage.locked, stage.name
        for path in (*stage.deps, *(out.path for out in stage.outs)):
            assert "${" not in path, (stage.name, path)
            assert not path.startswith("../"), (stage.name, path)  # wdir applied: relative to the project
        assert "${" not in (stage.cmd or ""), stage.name


@pytest.mark.parametrize("name", SHAPES)
def test_forcing_the_training_stage_rebuilds_it_and_its_downstream(built, name):
    shape = SHAPES[name]
    project = load_project(built[name])
    for stage_arg, rebuilt_entries in shape.rebuilt.items():
        plan = plan_rebuild(project, [stage_arg])
        prefix = str(Path(shape.dvcyaml).parent)
        expected = {entry if prefix == "." else f"{shape.dvcyaml}:{entry}" for entry in rebuilt_entries}
        assert set(plan.rebuilt) == expected, stage_arg
        # never pull what the rebuild writes; always pull DVC-cached inputs made elsewhere
        rebuilt_outs = {out.path for name in plan.rebuilt for out in project.stage(name).outs}
        assert not set(plan.pull_targets) & rebuilt_outs
        for target in plan.pull_targets:
            out = project.out_covering(target)
            assert out is not None, target
            assert out.cached, target
            assert out.stage not in plan.rebuilt, target


def test_foreach_group_and_items(built):
    project = load_project(built["foreach_list"])
    assert project.resolve_stages(["train"], "--stage") == ("train@small", "train@large")
    assert project.resolve_stages(["train@large"], "--stage") == ("train@large",)
    assert project.downstream_of(("train@small",)) == ("evaluate",)
    assert project.upstream_of(("train@small",)) == ("data/raw.csv.dvc", "prep")


def test_wdir_paths_are_relative_to_the_project(built):
    train = load_project(built["wdir"]).stage("train")
    assert train.wdir == "src"
    assert set(train.deps) >= {"src/train.py", "data/prepared.csv"}
    assert [out.path for out in train.outs] == ["models/model.json"]


def test_two_dvc_yaml_files_are_addressed_by_path(built):
    project = load_project(built["two_dvcyaml"])
    assert project.stage("sub/dvc.yaml:train").dvcfile == "sub/dvc.yaml"
    assert project.stage("train").dvcfile == "dvc.yaml"
    assert set(project.lockfiles) == {"dvc.lock", "sub/dvc.lock"}


def test_a_subdirectory_project_maps_paths_to_the_git_root(built):
    project: Project = load_project(built["subdir"])
    assert project.prefix == "ml"
    assert project.git_path("dvc.lock") == "ml/dvc.lock"
    assert project.project_path("ml/params.yaml") == "params.yaml"
    assert project.project_path("app/main.py") is None
    assert "params.yaml" in project.pipeline_inputs


def test_a_directory_out_is_known_as_one(built):
    train = load_project(built["dir_out"]).stage("train")
    (model,) = train.outs
    assert model.path == "models"
    assert model.is_dir
    assert model.cached
    assert (model.md5 or "").endswith(".dir")


def test_top_level_metrics_plots_params_and_artifacts(tmp_path):
    root = build_shape("foreach_list", tmp_path / "p")
    (root / "dvc.yaml").write_text(
        (root / "dvc.yaml").read_text()
        + "metrics:\n  - extra/metrics.json\nplots:\n  - extra/plot.csv\n"
        + "params:\n  - extra/params.yaml\nartifacts:\n  mymodel:\n    path: models/small.json\n    type: model\n"
    )
    (root / "extra").mkdir()
    (root / "extra" / "metrics.json").write_text('{"auc": 0.5}')
    (root / "extra" / "params.yaml").write_text("lr: 0.1\n")
    project = load_project(root)
    assert "extra/metrics.json" in project.metrics_files
    assert project.top_level_plots == ("extra/plot.csv",)
    assert project.top_level_params == ("extra/params.yaml",)
    assert project.artifacts == {"mymodel": "models/small.json"}


@pytest.mark.parametrize("name", SHAPES)
def test_the_inputs_fingerprint_follows_inputs_not_the_lock(built, name, tmp_path):
    """The Airflow repo mode's "nothing changed" key: a lock committed back after a run (new out
    and intermediate hashes) leaves it; a params value or a committed code change moves it."""
    import re
    import shutil

    from ci_helpers.pipeline_inputs import inputs_entries, inputs_fingerprint

    shape = SHAPES[name]
    git_root = built[name].parents[len(Path(shape.project).parts) - 1] if shape.project else built[name]
    copy_root = tmp_path / "copy"
    shutil.copytree(git_root, copy_root, symlinks=True)
    project_dir = copy_root / shape.project if shape.project else copy_root
    project = load_project(project_dir)
    before = inputs_fingerprint(project)
    assert inputs_fingerprint(load_project(project_dir)) == before  # stable across reads

    for lock in project.lockfiles:  # every recorded hash rewritten, as after a retrain
        path = project_dir / lock
        path.write_text(re.sub(r"(md5: )([0-9a-f]{8})", r"\g<1>00000000", path.read_text()))
    assert inputs_fingerprint(load_project(project_dir)) == before

    entries = inputs_entries(project)
    assert entries["stages"], "a shape without stages checks nothing"
    code = next((dep for dep, blobs in entries["code"].items() if blobs != "untracked"), None)
    if code is not None:
        tracked = project_dir / code
        target = tracked if tracked.is_file() else next(p for p in sorted(tracked.rglob("*")) if p.is_file())
        target.write_text(target.read_text() + "\n# changed\n")
        subprocess.run(["git", "commit", "-qam", "code change"], cwd=copy_root, check=True, env={**tool_env()})
        assert inputs_fingerprint(load_project(project_dir)) != before
        before = inputs_fingerprint(load_project(project_dir))
    params_file = next(iter(project.top_level_params or ()), None) or next(
        (f for stage in project.pipeline_stages for f in stage.params_files), None
    )
    assert code is not None or params_file is not None, "neither code nor params: nothing checked"
    if params_file is not None:
        path = project_dir / params_file
        path.write_text(path.read_text() + "\nmlops_test_extra: 1\n")
        assert inputs_fingerprint(load_project(project_dir)) != before


def test_the_inputs_fingerprint_sees_code_outside_the_project_and_refuses_what_it_cannot_see(tmp_path):
    """A monorepo project (subdir ml/) whose stage reads ../shared/util.py: a committed change there
    moves the fingerprint. A stage that reads s3:// or is always_changed: no fingerprint (the run
    builds), unless frozen."""
    from ci_helpers.pipeline_inputs import inputs_fingerprint, unknowable_inputs

    env = {**tool_env()}
    repo = tmp_path / "mono"
    (repo / "ml").mkdir(parents=True)
    (repo / "shared").mkdir()
    (repo / "shared" / "util.py").write_text("VALUE = 1\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, env=env)
    subprocess.run(["dvc", "init", "-q", "--subdir"], cwd=repo / "ml", check=True, env=env)
    (repo / "ml" / "params.yaml").write_text("lr: 0.1\n")
    dvc_yaml = repo / "ml" / "dvc.yaml"
    dvc_yaml.write_text(
        "stages:\n  train:\n    cmd: python ../shared/util.py > model.txt\n"
        "    deps: [../shared/util.py]\n    params: [lr]\n    outs: [model.txt]\n"
    )

    def commit(message: str) -> None:
        subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True, env=env)

    commit("project")
    before = inputs_fingerprint(load_project(repo / "ml"))
    assert before is not None
    (repo / "shared" / "util.py").write_text("VALUE = 2\n")
    commit("shared code changed")
    assert inputs_fingerprint(load_project(repo / "ml")) != before

    dvc_yaml.write_text(
        dvc_yaml.read_text() + "  fetch:\n    cmd: echo\n    deps:\n      - s3://bucket/raw.csv\n    outs: [raw.csv]\n"
    )
    project = load_project(repo / "ml")
    assert inputs_fingerprint(project) is None
    assert unknowable_inputs(project) == ["stage 'fetch' depends on s3://bucket/raw.csv"]
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace(
            "    deps:\n      - s3://bucket/raw.csv\n", "    deps:\n      - s3://bucket/raw.csv\n    frozen: true\n"
        )
    )
    assert inputs_fingerprint(load_project(repo / "ml")) is not None
    dvc_yaml.write_text(
        dvc_yaml.read_text()
        .replace("    frozen: true\n", "    always_changed: true\n")
        .replace("    deps:\n      - s3://bucket/raw.csv\n", "")
    )
    assert unknowable_inputs(load_project(repo / "ml")) == ["stage 'fetch' is always_changed"]
