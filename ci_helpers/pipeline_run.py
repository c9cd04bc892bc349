"""What the scheduled pipeline's first task did, as the next tasks (on other workers, perhaps)
need it: a frozen dataclass that travels between Airflow tasks as JSON (XCom)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from .metrics import Metrics, MetricValue, metric_value
from .project import Project
from .report.common import number

SCHEDULED_KIND = "airflow"  # the `mlops.kind` tag of the runs and versions this flow makes
OUTPUTS_TAG = "mlops.outputs_md5"  # a version's outputs fingerprint: the same outputs reuse it
STAGE_RAN = re.compile(r"Running stage '([^']+)'")


@dataclass(frozen=True)
class PipelineRun:
    """What `reproduce_pipeline` did, as the next tasks need it."""

    project_dir: str
    tracking_uri: str
    commit: str
    fingerprint: str  # the pipeline's outputs as the lock files record them
    changed: bool  # False: nothing ran, the outputs are those of `unchanged_since`
    run_id: str | None = None
    experiment_id: str | None = None
    stages_ran: tuple[str, ...] = ()
    metrics: Metrics = field(default_factory=dict)
    unchanged_since: str | None = None  # the version promoted from these very outputs
    # checkout per task (repo_url): where the later tasks check out `commit` (no secret), and the
    # inputs fingerprint
    source: dict | None = None
    inputs: str | None = None
    worker: str | None = None  # the host the first task ran on

    def as_xcom(self) -> dict:
        return {**asdict(self), "stages_ran": list(self.stages_ran), "metrics": json_metrics(self.metrics)}

    @classmethod
    def from_xcom(cls, data: dict) -> PipelineRun:
        return cls(**{**data, "stages_ran": tuple(data.get("stages_ran") or ()), "metrics": float_metrics(data)})

    @property
    def summary(self) -> str:
        if not self.changed:
            return f"nothing changed since v{self.unchanged_since}: no stage, MLflow run or registry write"
        return f"stages run: {', '.join(self.stages_ran) or 'none'}; MLflow run {self.run_id}"


def json_metrics(metrics: Mapping[str, MetricValue]) -> dict:
    return {key: number(value) for key, value in metrics.items()}


def float_metrics(data: dict) -> Metrics:
    return {key: metric_value(value) for key, value in (data.get("metrics") or {}).items()}


def outputs_fingerprint(project: Project) -> str:
    """One hash of every out's md5 as the lock files record them: equal fingerprints, equal outputs."""
    recorded = sorted((out.path, out.md5) for out in project.outs if out.md5)
    return hashlib.sha256(json.dumps(recorded).encode()).hexdigest()
