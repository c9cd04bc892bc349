"""Checks that a PR's DVC state is complete: everything pushed, dvc.lock current."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import dvc


@dataclass(frozen=True)
class SanityCheck:
    name: str
    passed: bool
    problems: tuple[str, ...]
    fix: str

    @property
    def message(self) -> str:
        if self.passed:
            return f"{self.name}: ok"
        return f"{self.name}: {'; '.join(self.problems)}. Fix: {self.fix}"


def check_pushed(repo: Path, remote: str, endpoint: str) -> SanityCheck:
    """Every output recorded in dvc.lock and .dvc files is present on the remote."""
    status = dvc.cloud_status(repo, remote, endpoint)
    # "deleted" = on the remote but not in the local cache: fine for a fresh CI checkout.
    unpushed = sorted(path for path, state in status.items() if state in ("new", "missing"))
    return SanityCheck(
        "pushed",
        not unpushed,
        tuple(f"{path} is not on remote '{remote}'" for path in unpushed),
        f"run `dvc push -r {remote}` on the PR branch and push again",
    )


_STALE_STATES = ("modified", "new")


def _stale_reasons(stage: str, changes: list) -> list[str]:
    reasons = []
    for change in changes:
        if change == "changed command":
            reasons.append(f"stage '{stage}': command changed in dvc.yaml")
        elif isinstance(change, dict):
            for path, state in (change.get("changed deps") or {}).items():
                if isinstance(state, dict):  # params file: {param: state}
                    for param, param_state in state.items():
                        reasons.append(f"stage '{stage}': param {param} in {path} {param_state}")
                elif state in _STALE_STATES:
                    reasons.append(f"stage '{stage}': dependency {path} {state}")
            for path, state in (change.get("changed outs") or {}).items():
                if state in _STALE_STATES:
                    reasons.append(f"stage '{stage}': output {path} {state} without `dvc commit`")
    return reasons


def check_lock_fresh(repo: Path) -> SanityCheck:
    """dvc.lock matches dvc.yaml, params and code (data not yet pulled is ignored)."""
    lock = dvc.load_lock(repo)
    reasons = [f"stage '{name}' is not in dvc.lock" for name in dvc.stage_names(repo) if name not in lock]
    for stage, changes in dvc.pipeline_status(repo).items():
        reasons += _stale_reasons(stage, changes)
    return SanityCheck(
        "lock-fresh",
        not reasons,
        tuple(reasons),
        "run `dvc repro`, then commit dvc.lock (and `dvc push`)",
    )
