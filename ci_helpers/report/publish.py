"""Send a finished report everywhere a user looks: JSON file, job summary, outputs, annotations."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..adapters import github
from ..adapters.redact import redact


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
    github.write_summary(markdown)
    github.set_outputs({**outputs, "report-json": str(report_path) if report_path else ""})
    for message in failures:
        github.error(message, title=title)
