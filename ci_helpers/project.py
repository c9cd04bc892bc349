"""The project model: a DVC project read once, through DVC's own Python API.

`dvc.repo.Repo(root).index` resolves everything hand parsing gets wrong: `foreach`/`matrix`
items (`train@small`), `vars` and `${}`, `wdir`, every `dvc.yaml` (`sub/dvc.yaml:train`),
`.dvc` files, top-level `metrics:`/`params:`/`plots:`/`artifacts:`, each out's `cache:` flag and
the stage graph. `load_project` turns that into a frozen `Project` that every flow asks; nothing
else in ci_helpers reads `dvc.yaml` or `dvc.lock`.

Paths in the model are relative to the project root (the folder holding `.dvc/`), POSIX style;
`Project.git_path` turns them into paths relative to the git root for a monorepo.
"""

from __future__ import annotations

import difflib
import heapq
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from .adapters import dvc as dvc_adapter
from .adapters import git, shared_repo
from .errors import ConfigError

OUT_KINDS = ("out", "metrics", "plots")


@dataclass(frozen=True)
class Out:
    """One output of a stage or `.dvc` file."""

    path: str
    stage: str
    kind: str  # out | metrics | plots
    cached: bool  # DVC keeps it in its cache, so it lives on the remote, not in git
    is_dir: bool
    md5: str | None  # as recorded in dvc.lock / the .dvc file; None before the first repro


@dataclass(frozen=True)
class Stage:
    """A resolved stage, named as DVC names it: `train`, `train@small`, `sub/dvc.yaml:train`,
    or `data/raw.csv.dvc` for a `.dvc` file."""

    name: str
    dvcfile: str
    wdir: str
    cmd: str | None
    deps: tuple[str, ...]  # files and directories, not params
    params_files: tuple[str, ...]
    outs: tuple[Out, ...]
    is_data_source: bool  # a `.dvc` file (`dvc add` / `dvc import`), not a pipeline stage
    locked: bool  # dvc.lock has an entry for it
    dep_md5s: tuple[tuple[str, str], ...] = ()  # (dep path, md5 dvc.lock recorded for it)
    is_import: bool = False  # a `.dvc` file that `dvc import` / `dvc import-url` wrote
    external_deps: tuple[str, ...] = ()  # deps outside any filesystem DVC tracks here (s3://..., `dvc import`)
    always_changed: bool = False  # `always_changed: true`: DVC reruns it every time
    frozen: bool = False  # `frozen: true`: DVC never reruns it
    # an import's source as its .dvc file records it: (dep, its hash or, for `dvc import`, the
    # repository URL and revision); what `dvc update` changes when the source changed
    source_state: tuple[tuple[str, str], ...] = ()

    @property
    def group(self) -> str:
        """`train` for every `train@<item>` of a foreach/matrix stage; the name otherwise."""
        return self.name.split("@", 1)[0]

    @property
    def metrics_files(self) -> tuple[str, ...]:
        return tuple(out.path for out in self.outs if out.kind == "metrics")


