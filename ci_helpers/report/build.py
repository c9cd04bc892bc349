"""Render a BuildResult (master-build): JSON report, job summary, step outputs, annotations."""

from __future__ import annotations

import json

from ..mlflow_links import model_version_link, run_link
from ..results import BuildResult
from .common import (
    baseline_json,
    baseline_text,
    check_json,
    failing_checks_block,
    failure_text,
    metrics_block,
    number,
)
from .escape import code, text
from .limits import Block, Markdown
from .trend import link_markdown, trend_json, trend_section


def build_report_dict(result: BuildResult) -> dict:
    lock, registered, alias = result.lock, result.registered, result.alias
    return {
        "passed": result.passed,
        "verdict": result.verdict,
        "metrics": {k: number(v) for k, v in result.metrics.items()},
        "baseline": {k: number(v) for k, v in result.baseline.metrics.items()} if result.baseline else None,
        "baseline_source": baseline_json(result.baseline),
        "checks": [check_json(c) for c in result.gate.checks],
        "git": {"commit": result.git.commit, "branch": result.git.branch},
        "stages": {
            "forced": list(result.plan.forced),
            "downstream": list(result.plan.downstream),
            "upstream_reused_or_rebuilt": list(result.plan.upstream),
            "pulled": list(result.plan.pull_targets),
        },
        "provenance": result.provenance,
        "superseded_by": result.superseded_by,
        "mlflow": {
            "tracking_uri": result.run.tracking_uri,
            "experiment": result.experiment,
            "experiment_id": result.run.experiment_id,
            "run_id": result.run.run_id,
            "run_url": run_link(result.run.tracking_uri, result.run.experiment_id, result.run.run_id).url,
        }
        if result.run
        else None,
        "lock": {
            "mode": lock.mode,
            "status": lock.status,
            "commit": lock.commit,
            "tag": lock.tag,
            "attempts": lock.attempts,
            "detail": lock.detail,
            "superseded_by": lock.superseded_by,
        }
        if lock
        else None,
        "model": {
            "name": registered.name,
            "version": registered.version,
            "uri": registered.uri,
            "source": registered.source,
            "reused": registered.reused,
            "url": model_version_link(result.run.tracking_uri, registered.name, registered.version).url,
        }
        if registered and result.run
        else None,
        "alias": {"alias": alias.alias, "version": alias.version, "previous": alias.previous, "uri": alias.uri}
        if alias
        else None,
        "notes": list(result.notes),
        "trend": trend_json(result.trend),
    }


def build_report_json(result: BuildResult) -> str:
    return json.dumps(build_report_dict(result), indent=2) + "\n"


def _verdict_text(result: BuildResult) -> str:
    if result.superseded_by:
        return f"⏭️ superseded by `{result.superseded_by[:12]}`"
    return "✅ passed" if result.passed else "❌ failed: metrics gate (no alias moved)"


def render_build_markdown(result: BuildResult) -> Markdown:
    """The job summary: verdict, failed checks, what was rebuilt, the metrics table (gated metrics
    first), then the lock, model and alias; as blocks that the size limits cut between."""
    title = (
        f"## CI build of `{result.git.commit[:12]}` on {code(result.git.branch or 'detached')}: {_verdict_text(result)}"
    )
    if result.run is None:  # stopped before training: a newer build owns the lock or the alias
        notes = tuple(f"- {text(note)}" for note in result.notes)
        return Markdown([Block("the verdict", head=(title, "", *notes), essential=True)])
    blocks = [Block("the verdict", head=(title, ""), essential=True)]
    failing = failing_checks_block([failure_text(c, result.baseline) for c in result.gate.failures])
    if failing:
        blocks.append(failing)
    rebuilt = (
        f"Rebuilt (forced): {', '.join(map(code, result.plan.forced))}; "
        f"downstream: {', '.join(map(code, result.plan.downstream)) or '—'}"
    )
    baseline = result.baseline.metrics if result.baseline else {}
    blocks.append(
        Block("the build lines", head=(rebuilt, "", f"Baseline: {baseline_text(result.baseline)}", ""), essential=True)
    )
    blocks.append(metrics_block(result.metrics, baseline, result.gate.checks, "CI build"))
    match = result.provenance.get("mlops.dev_model_matches_ci")
    lines = ["", f"Developer's model hash matches the CI build: **{match}**"]
    if result.lock:
        lines.append(
            f"dvc.lock: **{result.lock.status}** {result.lock.commit or ''} {text(result.lock.detail)}".rstrip()
        )
    if result.registered:
        reused = " (reused: this commit was registered before)" if result.registered.reused else ""
        model = model_version_link(result.run.tracking_uri, result.registered.name, result.registered.version)
        lines.append(f"Model: {link_markdown(model)}{reused}")
    if result.alias:
        lines.append(
            f"Alias: {code(result.alias.uri)} → version {result.alias.version} (was {result.alias.previous or 'unset'})"
        )
    lines += [f"- {text(note)}" for note in result.notes]
    run = link_markdown(run_link(result.run.tracking_uri, result.run.experiment_id, result.run.run_id))
    lines.append(f"MLflow: this build's {run} in experiment {code(result.experiment)}")
    blocks.append(Block("the lock, model and MLflow lines", head=tuple(lines), essential=True))
    trend = trend_section(result.trend, "this build", "this")
    if trend:
        blocks.append(Block("the trend", head=("", *trend)))
    return Markdown(blocks)


def build_failures(result: BuildResult) -> list[str]:
    return [f"CI-built model fails the gate: {failure_text(c, result.baseline)}" for c in result.gate.failures]


def build_outputs(result: BuildResult) -> dict[str, object]:
    return {
        "passed": result.passed,
        "verdict": result.verdict,
        "metrics": {k: number(v) for k, v in result.metrics.items()},
        "run-id": result.run.run_id if result.run else "",
        "model-name": result.registered.name if result.registered else "",
        "model-version": result.registered.version if result.registered else "",
        "model-uri": result.registered.uri if result.registered else "",
        "alias-uri": result.alias.uri if result.alias else "",
        "lock-status": result.lock.status if result.lock else "",
        "lock-commit": (result.lock.tag or result.lock.commit or "") if result.lock else "",
        "superseded-by": result.superseded_by or "",
        "model-path": result.model_path or "",
        "statement-path": result.statement_path or "",
        "subject-checksums": result.subject_checksums_path or "",
    }
