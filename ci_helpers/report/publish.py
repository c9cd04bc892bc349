"""Send a finished report everywhere a user looks: outputs, JSON file (always whole), job summary
(cut to GitHub's limit, see limits.py), annotations."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..adapters import github
from ..adapters.redact import redact
from .limits import fit_summary


def publish_report(
    report_text: str,
    markdown: str,
    outputs: Mapping[str, object],
    failures: list[str],
    report_path: Path | None,
    title: str,
) -> None:
    """The step outputs first (a deploy job reads them), then the JSON report: a failure to write
    either raises. The job summary and the annotations come last; a failure there is a warning,
    since the same facts are already in the outputs and the report."""
    github.set_outputs({**outputs, "report-json": str(report_path) if report_path else ""})
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            report_path.write_text(redact(report_text))
        except OSError as error:  # a write error names no file: name it (a full disk says where)
            raise OSError(error.errno, error.strerror, str(report_path)) from error
    try:
        github.write_summary(fit_summary(markdown, report_path))  # report.json stays whole
    except OSError as error:
        github.warning(f"could not write the job summary ({error}); the report is in the step outputs")
    for message in failures:
        github.error(message, title=title)