@dataclass(frozen=True)
class Project:
    """The whole DVC project as one frozen object: build it with `load_project`."""

    root: Path
    git_root: Path
    stages: tuple[Stage, ...]  # upstream before downstream, file order otherwise
    edges: tuple[tuple[str, str], ...]  # (upstream, downstream)
    top_level_metrics: tuple[str, ...]
    top_level_params: tuple[str, ...]
    top_level_plots: tuple[str, ...]
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path
    artifact_types: dict[str, str] = field(default_factory=dict)  # name -> dvc.yaml `type:` ('' if none)
    # The open DVC repo the model was read from, lent to the status and params reads while the
    # workspace is unchanged (adapters/shared_repo.py); closed when the Project is dropped.
    _dvc: shared_repo.RepoHandle | None = field(default=None, compare=False, repr=False)

    # -- stages ---------------------------------------------------------------------------

    @cached_property
    def _by_name(self) -> dict[str, Stage]:
        return {stage.name: stage for stage in self.stages}

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    @property
    def pipeline_stages(self) -> tuple[Stage, ...]:
        return tuple(stage for stage in self.stages if not stage.is_data_source)

    def stage(self, name: str) -> Stage:
        """The stage named exactly `name` as DVC names it."""
        return (
            self._by_name[name] if name in self._by_name else self._by_name[self.resolve_stages([name], "--stage")[0]]
        )

    def resolve_stages(self, names: list[str] | tuple[str, ...], option: str) -> tuple[str, ...]:
        """Stage names as DVC spells them; a foreach/matrix group name means all of its items.

        ConfigError naming the closest stages when one is unknown.
        """
        resolved: list[str] = []
        for raw in names:
            name = _normalize_stage_name(raw)
            matches = [s.name for s in self.pipeline_stages if name in (s.name, s.group)]
            if not matches:
                raise ConfigError(self._unknown_stage_message(raw, option))
            resolved += [m for m in matches if m not in resolved]
        return tuple(resolved)

    def _unknown_stage_message(self, name: str, option: str) -> str:
        candidates = list(
            dict.fromkeys([s.name for s in self.pipeline_stages] + [s.group for s in self.pipeline_stages])
        )
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"stages: {', '.join(candidates[:20]) or 'none'}"
        return f"unknown DVC stage '{name}' ({hint}); pass a stage as `dvc stage list --all` names it to {option}"

    # -- graph ----------------------------------------------------------------------------

    @cached_property
    def _children(self) -> dict[str, set[str]]:
        children: dict[str, set[str]] = {name: set() for name in self.stage_names}
        for upstream, downstream in self.edges:
            children[upstream].add(downstream)
        return children

    @cached_property
    def _parents(self) -> dict[str, set[str]]:
        parents: dict[str, set[str]] = {name: set() for name in self.stage_names}
        for upstream, downstream in self.edges:
            parents[downstream].add(upstream)
        return parents

    def downstream_of(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Every stage that depends, directly or not, on one of `names` (not `names` themselves)."""
        reached = _reach(set(names), self._children) - set(names)
        return tuple(name for name in self.stage_names if name in reached)

    def upstream_of(self, names: tuple[str, ...]) -> tuple[str, ...]:
        reached = _reach(set(names), self._parents) - set(names)
        return tuple(name for name in self.stage_names if name in reached)

    # -- outputs --------------------------------------------------------------------------

    @property
    def outs(self) -> tuple[Out, ...]:
        return tuple(out for stage in self.stages for out in stage.outs)

    def out_covering(self, path: str) -> Out | None:
        """The out that is `path` or a directory holding it."""
        path = _norm(path)
        for out in self.outs:
            if path == out.path or path.startswith(out.path.rstrip("/") + "/"):
                return out
        return None

    def metrics_files_of(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The metrics the stages declare, and top-level metrics that live inside their outs."""
        files: list[str] = []
        for name in names:
            stage = self._by_name[name]
            files += stage.metrics_files
            for path in self.top_level_metrics:
                out = self.out_covering(path)
                if out is not None and out.stage == name:
                    files.append(path)
        return tuple(dict.fromkeys(files))

    @property
    def metrics_files(self) -> tuple[str, ...]:
        """Every metrics file the project declares, at stage or top level."""
        files = [path for stage in self.stages for path in stage.metrics_files]
        return tuple(dict.fromkeys(files + list(self.top_level_metrics)))

    # -- paths ----------------------------------------------------------------------------

    @property
    def dvcfiles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(stage.dvcfile for stage in self.stages))

    @property
    def lockfiles(self) -> tuple[str, ...]:
        """The dvc.lock beside every dvc.yaml that has pipeline stages."""
        files = [str(PurePosixPath(s.dvcfile).with_suffix(".lock")) for s in self.pipeline_stages]
        return tuple(dict.fromkeys(files))

    @property
    def git_kept_outs(self) -> tuple[str, ...]:
        """The pipeline's outs git keeps, not DVC's cache (`cache: false` metrics and plots)."""
        return tuple(out.path for stage in self.pipeline_stages for out in stage.outs if not out.cached)

    @property
    def pipeline_inputs(self) -> frozenset[str]:
        """Paths whose change makes a build of an older commit stale: dvc.yaml and .dvc files,
        params files, and deps that no stage produces (code)."""
        paths = set(self.dvcfiles) | set(self.top_level_params)
        for stage in self.pipeline_stages:
            paths |= set(stage.params_files)
            paths |= {dep for dep in stage.deps if self.out_covering(dep) is None}
        return frozenset(paths)

    @property
    def prefix(self) -> str:
        """The project's folder relative to the git root ('' when they are the same)."""
        relative = os.path.relpath(self.root, self.git_root)
        return "" if relative == "." else PurePosixPath(relative).as_posix()

    def git_path(self, path: str) -> str:
        """A project-relative path as git names it from the git root."""
        return str(PurePosixPath(self.prefix) / path) if self.prefix else path

    def project_path(self, git_path: str) -> str | None:
        """A git-root-relative path as the project names it; None when outside the project."""
        if not self.prefix:
            return git_path
        prefix = self.prefix + "/"
        return git_path[len(prefix) :] if git_path.startswith(prefix) else None


