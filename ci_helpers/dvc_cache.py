"""The key and the folder under which CI keeps a project's DVC cache between runs (`actions/cache`).

The key names the content a run needs, not the run: `mlops-dvc-<os>-<digest>`, the digest a
sha256 over the sorted hashes that the lock files (or `.dvc` files) record for the outs a run pulls.
A directory out counts once, by its `.dir` manifest hash, which changes whenever a file in it does.
The DVC cache is content-addressed, so two runs needing the same objects need the same cache,
whatever commit, clone path or run number they have.

The OS is part of the key because the cache's link types (reflink, hardlink, symlink, copy) and
its file permissions are the platform's.

An out that the lock does not record yet (`dvc repro` not run) has no hash to key on: it enters
the digest as `unrecorded:<path>` and the key ends in `-unrecorded`, so it never equals the key of
a state where that out is recorded. It is not refused: pr-validate's own lock check then reports
"you forgot `dvc repro`" (exit 1) with its report, which an exit 2 from the cache step would hide.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import ConfigError
from .project import Out, Project, one_line

KEY_PREFIX = "mlops-dvc"
UNRECORDED_SUFFIX = "-unrecorded"
DIGEST_LENGTH = 16


@dataclass(frozen=True)
class DvcCacheKey:
    key: str  # mlops-dvc-<os>-<first 16 hex of sha256 over the sorted object hashes>
    path: Path  # absolute path of the project's DVC cache dir (`dvc cache dir`)
    objects: int  # recorded out hashes the key covers (a directory out counts once, by its manifest)

    @property
    def restore_prefix(self) -> str:
        """`mlops-dvc-<os>-` of this key, for `restore-keys`."""
        return restore_prefix(self.key.split("-")[2])


@dataclass(frozen=True)
class PulledObjects:
    """What a pull of some targets needs from the cache: recorded hashes, and outs with none yet."""

    hashes: tuple[str, ...]  # sorted, distinct
    unrecorded: tuple[str, ...]  # out paths, sorted


def cache_key(project: Project, targets: Sequence[str]) -> DvcCacheKey:
    """The `actions/cache` key and path for a run that pulls `targets` (project-relative paths).

    ConfigError (exit 2) when a target is no DVC-tracked path of the project, or when DVC has no
    local cache for it.
    """
    pulled = pulled_objects(project, targets)
    return DvcCacheKey(compose_key(pulled, runner_os()), cache_dir(project), len(pulled.hashes))


def pulled_objects(project: Project, targets: Sequence[str]) -> PulledObjects:
    """The recorded hashes of the cached outs that `targets` are, lie inside, or hold.

    `cache: false` outs are left out: git carries them, the remote never does.
    """
    hashes: set[str] = set()
    unrecorded: set[str] = set()
    for target in targets:
        for out in _outs_of(project, target):
            if not out.cached:
                continue
            if out.md5:
                hashes.add(out.md5)
            else:
                unrecorded.add(out.path)
    return PulledObjects(tuple(sorted(hashes)), tuple(sorted(unrecorded)))


def compose_key(pulled: PulledObjects, os_name: str) -> str:
    """`mlops-dvc-<os>-<digest>`, `-unrecorded` appended when an out has no recorded hash."""
    # An md5 never holds ':', so an unrecorded entry cannot collide with a hash.
    entries = [*pulled.hashes, *(f"unrecorded:{path}" for path in pulled.unrecorded)]
    digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()[:DIGEST_LENGTH]
    return restore_prefix(os_name) + digest + (UNRECORDED_SUFFIX if pulled.unrecorded else "")


def restore_prefix(os_name: str | None = None) -> str:
    """`mlops-dvc-<os>-`: every key of this OS starts so, for `restore-keys` (the cache is
    content-addressed: another state's cache is a good start, DVC fetches only what it lacks)."""
    return f"{KEY_PREFIX}-{os_name or runner_os()}-"


def runner_os() -> str:
    """The OS as GitHub's `runner.os` names it, lower-cased: linux, macos, windows."""
    system = platform.system().lower()
    return {"darwin": "macos"}.get(system, system or "unknown")


def cache_dir(project: Project) -> Path:
    """The project's local DVC cache folder as `dvc cache dir` prints it (`cache.dir`, `cache.local`
    and a `dvc init --subdir` project's own `.dvc/` respected)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(project.root), uninitialized=False) as dvc_repo:
            path = dvc_repo.cache.local_cache_dir
    except AttributeError:  # DVC built no local cache (no `.dvc/` of its own, no cache.dir)
        path = None
    except DvcException as error:
        raise ConfigError(
            f"DVC cannot read the cache settings of {project.root}: {one_line(error)}; fix them (`dvc cache dir`)"
        ) from None
    if not path:
        raise ConfigError(
            f"DVC has no local cache for the project in {project.root}; set one with `dvc cache dir PATH`"
        )
    return Path(path).resolve()


def _outs_of(project: Project, target: str) -> tuple[Out, ...]:
    path = _project_relative(project, target)
    covering = project.out_covering(path)
    if covering is not None:
        return (covering,)
    held = tuple(out for out in project.outs if path in ("", ".") or out.path.startswith(path + "/"))
    if held:
        return held
    raise ConfigError(
        f"pull target {target} is no DVC-tracked path of the project in {project.root} (no stage or .dvc file "
        "writes it); pass a path that `dvc pull` takes, as `dvc data status --granular` or dvc.yaml names it"
    )


def _project_relative(project: Project, target: str) -> str:
    raw = Path(target)
    relative = os.path.relpath(raw, project.root) if raw.is_absolute() else target
    path = PurePosixPath(os.path.normpath(relative).replace(os.sep, "/")).as_posix()
    if path == ".." or path.startswith("../"):
        raise ConfigError(f"pull target {target} is outside the project {project.root}; pass a path inside it")
    return path
