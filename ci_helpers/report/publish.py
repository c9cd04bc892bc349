"""Send a finished report everywhere a user looks: JSON file (always whole), job summary (cut to
GitHub's limit, see limits.py), outputs, annotations."""

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
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(redact(report_text))
    github.write_summary(fit_summary(markdown, report_path))  # report.json stays whole
    github.set_outputs({**outputs, "report-json": str(report_path) if report_path else ""})
    for message in failures:
        github.error(message, title=title)