def _reach(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _norm(path: str) -> str:
    return PurePosixPath(os.path.normpath(path)).as_posix()


def _normalize_stage_name(name: str) -> str:
    name = name.strip()
    for prefix in ("./dvc.yaml:", "dvc.yaml:"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name.removeprefix("./")


def require_project_root(repo: Path) -> Path:
    """The absolute project root, once it is known to be inside a git work tree with DVC initialised."""
    return _project_roots(repo)[0]


def _project_roots(repo: Path) -> tuple[Path, Path]:
    """(project root, git root), both absolute; ConfigError outside a git work tree or DVC project."""
    git_root = git.require_git_repo(repo).resolve()
    root = repo.resolve()
    if not (root / ".dvc").is_dir():
        raise ConfigError(
            f"{repo} is not a DVC project (no .dvc/ folder); run `dvc init` (`dvc init --subdir` in a monorepo) "
            "or pass the project root to --repo"
        )
    return root, git_root


def one_line(error: BaseException) -> str:
    """DVC's own message on one line, with the detail its cause holds (YAML position, schema)."""
    text = " ".join(str(error).split())
    cause = error.__cause__
    detail = ""
    if cause is not None:
        problem = getattr(cause, "problem", None)
        mark = getattr(cause, "problem_mark", None)
        if problem:
            detail = f"{problem}" + (f" at line {mark.line + 1}" if mark is not None else "")
        elif getattr(cause, "errors", None):
            detail = "; ".join(
                f"{'.'.join(map(str, getattr(e, 'path', []))) or '(top)'}: {getattr(e, 'msg', e)}"
                for e in getattr(cause, "errors", [])
            )
        else:
            detail = " ".join(str(cause).split())
    return f"{text} ({detail[:300]})" if detail and detail not in text else text


def _relative(path: str, root: Path) -> str:
    return _norm(os.path.relpath(path, root))


def _out(out: Any, stage_name: str, root: Path) -> Out:
    kind = "metrics" if out.metric else "plots" if out.plot else "out"
    hash_info = out.hash_info
    is_dir = bool(
        (hash_info and hash_info.isdir)
        or (out.meta and out.meta.isdir)
        or str(out.def_path).endswith("/")
        or os.path.isdir(out.fs_path)
    )
    return Out(
        _relative(out.fs_path, root),
        stage_name,
        kind,
        bool(out.use_cache),
        is_dir,
        hash_info.value if hash_info else None,
    )


def _locked_names(stage: Any, cache: dict[str, set[str]]) -> set[str]:
    """The stage names the lock file beside `stage`'s dvc.yaml records, from the contents DVC
    already parsed for its index (parsing a large dvc.lock twice doubles the read time)."""
    dvcfile = stage.dvcfile
    key = str(dvcfile.path)
    if key not in cache:
        contents = getattr(dvcfile, "lockfile_contents", None) or {}
        cache[key] = set(contents.get("stages", {}) if isinstance(contents, dict) else ())
    return cache[key]


def _address(stage: Any, root: Path) -> str:
    """The stage's name as `dvc stage list --all` prints it from the project root (DVC's own
    `addressing` is relative to the current directory)."""
    dvcfile = _relative(stage.path, root)
    if stage.is_data_source or stage.is_import or not getattr(stage, "name", None):
        return dvcfile
    return stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}"


def _stage(stage: Any, root: Path, lock_cache: dict[str, set[str]]) -> Stage:
    from dvc.dependency import ParamsDependency
    from dvc.dependency.repo import RepoDependency

    deps, params_files, dep_md5s, external = [], [], [], []
    for dep in stage.deps:
        if isinstance(dep, ParamsDependency):
            params_files.append(_relative(dep.fs_path, root))
        elif isinstance(dep, RepoDependency) or not getattr(dep, "fs_path", None) or "://" in str(dep.def_path):
            external.append(str(dep.def_path))  # nothing in this project to pull or rebuild
            continue
        else:
            deps.append(_relative(dep.fs_path, root))
            recorded = getattr(dep, "hash_info", None)
            if recorded is not None and recorded.value:
                dep_md5s.append((deps[-1], str(recorded.value)))
    name = _address(stage, root)
    outs = tuple(_out(out, name, root) for out in stage.outs)
    is_source = bool(stage.is_data_source or stage.is_import)
    locked = is_source or stage.name in _locked_names(stage, lock_cache)
    return Stage(
        name,
        _relative(stage.path, root),
        _relative(stage.wdir, root),
        stage.cmd or None,
        tuple(deps),
        tuple(dict.fromkeys(params_files)),
        outs,
        is_source,
        bool(locked),
        tuple(dep_md5s),
        bool(stage.is_import),
        tuple(external),
        bool(getattr(stage, "always_changed", False)),
        bool(getattr(stage, "frozen", False)),
        _source_state(stage) if stage.is_import else (),
    )


def _source_state(stage: Any) -> tuple[tuple[str, str], ...]:
    state = []
    for dep in stage.deps:
        recorded = getattr(dep, "hash_info", None)
        repo = getattr(dep, "def_repo", None) or {}
        value = recorded.value if recorded is not None and recorded.value else ""
        if repo:
            value = f"{repo.get('url', '')}@{repo.get('rev_lock') or repo.get('rev') or ''}:{value}"
        state.append((str(dep.def_path), str(value)))
    return tuple(state)


def _stage_edges(index: Any, root: Path) -> list[tuple[str, str]]:
    """(upstream, downstream) stage names by the rule of DVC's graph (`dvc.repo.graph.build_graph`:
    a stage depends on the stage of every out that holds one of its deps or lies inside it), read
    from the index's own outs trie. DVC's graph itself is not built: its networkx import alone is a
    fifth of `dvc stage list --all` (tests/shapes check the edges are the graph's). Its other check,
    a cycle, is `_ordered`'s."""
    from dvc.dependency import DatasetDependency
    from dvc.exceptions import StagePathAsOutputError
    from dvc.fs import localfs

    trie = index.outs_trie  # DVC's duplicate and overlapping outs checks, cached for its graph
    stages = list(index.stages)
    for stage in stages:
        holder = trie.shortest_prefix(localfs.parts(stage.path)).value
        if holder:
            raise StagePathAsOutputError(stage, str(holder))
    edges: list[tuple[str, str]] = []
    for stage in stages:
        if stage.is_repo_import or stage.is_db_import:
            continue
        for dep in stage.deps:
            if isinstance(dep, DatasetDependency):
                continue
            key = dep.fs.parts(dep.fs_path)
            made_by = [node.value for node in trie.prefixes(key)]
            if trie.has_subtrie(key):
                made_by.extend(trie.values(prefix=key))
            edges += [(_address(out.stage, root), _address(stage, root)) for out in made_by]
    return list(dict.fromkeys(edges))


def _ordered(stages: list[Stage], edges: list[tuple[str, str]]) -> tuple[Stage, ...]:
    """Upstream before downstream; DVC's file order among stages that do not depend on each other
    (`.dvc` files first)."""
    position = {stage.name: (not stage.is_data_source, i) for i, stage in enumerate(stages)}
    by_name = {stage.name: stage for stage in stages}
    waiting = {stage.name: 0 for stage in stages}
    children: dict[str, list[str]] = {stage.name: [] for stage in stages}
    for upstream, downstream in set(edges):
        waiting[downstream] += 1
        children[upstream].append(downstream)
    ready = [(position[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[Stage] = []
    done: set[str] = set()
    while ready:
        name = heapq.heappop(ready)[1]
        done.add(name)
        ordered.append(by_name[name])
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0 and child not in done:
                heapq.heappush(ready, (position[child], child))
    if len(ordered) < len(stages):  # what never got ready waits on itself: a cycle
        cycle = ", ".join(name for name in by_name if name not in done)
        raise ConfigError(
            f"the pipeline has a cycle among stages {cycle}: one depends on its own output "
            "through the others; fix their deps and outs, then check with `dvc dag`"
        )
    return tuple(ordered)


def _top_level_plots(index: Any, root: Path) -> tuple[str, ...]:
    found: list[str] = []
    for dvcfile, items in (getattr(index, "_plots", None) or {}).items():
        base = Path(dvcfile).parent
        for item in items or []:
            names = [item] if isinstance(item, str) else list(item) if isinstance(item, dict) else []
            found += [_relative(str(base / str(name)), root) for name in names]
    return tuple(dict.fromkeys(found))


def _artifacts(index: Any, root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(name -> path, name -> type) of the top-level `artifacts:` of every dvc.yaml."""
    found: dict[str, str] = {}
    types: dict[str, str] = {}
    for dvcfile, items in (getattr(index, "_artifacts", None) or {}).items():
        base = Path(dvcfile).parent
        for name, spec in (items or {}).items():
            if isinstance(spec, dict) and spec.get("path"):
                found[str(name)] = _relative(str(base / str(spec["path"])), root)
                types[str(name)] = str(spec.get("type") or "")
    return found, types


def load_project(repo: Path) -> Project:
    """Read the DVC project at `repo` once, through `dvc.repo.Repo` and its index.

    Always a new read (a `dvc add` run by anyone since the last one is seen). The Repo stays open
    with the Project, and its status and params reads borrow it while the workspace is unchanged,
    until the Project is dropped. ConfigError (exit 2) with DVC's own message on one line when DVC
    rejects the project.
    """
    root, git_root = _project_roots(repo)
    dvc_adapter.use_remote_clients(root)  # before DVC meets a remote
    from dvc.exceptions import DvcException

    handle = None
    try:
        with shared_repo.files_read_once():
            handle = shared_repo.RepoHandle(root)
            handle.track(shared_repo.index_sources(handle.repo))  # builds the index
            return _read_project(root, git_root, handle)
    except BaseException as error:
        if handle is not None:
            handle.close()
        if isinstance(error, DvcException):
            raise ConfigError(
                f"DVC cannot read the project in {root}: {one_line(error)}; "
                "fix it, then check with `dvc stage list --all`"
            ) from None
        raise


def _read_project(root: Path, git_root: Path, handle: shared_repo.RepoHandle) -> Project:
    from dvc.repo.metrics.show import _collect_top_level_metrics
    from dvc.repo.params.show import _collect_top_level_params

    dvc_repo = handle.repo
    index = dvc_repo.index
    lock_cache: dict[str, set[str]] = {}
    stages = [_stage(stage, root, lock_cache) for stage in index.stages]
    edges = _stage_edges(index, root)
    metrics = tuple(dict.fromkeys(_norm(p) for p in _collect_top_level_metrics(dvc_repo)))
    params = tuple(dict.fromkeys(_norm(p) for p in _collect_top_level_params(dvc_repo)))
    plots, (artifacts, artifact_types) = _top_level_plots(index, root), _artifacts(index, root)
    return Project(
        root, git_root, _ordered(stages, edges), tuple(edges), metrics, params, plots, artifacts, artifact_types, handle
    )


def read_out_hashes(project: Project) -> dict[str, str]:
    """The md5 of every out as the lock files record them now (after a `dvc repro`: the repro made
    `project`'s DVC index stale, so this is a new read)."""
    fresh = load_project(project.root)
    return {out.path: out.md5 for out in fresh.outs if out.md5}


def read_params(project: Project) -> dict[str, object]:
    """The project's params as `dvc params show` reads them, flattened with dots; keys of files
    other than params.yaml are prefixed with the file's path."""
    from dvc.exceptions import DvcException

    from .adapters.tracking import flatten_params

    try:
        with shared_repo.borrowed(project.root, project._dvc) as dvc_repo:
            shown = dvc_repo.params.show()
    except DvcException as error:
        raise ConfigError(f"DVC cannot read the project's params: {one_line(error)}; fix the params file") from None
    params: dict[str, object] = {}
    for path, entry in ((shown.get("") or {}).get("data") or {}).items():
        prefix = "" if _norm(path) == "params.yaml" else f"{_norm(path)}:"
        params.update(flatten_params(entry.get("data") or {}, prefix))
    return params


def read_pipeline_status(project: Project) -> dict[str, list]:
    """What `dvc status` reports, in-process: stage name (as the model spells it) -> its changes
    against the lock (changed deps, outs, command); stages that are up to date are left out."""
    from dvc.exceptions import DvcException

    status: dict[str, list] = {}
    try:
        with (
            shared_repo.borrowed(project.root, project._dvc) as dvc_repo,
            dvc_repo.lock,
            shared_repo.files_read_once(),
        ):
            for stage in dvc_repo.index.stages:
                for changes in stage.status().values():  # keyed by DVC's cwd-relative address
                    status[_address(stage, project.root)] = _project_relative(changes, project.root)
    except DvcException as error:
        raise ConfigError(f"DVC cannot compute the pipeline's status: {one_line(error)}; run `dvc status`") from None
    return status


def _project_relative(changes: list, root: Path) -> list:
    """DVC names changed paths relative to the current directory when that is inside the project,
    else relative to the project; name them from the project root either way."""
    cwd = Path.cwd().resolve()
    base = cwd if cwd == root.resolve() or root.resolve() in cwd.parents else root

    def rename(entries: object) -> object:
        if not isinstance(entries, dict):
            return entries
        return {_relative(os.path.normpath(base / path), root): state for path, state in entries.items()}

    return [
        {kind: rename(entries) for kind, entries in change.items()} if isinstance(change, dict) else change
        for change in changes
    ]


def stages_repro_would_run(project: Project, names: tuple[str, ...]) -> tuple[str, ...] | None:
    """The stages among `names` and their upstream that `dvc repro --allow-missing NAMES` would run
    rather than skip, judged in-process with DVC's own rule (`Stage.changed(allow_missing=True)`,
    each stage against the stages it depends on, as `dvc repro` passes them); None when DVC cannot
    tell here, so the caller runs `dvc repro` and lets it decide. Data that is missing (a fresh
    clone, nothing pulled) is no change, as with --allow-missing. The stages of frozen ones'
    upstream, which `dvc repro` leaves out, are judged too: one more stage to judge can only send
    the caller to `dvc repro`."""
    root = project.root
    wanted = set(names) | set(project.upstream_of(names))
    try:
        with (
            shared_repo.borrowed(root, project._dvc) as dvc_repo,
            dvc_repo.lock,
            shared_repo.files_read_once(),
        ):
            by_name = {_address(stage, root): stage for stage in dvc_repo.index.stages}
            if not wanted <= set(by_name):
                return None
            return tuple(
                name
                for name in project.stage_names
                if name in wanted
                and by_name[name].changed(True, [by_name[parent] for parent in project._parents[name]])
            )
    except Exception:  # any doubt: `dvc repro` itself decides, as before
        return None
