"""The baseline a regression gate compares with: the project's metrics at another git ref, read the
way `dvc metrics show --rev` reads them: from git when committed, through DVC (its cache, else the
remote) when the metrics file is a cached out."""

from __future__ import annotations

from dataclasses import dataclass, field

from .adapters import dvc, git
from .metrics import Metrics, flatten, merge_metrics, parse_metrics_text
from .project import Project


@dataclass(frozen=True)
class Baseline:
    ref: str
    commit: str
    metrics: Metrics
    files: tuple[str, ...] = ()  # the metrics files looked up at the ref
    found: tuple[str, ...] = ()  # those that exist there
    sources: dict[str, str] = field(default_factory=dict)  # file -> "git" | "dvc"
    unreadable: tuple[str, ...] = ()  # tracked by DVC at the ref, but neither in the cache nor on the remote

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(name for name in self.files if name not in self.found)


def read_baseline(project: Project, ref: str, metrics_files: tuple[str, ...], commit: str | None = None) -> Baseline:
    """Metrics at `ref` (fetched first if the checkout lacks it; `commit` when the caller resolved
    it already); `metrics_files` are relative to the project root. A file found nowhere is left
    out: the gate then fails closed on its metrics."""
    commit = commit or git.resolve_ref(project.root, ref)
    cached = [name for name in metrics_files if (out := project.out_covering(name)) is not None and out.cached]
    per_file: dict[str, Metrics] = {}
    sources: dict[str, str] = {}
    for name in metrics_files:
        if name in cached:
            continue
        text = git.read_file_at(project.root, commit, name)
        if text is not None:
            per_file[name], sources[name] = parse_metrics_text(text, name), "git"
    unreadable: set[str] = set()
    if cached:
        read, unreadable = dvc.metrics_at_revision(project.root, commit, cached)
        for name, data in read.items():
            per_file[name], sources[name] = flatten(data), "dvc"
    found = tuple(name for name in metrics_files if name in per_file)
    return Baseline(
        ref,
        commit,
        merge_metrics({name: per_file[name] for name in found}),
        tuple(metrics_files),
        found,
        sources,
        tuple(name for name in metrics_files if name in unreadable),
    )
