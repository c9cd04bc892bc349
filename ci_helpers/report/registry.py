"""Render and publish a registry move (`register-model`, `promote`, `rollback`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..results import RegistryOutcome
from .common import check_json, failure_text
from .escape import code, text
from .publish import publish_report


def publish_registry_outcome(outcome: RegistryOutcome, report_path: Path | None) -> None:
    data = {
        "passed": outcome.passed,
        "action": outcome.action,
        "model_name": outcome.model_name,
        "version": outcome.version,
        "model_uri": f"models:/{outcome.model_name}/{outcome.version}" if outcome.version else None,
        "alias": {
            "alias": outcome.alias.alias,
            "version": outcome.alias.version,
            "previous": outcome.alias.previous,
            "uri": outcome.alias.uri,
        }
        if outcome.alias
        else None,
        "checks": [check_json(c) for c in outcome.gate.checks] if outcome.gate else [],
    }
    lines = [f"## Model registry: {outcome.action} {code(outcome.model_name)} version {outcome.version}", ""]
    if outcome.alias:
        lines.append(
            f"Alias {code(outcome.alias.alias)}: version {outcome.alias.previous or 'unset'} → {outcome.alias.version}"
        )
    failures = [failure_text(c, None) for c in (outcome.gate.failures if outcome.gate else ())]
    lines += [f"- ❌ {text(message)}" for message in failures]
    outputs = {
        "passed": outcome.passed,
        "action": outcome.action,
        "model-name": outcome.model_name,
        "model-version": outcome.version or "",
        "model-uri": data["model_uri"] or "",
        "alias-uri": outcome.alias.uri if outcome.alias else "",
    }
    publish_report(
        json.dumps(data, indent=2) + "\n",
        "\n".join(lines) + "\n",
        outputs,
        failures,
        report_path,
        f"mlops-actions {outcome.action}",
    )
