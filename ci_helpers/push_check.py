"""The push check: which recorded outs are not wholly on the DVC remote, at a cost that follows the
change rather than the remote.

What a base commit records was pushed and verified there (master-build verifies every out its
lock records before the lock reaches the branch), so a directory out whose `.dir` hash is the
base's is trusted without a request, and a changed directory is verified for the files its base
manifest does not list. Without a base, a directory's manifest and every file it lists are asked
about, in as few requests as the question allows (adapters/remote_objects). `deep` asks about every
object of every out, as a scheduled audit does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .adapters import git
from .adapters.remote_objects import remote_objects
from .project import Project


@dataclass(frozen=True)
class PushBase:
    """The out hashes a base commit records, by project path."""

    name: str  # how the detail names it: the ref as given, or a short commit
    commit: str
    hashes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PushCheck:
    """Which outs are not wholly on the remote, and what was trusted and asked to say so."""

    missing: tuple[str, ...]
    detail: str


def _parse(text: str | None, path: str) -> dict:
    """A lock or .dvc file's content, read with DVC's own YAML loader; {} when it is absent or
    does not parse (then nothing in it is a base)."""
    from dvc.exceptions import DvcException
    from dvc.utils.serialize import parse_yaml

    if not text:
        return {}
    try:
        data = parse_yaml(text, path)
    except DvcException:
        return {}
    return data if isinstance(data, dict) else {}


def _md5_outs(entries: object, folder: PurePosixPath) -> dict[str, str]:
    """Project path -> md5 of the outs a lock entry or .dvc file lists; only DVC 3's md5 hashes
    (a legacy hash's objects live elsewhere on the remote)."""
    found = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("hash") == "md5" and entry.get("md5") and entry.get("path"):
            path = PurePosixPath(os.path.normpath(folder / str(entry["path"]))).as_posix()
            found[path] = str(entry["md5"])
    return found


def read_push_base(project: Project, name: str, commit: str) -> PushBase:
    """The out hashes recorded at `commit`, mapped to project paths through the current project's
    stages (a lock entry by stage name, its paths relative to the stage's wdir; a .dvc file's
    relative to its folder). An out the base does not record under the same path has no base."""
    files: dict[str, dict] = {}

    def content(path: str) -> dict:
        if path not in files:
            files[path] = _parse(git.read_file_at(project.root, commit, path), path)
        return files[path]

    hashes: dict[str, str] = {}
    for stage in project.stages:
        if stage.is_data_source:
            data = content(stage.dvcfile)
            folder = PurePosixPath(stage.dvcfile).parent / str(data.get("wdir") or ".")
            hashes |= _md5_outs(data.get("outs"), folder)
            continue
        lock = content(str(PurePosixPath(stage.dvcfile).with_suffix(".lock")))
        key = stage.name.removeprefix(f"{stage.dvcfile}:")
        stages = lock.get("stages")
        entry = stages.get(key) if isinstance(stages, dict) else None
        if isinstance(entry, dict):
            hashes |= _md5_outs(entry.get("outs"), PurePosixPath(stage.wdir))
    return PushBase(name, commit, hashes)


def first_parent_base(project: Project) -> PushBase | None:
    """HEAD's first parent as the base (master-build: the branch before this commit); None in a
    checkout without it (shallow): then everything is verified."""
    parent = git.first_parent(project.root)
    return read_push_base(project, parent[:12], parent) if parent else None


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _paths(paths: list[str], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def verify_pushed(
    root: Path, remote: str, endpoint: str, outs: Mapping[str, str], base: PushBase | None = None, deep: bool = False
) -> PushCheck:
    """Which of `outs` (project path -> md5 as recorded) are not wholly on `remote`.

    Transient errors are retried, then exit 3; a remote that rejects the credentials is exit 2.
    """
    trusted, changed, whole = [], [], []
    wanted: dict[str, set[str]] = {}
    notes: list[str] = []
    with remote_objects(root, remote, endpoint) as store:
        for path, md5 in sorted(outs.items()):
            if not md5.endswith(".dir"):
                wanted[path] = {md5}
                continue
            recorded = base.hashes.get(path) if base and not deep else None
            if recorded == md5:
                trusted.append(path)
                continue
            pair = store.manifests([md5, recorded] if recorded and recorded.endswith(".dir") else [md5])
            manifest = pair[md5]
            if manifest is None:  # on neither side: asking for it says it is missing
                wanted[path] = {md5}
                continue
            files = set(manifest.files)
            old = pair.get(recorded) if recorded else None
            if old is not None:
                files -= old.files
                changed.append(path)
                notes.append(
                    f"{path}: changed since `{base.name if base else ''}`, "
                    f"{len(files):,} of {_count(len(manifest.files), 'file')} asked"
                )
            else:
                whole.append(path)
            wanted[path] = files if manifest.read_from_remote else files | {md5}
        presence = store.present(set().union(*wanted.values()) if wanted else set())
    missing = tuple(path for path, oids in wanted.items() if not oids <= presence.present)
    if trusted and base:
        notes.insert(0, f"{_paths(trusted)}: unchanged since `{base.name}`, verified there")
    if whole:
        notes.append(f"{_paths(whole)}: every file asked" + (" (deep)" if deep else "" if base else " (no base)"))
    how = []
    if presence.exists_calls:
        how.append(_count(presence.exists_calls, "existence call"))
    if presence.prefixes_listed:
        how.append(_count(presence.prefixes_listed, "prefix listing"))
    notes.append(f"{_count(presence.asked, 'object')} asked" + (f" ({', '.join(how)})" if how else ""))
    return PushCheck(missing, "; ".join(notes))
