"""What a main build has written so far, so that a failure can say what was done and what was not.

The writes come in a fixed order (push, register, dvc.lock, alias, legacy stage); a re-run of the
same build finishes whatever the list says was not done.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from .adapters import github
from .adapters.tracking import TrackedRun, finish_run
from .cancellation import signal_name
from .errors import Cancelled, CIHelpersError, InfrastructureError, RunnerResourceExhausted
from .metrics import Metrics

_NOT_DONE = {
    "push": "outputs not pushed",
    "register": "model not registered",
    "provenance": "provenance statement not written",
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
            self.planned += ["register", "provenance"]
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
        return [
            _NOT_DONE[step].format(alias=self.alias)
            for step in self.planned
            # "model not registered" says it: no statement without a version
            if step not in self.steps and not (step == "provenance" and "register" not in self.steps)
        ]

    def finish(self, status: str, failed: bool = False) -> None:
        """End the helper-owned run once: FINISHED, or FAILED or KILLED (never left RUNNING). The
        status is recorded only once the server took it, so a failure to end the run on the way
        to FINISHED leaves it to the failure path. There nothing may replace the original error:
        a failure to end the run is a warning, after a second, status-only attempt."""
        if self.run is None or self.run_status is not None:
            return
        verdict = "cancelled" if status == "KILLED" else "build-failed"
        tags = {**self.tags, "mlops.verdict": verdict} if failed else self.tags
        if not failed:
            finish_run(self.run, metrics=self.metrics, tags=tags, status=status)
            self.run_status = status
            return
        try:
            finish_run(self.run, metrics=self.metrics, tags=tags, status=status)
        except Exception as error:
            try:
                finish_run(self.run, tags={"mlops.verdict": verdict}, status=status)
            except Exception:
                github.warning(f"could not end MLflow run {self.run.run_id} as {status}: {error}")
                return
        self.run_status = status

    def summary(self, rerun_finishes: bool = True) -> str:
        """'pushed; registered v7; dvc.lock not committed: re-run the build to finish'."""
        if self.run is None:
            return "nothing was changed"
        done = "; ".join(self.done_texts) or "nothing pushed, registered or committed"
        missing = ", ".join(self.not_done_texts)
        ended = f"ended {self.run_status}" if self.run_status else "could not be ended: it shows RUNNING"
        run = f" (MLflow run {self.run.run_id} {ended})"
        if not missing:
            return f"{done}{run}"
        advice = ": re-run the build to finish" if rerun_finishes else ""
        return f"{done}; {missing}{advice}{run}"

    def explained(self, error: CIHelpersError) -> CIHelpersError:
        """The same error, its line ending with what was done and what was not. A re-run finishes
        the job after an outage, a full disk or a cancellation; after other errors the message
        names the fix first."""
        if self.run is None:
            return error
        if isinstance(error, Cancelled):
            return reworded(error, f"cancelled by {signal_name(error.signum)}: {self.record()}")
        rerun = isinstance(error, (InfrastructureError, RunnerResourceExhausted))
        return reworded(error, f"{error}. Build state: {self.summary(rerun)}")

    def record(self) -> str:
        """'done: pushed to 'storage'; registered v3; not done: dvc.lock not committed, ...'."""
        done = "; ".join(self.done_texts) or "nothing pushed, registered or committed"
        missing = ", ".join(self.not_done_texts) or "nothing"
        ended = f"ended {self.run_status}" if self.run_status else "could not be ended: it shows RUNNING"
        run = f" (MLflow run {self.run.run_id} {ended})" if self.run else ""
        advice = ": re-run the build to finish" if self.not_done_texts else ""
        return f"done: {done}; not done: {missing}{advice}{run}"


def reworded(error: CIHelpersError, message: str) -> CIHelpersError:
    """A copy of `error` (same class, exit code and attributes) saying `message`. Built without
    calling the class's __init__, whose signature differs from class to class (copy.copy would
    call it with the message alone, and fail)."""
    twin = type(error).__new__(type(error))
    twin.__dict__.update(error.__dict__)
    twin.args = (message,)
    return twin
