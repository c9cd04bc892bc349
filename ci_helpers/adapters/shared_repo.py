"""One open `dvc.repo.Repo` per project and project state, shared by the reads of one command.

DVC builds its index (every dvc.yaml, dvc.lock and .dvc file, resolved) on a Repo's first use of
it; for a large `foreach` that is most of a read's cost, and the project model, the pipeline
status, the params and the metrics reads all need it. The project model opens a `RepoHandle`; the
other reads borrow its Repo (`borrowed`) while it is current, which means both:
- no `dvc` command that writes the workspace (repro, pull) ran since it was opened: the adapters
  that start them call `workspace_changed`;
- none of the files DVC built the index from changed since (dvc.yaml, dvc.lock, .dvc, params and
  vars files, DVC's config and .dvcignore, git's HEAD and fetched refs: size, mtime and inode).
Otherwise a read opens a Repo of its own and closes it, as before.

A handle closes its Repo when its owner (the Project) is dropped, or at `close()`: a long-lived
worker (Airflow) keeps nothing open across tasks. Handles are per thread: a Repo is not safe to
share between threads.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_generations: dict[str, int] = {}  # project root -> workspace-writing dvc commands started so far
_local = threading.local()  # .handles: root -> weakref to this thread's newest RepoHandle


def _key(root: Path | str) -> str:
    return str(Path(root).resolve())


def workspace_changed(root: Path | str) -> None:
    """A `dvc` command changed the project's workspace (repro, pull): no Repo opened before it is
    borrowed again."""
    key = _key(root)
    _generations[key] = _generations.get(key, 0) + 1


def _stamp(paths: Iterable[str]) -> tuple:
    stamp: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            stamp.append(None)
        else:
            stamp.append((info.st_mtime_ns, info.st_size, info.st_ino))
    return tuple(stamp)


def _close_quietly(repo: Any) -> None:
    with contextlib.suppress(Exception):
        repo.close()


def _handles() -> dict[str, weakref.ref]:
    if not hasattr(_local, "handles"):
        _local.handles = {}
    return _local.handles


class RepoHandle:
    """An open `dvc.repo.Repo` for the project at `root`, and what it was read from."""

    def __init__(self, root: Path) -> None:
        from dvc.repo import Repo

        self.root = Path(root).resolve()
        self._key = str(self.root)
        self._generation = _generations.get(self._key, 0)
        self.repo = Repo(str(self.root), uninitialized=False)
        self._sources: tuple[str, ...] = ()
        self._stamp: tuple = ()
        self._closed = False
        self._finalizer = weakref.finalize(self, _close_quietly, self.repo)

    def track(self, sources: Iterable[str]) -> None:
        """Record the files the index was built from; the handle is lent from now on."""
        self._sources = tuple(sorted(set(sources)))
        self._stamp = _stamp(self._sources)
        _handles()[self._key] = weakref.ref(self)

    def current(self) -> bool:
        """Still a true picture of the workspace: nothing written by dvc, no source file changed."""
        return (
            not self._closed
            and bool(self._sources)
            and _generations.get(self._key, 0) == self._generation
            and _stamp(self._sources) == self._stamp
        )

    def close(self) -> None:
        self._closed = True
        self._finalizer()


def current_handle(root: Path | str) -> RepoHandle | None:
    """This thread's handle for the project at `root`, when one is open and current."""
    ref = _handles().get(_key(root))
    handle = ref() if ref is not None else None
    return handle if handle is not None and handle.current() else None


@contextlib.contextmanager
def borrowed(root: Path | str, handle: RepoHandle | None = None) -> Iterator[Any]:
    """A Repo of the project at `root`: `handle`'s (else this thread's registered one) when it is
    current, else a new one closed on exit."""
    if handle is None or not handle.current():
        handle = current_handle(root)
    if handle is None:
        from dvc.repo import Repo

        with Repo(str(root)) as repo:
            yield repo
        return
    repo = handle.repo
    index, fs, root_dir = repo.__dict__.get("index"), repo.fs, repo.root_dir
    try:
        yield repo
    finally:
        if repo.fs is not fs or repo.root_dir != root_dir:
            handle.close()  # a read at another revision did not switch back: never lend it again
        elif index is not None and "index" not in repo.__dict__:
            # DVC drops its index after reading other revisions (brancher); the workspace's is unchanged
            repo.__dict__["index"] = index


