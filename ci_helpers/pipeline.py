"""The stage graph of dvc.yaml, and the plan for a forced CI rebuild of some of its stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import ConfigError


@dataclass(frozen=True)
class StageSpec:
    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]  # every output: outs, metrics, plots
    cached_outs: tuple[str, ...]  # the outputs DVC keeps in its cache (and so on the remote)
    params_files: tuple[str, ...]


@dataclass(frozen=True)
class RebuildPlan:
    """What a forced rebuild touches: stages forced, downstream, upstream, and what to pull."""

    forced: tuple[str, ...]
    downstream: tuple[str, ...]
    upstream: tuple[str, ...]
    pull_targets: tuple[str, ...]  # inputs of the rebuilt stages, never their own outputs
    rebuilt_outputs: tuple[str, ...]
    rebuilt_cached_outputs: tuple[str, ...]


def _path_of(item: object) -> tuple[str, bool]:
    if isinstance(item, dict):
        name, options = next(iter(item.items()))
        return str(name), (options or {}).get("cache", True) is not False
    return str(item), True


def _params_files(params: list) -> tuple[str, ...]:
    files = {"params.yaml"} if params else set()
    for item in params or []:
        if isinstance(item, dict):
            files |= {str(name) for name in item}
    return tuple(sorted(files))


def load_stages(repo: Path) -> dict[str, StageSpec]:
    """Stages of the project's dvc.yaml, in file order (foreach/matrix stages are not expanded)."""
    path = repo / "dvc.yaml"
    if not path.is_file():
        raise ConfigError(f"{repo} has no dvc.yaml; add your pipeline stages there or pass the project root to --repo")
    spec = yaml.safe_load(path.read_text()) or {}
    stages = {}
    for name, body in (spec.get("stages") or {}).items():
        body = body or {}
        outs = [_path_of(item) for section in ("outs", "metrics", "plots") for item in body.get(section, []) or []]
        stages[name] = StageSpec(
            name,
            tuple(_path_of(item)[0] for item in body.get("deps", []) or []),
            tuple(out for out, _ in outs),
            tuple(out for out, cached in outs if cached),
            _params_files(body.get("params", [])),
        )
    return stages


def _covers(output: str, path: str) -> bool:
    output, path = output.rstrip("/"), path.rstrip("/")
    return path == output or path.startswith(output + "/") or output.startswith(path + "/")


def producers(stages: dict[str, StageSpec], path: str) -> list[str]:
    return [s.name for s in stages.values() if any(_covers(out, path) for out in s.outs)]


def _children(stages: dict[str, StageSpec]) -> dict[str, set[str]]:
    children: dict[str, set[str]] = {name: set() for name in stages}
    for stage in stages.values():
        for dep in stage.deps:
            for parent in producers(stages, dep):
                if parent != stage.name:
                    children[parent].add(stage.name)
    return children


def _reach(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def plan_rebuild(stages: dict[str, StageSpec], forced: list[str]) -> RebuildPlan:
    unknown = [name for name in forced if name not in stages]
    if unknown:
        raise ConfigError(
            f"unknown DVC stage '{unknown[0]}' (stages: {', '.join(stages) or 'none'}); pass one of them to --stage"
        )
    children = _children(stages)
    parents: dict[str, set[str]] = {name: set() for name in stages}
    for parent, kids in children.items():
        for kid in kids:
            parents[kid].add(parent)
    rebuild = _reach(set(forced), children)
    upstream = _reach(rebuild, parents) - rebuild
    order = list(stages)
    rebuilt_outputs = [out for name in order if name in rebuild for out in stages[name].outs]
    pull = []
    for name in order:
        if name not in rebuild:
            continue
        for dep in stages[name].deps:
            made_by = producers(stages, dep)
            if made_by and not set(made_by) & rebuild and dep not in pull:
                pull.append(dep)
    return RebuildPlan(
        tuple(n for n in order if n in forced),
        tuple(n for n in order if n in rebuild and n not in forced),
        tuple(n for n in order if n in upstream),
        tuple(pull),
        tuple(rebuilt_outputs),
        tuple(out for name in order if name in rebuild for out in stages[name].cached_outs),
    )


def pipeline_input_paths(stages: dict[str, StageSpec]) -> set[str]:
    """Files whose change makes a build of an older commit stale: dvc.yaml, params, stage deps
    that no stage produces (code, .dvc-tracked data)."""
    paths = {"dvc.yaml"}
    for stage in stages.values():
        paths |= set(stage.params_files)
        paths |= {dep for dep in stage.deps if not producers(stages, dep)}
    return paths
