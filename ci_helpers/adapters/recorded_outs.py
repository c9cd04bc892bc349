"""The DVC-tracked outs a commit records (dvc.lock and .dvc files, every dvc.yaml, foreach and wdir
resolved), read from git in the clone through DVC's own index at that revision: nothing checked
out, nothing fetched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class RecordedOut:
    path: str  # relative to the DVC project's root
    md5: str  # a directory's `.dir` manifest hash
    produced_by: str  # the stage's name, or the .dvc file tracking it
    used_by: tuple[str, ...]  # the stages that depend on it


def recorded_outs(repo: Path, commit: str) -> list[RecordedOut]:
    """The cached outs `commit` records with an md5 (those never pushed, `cache: false`, and
    legacy hashes are left out)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo), rev=commit) as dvc_repo:
            root = dvc_repo.root_dir
            stages = list(dvc_repo.index.stages)
            readers: dict[str, list[str]] = {}
            for stage in stages:
                for dep in stage.deps:
                    if getattr(dep, "fs_path", None) and type(dep).__name__ == "Dependency":
                        readers.setdefault(dep.fs.relpath(dep.fs_path, root), []).append(stage.name)
            found = []
            for stage in stages:
                maker = stage.relpath if stage.is_data_source else stage.name
                for out in stage.outs:
                    value = out.hash_info.value if out.hash_info else None
                    if not out.use_cache or not value or out.hash_info.name != "md5":
                        continue
                    path = out.fs.relpath(out.fs_path, root)
                    found.append(RecordedOut(path, str(value), maker, tuple(readers.get(path, ()))))
    except DvcException as error:
        raise ConfigError(
            f"DVC cannot read the project at commit {commit[:12]} in {repo}: {' '.join(str(error).split())[:200]}; "
            "pass --repo a clone of the project"
        ) from None
    return sorted(found, key=lambda out: out.path)