def index_sources(repo: Any) -> set[str]:
    """The files `repo.index` was read from, and those that change what it or a revision read means."""
    root = Path(repo.root_dir)
    sources = {str(root / ".dvc" / "config"), str(root / ".dvc" / "config.local"), str(root / ".dvcignore")}
    seen: set[str] = set()
    for stage in repo.index.stages:
        sources |= {str(dep.fs_path) for dep in stage.deps if type(dep).__name__ == "ParamsDependency"}
        dvcfile = stage.dvcfile  # a new object per stage: never force what it has not parsed yet
        path = str(dvcfile.path)
        if path in seen:
            continue
        seen.add(path)
        sources |= {path, str(Path(path).parent)}  # the folder: a dvc.yaml or .dvc file added to it
        if path.endswith(".yaml"):
            folder = Path(path).parent
            sources |= {str(folder / "dvc.lock"), str(folder / "params.yaml")}  # params.yaml: the default `vars`
            sources |= {str(folder / name) for name in _vars_files(path)}
    git_dir = _git_dir(Path(repo.scm.root_dir))
    if git_dir is not None:
        sources |= {str(git_dir / name) for name in ("HEAD", "FETCH_HEAD", "packed-refs", "shallow")}
    return sources


def _vars_files(dvc_yaml: str) -> set[str]:
    """The files a dvc.yaml's `vars` (top level and per stage) read, relative to its folder."""
    from dvc.utils.serialize import parse_yaml

    try:
        data = parse_yaml(Path(dvc_yaml).read_text(encoding="utf-8"), dvc_yaml)
    except Exception:  # DVC read it for the index; a file it cannot read again is left out
        return set()
    if not isinstance(data, dict):
        return set()
    stages: dict = data["stages"] if isinstance(data.get("stages"), dict) else {}
    entries: list = list(data["vars"]) if isinstance(data.get("vars"), list) else []
    for definition in stages.values():
        if isinstance(definition, dict):
            inner: dict = definition["do"] if isinstance(definition.get("do"), dict) else definition
            entries += inner["vars"] if isinstance(inner.get("vars"), list) else []
    return {entry.split(":", 1)[0] for entry in entries if isinstance(entry, str) and "${" not in entry}


def _git_dir(work_tree: Path) -> Path | None:
    dot_git = work_tree / ".git"
    if dot_git.is_dir():
        return dot_git
    with contextlib.suppress(OSError):
        text = dot_git.read_text()
        if text.startswith("gitdir:"):
            return (work_tree / text.split(":", 1)[1].strip()).resolve()
    return None


# -- files parsed once per read ---------------------------------------------------------------

_memo = threading.local()  # .cache while a read is in progress in this thread
_install_lock = threading.Lock()


def _cached(path: str, fs: Any, parse: Any) -> Any:
    """`parse()` of a workspace file, once per read in this thread and per (size, mtime, inode)."""
    cache = getattr(_memo, "cache", None)
    if cache is None or getattr(fs, "protocol", None) != "local":
        return parse()
    key = (str(path), _stamp([path]))
    if key not in cache:
        cache[key] = parse()
    return cache[key]


def _install_memos() -> None:
    """DVC parses a params file once per stage that depends on it (500 parses of the same
    params.yaml for a 500-item foreach: the bulk of `dvc status`'s time), and a dvc.lock once for
    its index and again for each other reader. Outside `files_read_once` DVC is untouched."""
    try:
        from dvc import dvcfile
        from dvc.dependency import param

        load_path, lockfile_load = param.load_path, dvcfile.Lockfile.load
    except (ImportError, AttributeError):  # another DVC's internals: parse as DVC does, each time
        return

    with _install_lock:
        if getattr(param.load_path, "ci_helpers_memo", False):
            return
        load_path, lockfile_load = param.load_path, dvcfile.Lockfile.load

        def params_load_path(fs_path: str, fs: Any, **kwargs: Any) -> Any:
            if kwargs:
                return load_path(fs_path, fs, **kwargs)
            return _cached(fs_path, fs, lambda: load_path(fs_path, fs))

        def lock_load(self: Any, **kwargs: Any) -> Any:
            if kwargs:
                return lockfile_load(self, **kwargs)
            return _cached(self.path, self.repo.fs, lambda: lockfile_load(self))

        params_load_path.ci_helpers_memo = True  # type: ignore[attr-defined]
        dvcfile.Lockfile.load = lock_load
        param.load_path = params_load_path


@contextlib.contextmanager
def files_read_once() -> Iterator[None]:
    """Within this block (one read in this thread), each params file and dvc.lock is parsed once;
    the callers (DVC's status and loaders, the model) only read what the parse returns."""
    _install_memos()
    outer = getattr(_memo, "cache", None)
    _memo.cache = {} if outer is None else outer
    try:
        yield
    finally:
        _memo.cache = outer
