"""`trace` output: the lineage as plain-text tables for a terminal, and as JSON with the same facts."""

from __future__ import annotations

from dataclasses import asdict

from ..adapters.redact import redact
from ..lineage import UNKNOWN, AliasMoveRecord, Lineage, PullRequest

TRACE_SCHEMA = "mlops-actions/trace/v1"


def _short(commit: str | None) -> str:
    return commit[:12] if commit else UNKNOWN


def _pull(pull: PullRequest | None) -> str:
    if pull is None:
        return UNKNOWN
    title = f" {pull.title}" if pull.title else ""
    return f"{pull.kind} {pull.label}{title}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def _move_who(move: AliasMoveRecord) -> str:
    return " / ".join(part for part in (move.by, move.reason) if part) or UNKNOWN


def render_trace(lineage: Lineage) -> str:
    """The walk from the version back to its PR, its data and its CI run, then the alias moves."""
    pull = lineage.pull_request
    facts = [
        ["model version", f"models:/{lineage.model}/{lineage.version} (asked: {lineage.asked})"],
        ["aliases now", ", ".join(lineage.aliases) or "none"],
        ["MLflow run", lineage.run_id or UNKNOWN],
        ["model source", lineage.source or UNKNOWN],
        ["commit", lineage.commit or UNKNOWN],
        ["branch", lineage.branch or UNKNOWN],
        ["pull request", _pull(pull) + (f" {pull.url}" if pull and pull.url else "")],
        ["  found", lineage.pull_request_note],
        ["lock commit", lineage.lock_commit or "none recorded"],
        ["CI run", lineage.ci_run_url or "none recorded (not built in CI, or built before it was tagged)"],
    ]
    lines = [f"Trace of {lineage.asked}", "", *_table(["what", "value"], facts), ""]
    remote = f" on {lineage.remote}" if lineage.remote else ""
    lines.append(f"Data used by this build ({lineage.data_note or 'no recorded hashes'}; presence{remote})")
    if lineage.data:
        rows = [
            [item.path, item.md5, item.produced_by, ", ".join(item.used_by) or "-", item.held, item.recorded_in]
            for item in lineage.data
        ]
        lines += _table(["path", "md5", "made by", "read by", "remote", "recorded in"], rows)
    else:
        lines.append("none")
    lines += ["", "Alias moves (oldest first)"]
    if lineage.moves:
        rows = [
            [
                str(number),
                move.at or UNKNOWN,
                move.alias,
                f"{move.previous or 'unset'} -> {move.version or 'unset'}"
                + (" (rollback)" if move.rolled_back else ""),
                _short(move.commit),
                _pull(move.pull_request),
                move.ci_run_url or "none recorded",
                _move_who(move),
            ]
            for number, move in enumerate(lineage.moves, 1)
        ]
        lines += _table(
            ["#", "when", "alias", "version", "commit", "pull request", "from which build", "by / why"], rows
        )
    else:
        lines.append("none recorded")
    return redact("\n".join(lines) + "\n")


def trace_json(lineage: Lineage) -> dict:
    """The same facts as the tables, as data."""
    return {"schema": TRACE_SCHEMA, **asdict(lineage)}
