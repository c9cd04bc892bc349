"""The push check: which recorded outs are not wholly on the DVC remote, at a cost that follows the
change rather than the remote.

What a base commit records was pushed and verified there (the PR that brought it in passed this
check, and master-build verified what its lock records), so a directory out whose `.dir` hash is
the base's, on the same remote, is trusted without a request, and a changed directory is verified for the files its base
manifest does not list. Without a base, a directory's manifest and every file it lists are asked
about, in as few requests as the question allows (adapters/remote_objects). `deep` asks about every
object of every out, as a scheduled audit does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .adapters import dvc, git
from .adapters.remote_objects import remote_objects
from .project import Project


@dataclass(frozen=True)
class PushBase:
    """The out hashes a base commit records, by project path."""

    name: str  # how the detail names it: the ref as given, or a short commit
    commit: str
    hashes: Mapping[str, str] = field(default_factory=dict)
    remote_urls: Mapping[str, str] = field(default_factory=dict)  # remote name -> URL, as committed there

    def verified_on(self, root: Path, remote: str) -> bool:
        """The base's objects were verified on this remote: it has the same URL, as committed,
        there and now (a PR that moves the project to another remote trusts nothing)."""
        config = root / ".dvc" / "config"
        now = dvc.committed_remote_urls(config.read_text(encoding="utf-8") if config.is_file() else None)
        # absent from git at both: defined outside it (config.local, the CI's), alike for both
        return self.remote_urls.get(remote) == now.get(remote)


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
        if not isinstance(entry, dict) or entry.get("cache", True) is not True:
            continue  # `cache: false` in a .dvc file: never pushed, never verified
        if entry.get("hash") == "md5" and entry.get("md5") and entry.get("path"):
            path = PurePosixPath(os.path.normpath(folder / str(entry["path"]))).as_posix()
            found[path] = str(entry["md5"])
    return found


_OUT_SECTIONS = ("outs", "metrics", "plots")


def _uncached_outs(definition: object) -> set[str] | None:
    """The paths a base dvc.yaml stage declares with `cache:` other than true (the lock records
    their hashes too, but they were never pushed); None when one of them is templated (`${}`), so
    that any out of the stage may be one."""
    uncached: set[str] = set()
    for section in _OUT_SECTIONS:
        entries = definition.get(section) if isinstance(definition, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            for raw, flags in entry.items() if isinstance(entry, dict) else ():
                if isinstance(flags, dict) and flags.get("cache", True) is not True:
                    if "${" in str(raw):
                        return None
                    uncached.add(str(raw))
    return uncached


def _base_stage_outs(stages: object, key: str, wdir: str) -> set[str] | None:
    """The project paths of the uncached outs of stage `key` (a foreach/matrix item: its group) in a
    base dvc.yaml's `stages`; None when the base does not declare it (a leftover lock entry) or when
    its uncached outs cannot be told apart."""
    group = key.split("@", 1)[0]
    if not isinstance(stages, dict) or group not in stages:
        return None
    definition = stages[group]
    if isinstance(definition, dict) and ("do" in definition):  # foreach / matrix
        definition = definition["do"]
    uncached = _uncached_outs(definition)
    if uncached is None:
        return None
    return {PurePosixPath(os.path.normpath(PurePosixPath(wdir) / raw)).as_posix() for raw in uncached}


def read_push_base(project: Project, name: str, commit: str) -> PushBase:
    """The out hashes recorded at `commit`, mapped to project paths through the current project's
    stages (a lock entry by stage name, its paths relative to the stage's wdir; a .dvc file's
    relative to its folder). An out the base does not record under the same path has no base;
    neither has a lock entry of a stage the base's dvc.yaml does not declare (a leftover), nor an
    out it declares `cache: false`. The base is the current commit itself: nothing trusted."""
    if commit == git.head_commit(project.root):
        return PushBase(name, commit)
    texts: dict[str, str | None] = {}
    files: dict[str, dict] = {}

    def text(path: str) -> str | None:
        if path not in texts:
            texts[path] = git.read_file_at(project.root, commit, path)
        return texts[path]

    def content(path: str) -> dict:
        if path not in files:
            files[path] = _parse(text(path), path)
        return files[path]

    hashes: dict[str, str] = {}
    for stage in project.stages:
        if stage.is_data_source:
            data = content(stage.dvcfile)
            folder = PurePosixPath(stage.dvcfile).parent / str(data.get("wdir") or ".")
            hashes |= _md5_outs(data.get("outs"), folder)
            continue
        key = stage.name.removeprefix(f"{stage.dvcfile}:")
        uncached = _base_stage_outs(content(stage.dvcfile).get("stages"), key, stage.wdir)
        if uncached is None:
            continue
        lock = content(str(PurePosixPath(stage.dvcfile).with_suffix(".lock")))
        stages = lock.get("stages")
        entry = stages.get(key) if isinstance(stages, dict) else None
        if isinstance(entry, dict):
            recorded = _md5_outs(entry.get("outs"), PurePosixPath(stage.wdir))
            hashes |= {path: md5 for path, md5 in recorded.items() if path not in uncached}
    return PushBase(name, commit, hashes, dvc.committed_remote_urls(text(".dvc/config")))


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
    if base and not deep and not base.verified_on(root, remote):
        notes.append(f"`{base.name}` used another URL for remote '{remote}': nothing trusted")
        base = None
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
