"""The pipeline's source inputs as one fingerprint, read from a checkout without its data.

A scheduled run on a worker that has never seen the project must tell "nothing changed" before it
pulls anything. What a `dvc repro` builds is fixed by what no stage produces: each stage's command
and declared outs, the params, the git-tracked files the stages depend on (code), and the `.dvc`
files of added and imported data (their recorded hashes; `dvc update --no-download` rewrites an
import's when its source changed). Intermediate data is left out on purpose: a dvc.lock committed
back after a run changes the hashes recorded for outs and the deps made from them, not the inputs,
so the next run of that commit still matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

from .adapters import git
from .project import Project, read_params

INPUTS_TAG = "mlops.inputs_sha256"  # on the runs and versions a scheduled run makes


def _git_blobs(project: Project, paths: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each project-relative path -> the (git path, blob id) of every tracked file at or under it."""
    if not paths:
        return {}
    listed = git.git(project.git_root, "ls-files", "-s", "--", *(project.git_path(path) for path in paths))
    blobs: list[tuple[str, str]] = []
    for line in listed.splitlines():
        meta, _, name = line.partition("\t")
        blobs.append((name, meta.split()[1]))
    found: dict[str, list[tuple[str, str]]] = {}
    for path in paths:
        prefix = project.git_path(path)
        found[path] = [(name, blob) for name, blob in blobs if name == prefix or name.startswith(prefix + "/")]
    return found


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def inputs_entries(project: Project) -> dict[str, object]:
    """What the fingerprint hashes, as JSON-ready data (the bench and the tests print it)."""
    made_by_pipeline = {out.path for stage in project.pipeline_stages for out in stage.outs}
    data_files = {stage.dvcfile for stage in project.stages if stage.is_data_source}
    source_deps: list[str] = []
    stages: dict[str, object] = {}
    for stage in project.pipeline_stages:
        stages[stage.name] = {
            "cmd": stage.cmd,
            "outs": sorted(out.path for out in stage.outs),
            "deps": sorted(stage.deps),
        }
        for dep in stage.deps:
            covering = project.out_covering(dep)
            if covering is None and dep not in source_deps:
                source_deps.append(dep)
            elif covering is not None and covering.path not in made_by_pipeline:
                data_files.add(project.stage(covering.stage).dvcfile)
    return {
        "stages": stages,
        "params": {key: repr(value) for key, value in sorted(read_params(project).items())},
        "code": {dep: blobs or "untracked" for dep, blobs in sorted(_git_blobs(project, source_deps).items())},
        # on disk, not in git: `dvc update --no-download` may just have rewritten an import's
        "data": {name: _file_digest(project.root / PurePosixPath(name)) for name in sorted(data_files)},
    }


def inputs_fingerprint(project: Project) -> str:
    """sha256 of `inputs_entries`: equal fingerprints, the same build."""
    text = json.dumps(inputs_entries(project), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def import_stages(project: Project) -> tuple[str, ...]:
    """The `.dvc` files that `dvc import` / `dvc import-url` wrote."""
    return tuple(stage.dvcfile for stage in project.stages if stage.is_import)
