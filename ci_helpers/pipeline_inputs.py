"""The pipeline's source inputs as one fingerprint, read from a checkout without its data.

A scheduled run on a worker that has never seen the project must tell "nothing changed" before it
pulls anything. What a `dvc repro` builds is fixed by what no stage produces: each stage's command,
working directory, declared deps and outs and flags, the params, the files the stages depend on
that no stage makes (code: their git blob ids, or their bytes when git does not track them), and the
`.dvc` files of added and imported data (their recorded hashes; `dvc update --no-download` rewrites
an import's when its source changed). Intermediate data is left out on purpose: a dvc.lock
committed back after a run changes the hashes recorded for outs and the deps made from them, not
the inputs, so the next run of that commit still matches.

Some inputs cannot be read from a checkout: a stage that DVC reruns every time (`always_changed`)
or that reads from outside the project (an `s3://` dep, say). For those the fingerprint is None:
the run cannot tell, so it builds.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from .adapters import git
from .project import Project, read_params

INPUTS_TAG = "mlops.inputs_sha256"  # on the runs and versions a scheduled run makes


def _git_relative(project: Project, dep: str) -> str | None:
    """`dep` (project-relative, maybe `../shared/x.py`) as git names it from the git root; None
    when it lies outside the repository."""
    target = os.path.normpath(project.root / dep)
    relative = os.path.relpath(target, project.git_root)
    if relative == ".." or relative.startswith(".." + os.sep) or os.path.isabs(relative):
        return None
    return PurePosixPath(Path(relative).as_posix()).as_posix()


def _git_blobs(project: Project, paths: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Each dep -> the (git path, blob id) of every tracked file at or under its git path."""
    if not paths:
        return {}
    listed = git.git(project.git_root, "ls-files", "-s", "--", *sorted(set(paths.values())))
    blobs: list[tuple[str, str]] = []
    for line in listed.splitlines():
        meta, _, name = line.partition("\t")
        blobs.append((name, meta.split()[1]))
    return {
        dep: [(name, blob) for name, blob in blobs if name == prefix or name.startswith(prefix.rstrip("/") + "/")]
        for dep, prefix in paths.items()
    }


def _disk_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (names and bytes); "missing" when absent."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if not path.is_dir():
        return "missing"
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".git" not in p.relative_to(path).parts):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def unknowable_inputs(project: Project) -> list[str]:
    """Why a checkout cannot tell this pipeline's inputs: its stages that DVC reruns every time
    or that read from outside the project (frozen stages aside: DVC never reruns them)."""
    reasons = []
    for stage in project.pipeline_stages:
        if stage.frozen:
            continue
        if stage.always_changed:
            reasons.append(f"stage '{stage.name}' is always_changed")
        reasons += [f"stage '{stage.name}' depends on {dep}" for dep in stage.external_deps]
    return reasons


def inputs_entries(project: Project) -> dict[str, object]:
    """What the fingerprint hashes, as JSON-ready data (the bench and the tests print it)."""
    made_by_pipeline = {out.path for stage in project.pipeline_stages for out in stage.outs}
    data_files = {stage.dvcfile for stage in project.stages if stage.is_data_source}
    source_deps: list[str] = []
    stages: dict[str, object] = {}
    for stage in project.pipeline_stages:
        stages[stage.name] = {
            "cmd": stage.cmd,
            "wdir": stage.wdir,
            "frozen": stage.frozen,
            "outs": sorted(out.path for out in stage.outs),
            "deps": sorted(stage.deps),
        }
        for dep in stage.deps:
            covering = project.out_covering(dep)
            if covering is None and dep not in source_deps:
                source_deps.append(dep)
            elif covering is not None and covering.path not in made_by_pipeline:
                data_files.add(project.stage(covering.stage).dvcfile)
    in_git = {dep: path for dep in source_deps if (path := _git_relative(project, dep)) is not None}
    blobs = _git_blobs(project, in_git)
    code = {
        # tracked: the blob ids at this commit; anything else (untracked, outside the repository):
        # its bytes on disk
        dep: blobs.get(dep) or _disk_digest(project.root / dep)
        for dep in sorted(source_deps)
    }
    return {
        "stages": stages,
        "params": {key: repr(value) for key, value in sorted(read_params(project).items())},
        "code": code,
        # what each .dvc file says of its data (an import's source, else the data's hash), not its
        # text: `dvc update --no-download` drops an import's out hash and rewrites the file's own
        # checksum without the source having changed
        "data": {name: _data_source_entry(project, name) for name in sorted(data_files)},
    }


def _data_source_entry(project: Project, dvcfile: str) -> object:
    stage = next((stage for stage in project.stages if stage.dvcfile == dvcfile and stage.is_data_source), None)
    if stage is None:
        return "missing"
    if stage.is_import:
        return [list(pair) for pair in stage.source_state]
    return sorted([out.path, out.md5 or ""] for out in stage.outs)


def inputs_fingerprint(project: Project) -> str | None:
    """sha256 of `inputs_entries`: equal fingerprints, the same build. None when the checkout
    cannot tell (`unknowable_inputs`)."""
    if unknowable_inputs(project):
        return None
    text = json.dumps(inputs_entries(project), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def import_stages(project: Project) -> tuple[str, ...]:
    """The `.dvc` files that `dvc import` / `dvc import-url` wrote."""
    return tuple(stage.dvcfile for stage in project.stages if stage.is_import)
