"""The DVC-tracked outs a commit records (dvc.lock and .dvc files, every dvc.yaml, foreach and wdir
resolved), and which stages each stage depends on, read from git in the clone through DVC's own
index and graph at that revision: nothing checked out, nothing fetched. The project may live in a
folder of the git repository (`dvc init --subdir`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import ConfigError


@dataclass(frozen=True)
class RecordedOut:
    path: str  # relative to the DVC project's root
    md5: str  # a directory's `.dir` manifest hash
    produced_by: str  # the stage's name, or the .dvc file tracking it
    used_by: tuple[str, ...]  # the stages that depend on it
    recorded_in: str  # the file that records the hash: `dvc.lock`, `sub/dvc.lock`, `data/raw.csv.dvc`


@dataclass(frozen=True)
class RecordedOuts:
    outs: tuple[RecordedOut, ...]
    upstream: dict[str, frozenset[str]]  # stage -> every stage it depends on, directly or not


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def recorded_outs(git_root: Path, project: str, commit: str) -> RecordedOuts:
    """The cached outs `commit` records with an md5 (those never pushed, `cache: false`, and
    legacy hashes are left out) in the DVC project at `project` (its folder from the git root, ''
    at the root). ConfigError with DVC's reason when the project cannot be read at that commit
    (before `dvc init`, a broken dvc.yaml)."""
    import networkx as nx
    from dvc.exceptions import DvcException
    from dvc.fs import GitFileSystem
    from dvc.repo import Repo
    from dvc.scm import SCM

    try:
        scm = SCM(str(git_root))
        fs = GitFileSystem(scm=scm, rev=commit)
        with Repo(root_dir=f"/{project}".rstrip("/") or "/", fs=fs, scm=scm) as dvc_repo:
            root = dvc_repo.root_dir
            stages = list(dvc_repo.index.stages)

            def name(stage) -> str:
                dvcfile = fs.relpath(stage.path, root)
                label = None if stage.is_data_source else getattr(stage, "name", None)
                return dvcfile if not label else label if dvcfile == "dvc.yaml" else f"{dvcfile}:{label}"

            graph = dvc_repo.index.graph  # edges from a stage to the stages it depends on
            upstream = {name(stage): frozenset(map(name, nx.descendants(graph, stage))) for stage in stages}
            reads = [
                (fs.relpath(dep.fs_path, root), name(stage))
                for stage in stages
                for dep in stage.deps
                if getattr(dep, "fs_path", None) and type(dep).__name__ == "Dependency"
            ]
            found = []
            for stage in stages:
                maker = name(stage)
                dvcfile = fs.relpath(stage.path, root)
                recorded_in = dvcfile if stage.is_data_source else str(PurePosixPath(dvcfile).with_suffix(".lock"))
                for out in stage.outs:
                    value = out.hash_info.value if out.hash_info else None
                    if not out.use_cache or not value or out.hash_info.name != "md5":
                        continue
                    path = fs.relpath(out.fs_path, root)
                    readers = tuple(dict.fromkeys(r for p, r in reads if _inside(p, path) or _inside(path, p)))
                    found.append(RecordedOut(path, str(value), maker, readers, recorded_in))
    except DvcException as error:
        raise ConfigError(
            f"DVC cannot read the project{f' in {project}/' if project else ''} at commit {commit[:12]}: "
            f"{' '.join(str(error).split())[:200]}"
        ) from None
    return RecordedOuts(tuple(sorted(found, key=lambda out: out.path)), upstream)
