"""The baseline a regression gate compares with: the metrics committed at another git ref."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .adapters import git
from .metrics import Metrics, merge_metrics, parse_metrics_text


@dataclass(frozen=True)
class Baseline:
    ref: str
    commit: str
    metrics: Metrics
    files: tuple[str, ...] = ()  # the metrics files looked up at the ref
    found: tuple[str, ...] = ()  # those that exist there


def read_baseline(repo: Path, ref: str, metrics_files: tuple[str, ...]) -> Baseline:
    """Metrics committed at `ref` (fetched first if the checkout lacks it); `metrics_files` are
    relative to the project root `repo`."""
    commit = git.resolve_ref(repo, ref)
    per_file = {}
    for name in metrics_files:
        text = git.read_file_at(repo, commit, name)
        if text is not None:
            per_file[name] = parse_metrics_text(text, name)
    return Baseline(ref, commit, merge_metrics(per_file), tuple(metrics_files), tuple(per_file))
