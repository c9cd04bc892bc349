"""Checks that a PR's DVC state is complete: everything pushed, dvc.lock current."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from .adapters import git
from .errors import ValidationFailed
from .project import Project, read_pipeline_status
from .push_check import PushBase, verify_pushed


@dataclass(frozen=True)
class SanityCheck:
    name: str
    passed: bool
    problems: tuple[str, ...]
    fix: str
    detail: str = ""  # what the check trusted and asked, for the log and the report

    @property
    def message(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        if self.passed:
            return f"{self.name}: ok{detail}"
        return f"{self.name}: {'; '.join(self.problems)}{detail}. Fix: {self.fix}"


def check_pushed(
    project: Project, remote: str, endpoint: str, base: PushBase | None = None, deep: bool = False
) -> SanityCheck:
    """Every cached out recorded in the lock files and .dvc files is on the remote; a directory
    out only when its manifest and every file it lists are (`dvc status --cloud` stops at the
    manifest). What `base` records is trusted unless `deep` (see push_check)."""
    recorded = {out.path: out.md5 for out in project.outs if out.cached and out.md5}
    checked = verify_pushed(project.root, remote, endpoint, recorded, base, deep) if recorded else None
    unpushed = checked.missing if checked else ()
    return SanityCheck(
        "pushed",
        not unpushed,
        tuple(f"{path} is not on remote '{remote}'" for path in sorted(unpushed)),
        f"run `dvc push -r {remote}` on the PR branch and push again",
        checked.detail if checked else "nothing DVC caches is recorded",
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


def _not_rerun_reasons(project: Project, already: list[str]) -> list[str]:
    """Stages whose recorded input is not what its producer's lock entry now records: the producer
    was re-run and this stage was not. Read from the lock files alone, so it holds in a fresh clone
    where `dvc status` only sees the never-pulled dep as `deleted`."""
    reasons = []
    for stage in project.pipeline_stages:
        for dep, recorded in stage.dep_md5s:
            producer = project.out_covering(dep)
            if producer is None or producer.path != dep or not producer.md5 or producer.md5 == recorded:
                continue
            if any(f"stage '{stage.name}': dependency {dep} " in reason for reason in already):
                continue
            reasons.append(
                f"stage '{stage.name}': dependency {dep} changed (rebuilt by '{producer.stage}') "
                f"but '{stage.name}' was not re-run"
            )
    return reasons


def check_lock_fresh(project: Project) -> SanityCheck:
    """dvc.lock matches dvc.yaml, params and code, and every stage was re-run after the stages it
    depends on (in a fresh clone too, where data was never pulled)."""
    reasons = [f"stage '{stage.name}' is not in dvc.lock" for stage in project.pipeline_stages if not stage.locked]
    # An out added to a locked stage has no recorded hash; `dvc status` calls it `deleted`, the same
    # word as a never-pulled out in a fresh clone, so only the lock itself tells the two apart.
    reasons += [
        f"stage '{stage.name}': output {out.path} is in dvc.yaml but not in dvc.lock"
        for stage in project.pipeline_stages
        if stage.locked
        for out in stage.outs
        if out.md5 is None
    ]
    for stage, changes in read_pipeline_status(project).items():
        reasons += _stale_reasons(stage, changes)
    reasons += _not_rerun_reasons(project, reasons)
    return SanityCheck(
        "lock-fresh",
        not reasons,
        tuple(reasons),
        "run `dvc repro`, then commit dvc.lock (and `dvc push`)",
    )


def _record_file(project: Project, out_path: str) -> str:
    """The file that records an out's hash: its stage's dvc.lock, or the `.dvc` file itself."""
    stage = project.stage(next(out.stage for out in project.outs if out.path == out_path))
    if stage.is_data_source:
        return stage.dvcfile
    return str(PurePosixPath(stage.dvcfile).with_suffix(".lock"))


def check_rebuild_inputs_pushed(
    project: Project,
    inputs: tuple[str, ...],
    remote: str,
    endpoint: str,
    base: PushBase | None = None,
    deep: bool = False,
) -> str:
    """Preflight of master-build, before its MLflow run opens: every cached out that holds an
    input the rebuild pulls is wholly on the remote (what `base` records trusted unless `deep`).
    ValidationFailed (exit 1) names the paths and the commit that recorded them: the most common
    mistake is a merge without `dvc push`. Returns what was trusted and asked, for the log."""
    covering = {out.path: out.md5 for path in inputs if (out := project.out_covering(path)) and out.cached and out.md5}
    checked = verify_pushed(project.root, remote, endpoint, covering, base, deep) if covering else None
    missing = checked.missing if checked else ()
    if not missing:
        return checked.detail if checked else ""
    recorded_by = []
    for path in missing:
        record = project.git_path(_record_file(project, path))
        commit = git.git(project.git_root, "log", "-1", "--format=%h", "--", record).strip()
        recorded_by.append(f"{path} ({record} of commit {commit})" if commit else f"{path} ({record})")
    raise ValidationFailed(
        f"merged without `dvc push`: {', '.join(recorded_by)} not on remote '{remote}' ({endpoint}); "
        f"run `dvc push -r {remote}` where it was made (the merged branch), then re-run the build"
    )
