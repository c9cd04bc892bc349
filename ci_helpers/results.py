"""What each top-level command produced, as small frozen dataclasses the reports render."""

from __future__ import annotations

from dataclasses import dataclass, field

from .adapters.registry import AliasMove, RegisteredVersion
from .adapters.tracking import TrackedRun
from .baseline import Baseline
from .evaluation import EvalReport
from .gate import GateResult
from .lock_commit import LockCommitResult
from .metrics import Metrics
from .plots import Plot
from .provenance import GitContext
from .rebuild_plan import RebuildPlan
from .sanity_checks import SanityCheck
from .trend import Trend


@dataclass(frozen=True)
class PRValidationResult:
    """Everything a report needs about one PR validation."""

    passed: bool
    verdict: str  # passed | gate-failed | not-pushed | stale-lock
    git: GitContext
    sanity: tuple[SanityCheck, ...]
    evaluation: EvalReport | None = None
    baseline: Baseline | None = None
    gate: GateResult | None = None
    run: TrackedRun | None = None
    experiment: str | None = None
    # params file -> param -> {"old", "new"} against the baseline commit, as `dvc params diff`
    # shows it; None when no baseline ref was given or DVC could not read it
    params_diff: dict[str, dict[str, dict[str, object]]] | None = None
    tracking_error: str | None = None  # MLflow could not be reached: the verdict is still reported
    # the project's plots as DVC read them after evaluation, for the report; they gate nothing
    plots: tuple[Plot, ...] = ()
    plots_warning: str | None = None  # DVC could not read the plots at all
    # the gated metrics over the last N main builds, from MLflow; None when turned off (N = 0)
    trend: Trend | None = None


@dataclass(frozen=True)
class BuildResult:
    """Everything the report and the step outputs need about one main build."""

    passed: bool
    verdict: str  # passed | gate-failed | superseded
    git: GitContext
    plan: RebuildPlan
    metrics: Metrics
    run: TrackedRun | None  # None: stopped before opening one (superseded)
    experiment: str
    provenance: dict[str, str]
    gate: GateResult
    baseline: Baseline | None = None
    lock: LockCommitResult | None = None
    registered: RegisteredVersion | None = None
    alias: AliasMove | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    trend: Trend | None = None  # the gated metrics over the previous N builds of the branch
    superseded_by: str | None = None  # the newer commit that owns the branch's dvc.lock or the alias
    statement_path: str | None = None  # the version's provenance statement, copied to a file
    subject_checksums_path: str | None = None  # its subjects in sha256sum format, for attest-build-provenance
    model_path: str | None = None  # the model file or folder in the workspace, when registered from a path


@dataclass(frozen=True)
class RegistryOutcome:
    """What `register-model`, `promote` or `rollback` did."""

    passed: bool
    action: str  # registered | promoted | rolled-back | gate-failed
    model_name: str
    version: str | None = None
    registered: RegisteredVersion | None = None
    alias: AliasMove | None = None
    gate: GateResult | None = None
