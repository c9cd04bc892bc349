"""What a main build has written so far, so that a failure can say what was done and what was not.

The writes come in a fixed order (push, register, dvc.lock, alias, legacy stage); a re-run of the
same build finishes whatever the list says was not done.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field

from .adapters import github
from .adapters.tracking import TrackedRun, finish_run
from .errors import CIHelpersError, InfrastructureError
from .metrics import Metrics

_NOT_DONE = {
    "push": "outputs not pushed",
    "register": "model not registered",
    "lock": "dvc.lock not committed",
    "alias": "alias '{alias}' not moved",
    "stage": "stage not set",
}


@dataclass
class BuildProgress:
    planned: list[str] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)  # step -> what was done, in order
    run: TrackedRun | None = None
    metrics: Metrics = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    alias: str = ""
    run_status: str | None = None

    def plan(self, registering: bool, lock_mode: str, alias: str, stage: str | None) -> None:
        self.alias = alias
        self.planned = ["push"]
        if registering:
            self.planned.append("register")
        if lock_mode != "none":
            self.planned.append("lock")
        if registering:
            self.planned += ["alias", *(["stage"] if stage else [])]

    def done(self, step: str, text: str) -> None:
        self.steps[step] = text
        sys.stderr.write(f"mlops: done: {text}\n")

    @property
    def done_texts(self) -> list[str]:
        return list(self.steps.values())

    @property
    def not_done_texts(self) -> list[str]:
        return [_NOT_DONE[step].format(alias=self.alias) for step in self.planned if step not in self.steps]

    def finish(self, status: str, failed: bool = False) -> None:
        """End the helper-owned run once: FINISHED, or FAILED (never left RUNNING)."""
        if self.run is None or self.run_status is not None:
            return
        self.run_status = status
        tags = {**self.tags, "mlops.verdict": "build-failed"} if failed else self.tags
        try:
            finish_run(self.run, metrics=self.metrics, tags=tags, status=status)
        except CIHelpersError as error:
            if not failed:
                raise
            github.warning(f"could not end MLflow run {self.run.run_id} as {status}: {error}")

    def summary(self, rerun_finishes: bool = True) -> str:
        """'pushed; registered v7; dvc.lock not committed: re-run the build to finish'."""
        if self.run is None:
            return "nothing was changed"
        done = "; ".join(self.done_texts) or "nothing pushed, registered or committed"
        missing = ", ".join(self.not_done_texts)
        run = f" (MLflow run {self.run.run_id} ended {self.run_status or 'FAILED'})"
        if not missing:
            return f"{done}{run}"
        advice = ": re-run the build to finish" if rerun_finishes else ""
        return f"{done}; {missing}{advice}{run}"

    def explained(self, error: CIHelpersError) -> CIHelpersError:
        """The same error, its line ending with what was done and what was not. A re-run finishes
        the job after an outage (exit 3); after other errors the message names the fix first."""
        if self.run is None:
            return error
        explained = copy.copy(error)
        explained.args = (f"{error}. Build state: {self.summary(isinstance(error, InfrastructureError))}",)
        return explained
