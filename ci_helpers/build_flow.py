"""`master-build` and the registry commands end to end: run, then publish the report."""

from __future__ import annotations

from pathlib import Path

from .build import BuildResult, MasterBuildOptions, run_master_build
from .build_report import build_failures, build_outputs, build_report_json, render_build_markdown
from .publishing import publish_report


def build_and_publish(options: MasterBuildOptions, report_path: Path | None) -> BuildResult:
    result = run_master_build(options)
    publish_report(build_report_json(result), render_build_markdown(result), build_outputs(result),
                   build_failures(result), report_path, "mlops-actions master-build")
    return result
