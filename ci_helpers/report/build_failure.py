"""The report of a main build that stopped with an error: what was done, what was not."""

from __future__ import annotations

import json
from pathlib import Path

from ..build_progress import BuildProgress
from ..errors import CIHelpersError
from .common import number
from .escape import text
from .publish import publish_report


def publish_build_failure(progress: BuildProgress, error: CIHelpersError, report_path: Path | None) -> None:
    """Nothing to publish for a refusal before the first write: its one error line says it all."""
    run = progress.run
    if run is None:
        return
    data = {
        "passed": False,
        "verdict": "error",
        "error": str(error),
        "exit_code": error.exit_code,
        "done": progress.done_texts,
        "not_done": progress.not_done_texts,
        "metrics": {k: number(v) for k, v in progress.metrics.items()},
        "mlflow": {"run_id": run.run_id, "experiment_id": run.experiment_id, "status": progress.run_status},
    }
    lines = [f"## CI build stopped: {text(str(error))}", ""]
    lines += [f"- done: {text(item)}" for item in progress.done_texts] or ["- done: nothing pushed or registered"]
    lines += [f"- **not done**: {text(item)}" for item in progress.not_done_texts]
    if progress.not_done_texts:
        lines += ["", "Re-run the build to finish: every step is safe to repeat."]
    outputs = {"passed": False, "verdict": "error", "run-id": run.run_id}
    publish_report(json.dumps(data, indent=2) + "\n", "\n".join(lines) + "\n", outputs, [], report_path, "")
