"""`register-model`, `promote` and `rollback`: registry moves on their own, with an optional gate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .gate import GateResult, evaluate_gate
from .pr_validate import parse_gate_rules
from .publishing import publish_report
from .registry import (
    AliasMove, RegisteredVersion, find_run_model, register_version, resolve_alias, rollback_alias, set_alias,
    transition_stage, validate_alias, validate_model_name, version_metrics,
)
from .report import check_json, fmt
from .errors import ConfigError


@dataclass(frozen=True)
class RegistryOutcome:
    passed: bool
    action: str  # registered | promoted | rolled-back | gate-failed
    model_name: str
    version: str | None = None
    registered: RegisteredVersion | None = None
    alias: AliasMove | None = None
    gate: GateResult | None = None


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed --tag '{item}': expected KEY=VALUE, e.g. team=forecasting")
        parsed[key.strip()] = value
    return parsed


def register_model(tracking_uri: str, model_name: str, run_id: str | None, model_uri: str | None,
                   tags: tuple[str, ...], alias: str | None, stage: str | None,
                   model_artifact_path: str = "model") -> RegistryOutcome:
    name = validate_model_name(model_name)
    alias = validate_alias(alias) if alias else None
    parsed = _parse_tags(tags)
    if bool(run_id) == bool(model_uri):
        raise ConfigError("pass exactly one of --run-id or --model-uri")
    if run_id:
        source, model_id = find_run_model(tracking_uri, run_id, model_artifact_path)
    else:
        source, model_id = model_uri, (model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None)
    registered = register_version(tracking_uri, name, source, run_id, parsed, model_id=model_id)
    move = set_alias(tracking_uri, name, alias, registered.version, parsed.get("mlops.git_commit"),
                     "register-model") if alias else None
    if stage:
        transition_stage(tracking_uri, name, registered.version, stage)
    return RegistryOutcome(True, "registered", name, registered.version, registered, move)


def promote(tracking_uri: str, model_name: str, from_alias: str, to_alias: str,
            thresholds: tuple[str, ...], stage: str | None) -> RegistryOutcome:
    name = validate_model_name(model_name)
    source, target = validate_alias(from_alias, "--from-alias"), validate_alias(to_alias, "--to-alias")
    rules, _ = parse_gate_rules(thresholds, ())
    version = resolve_alias(tracking_uri, name, source)
    gate = None
    if rules:
        gate = evaluate_gate(version_metrics(tracking_uri, name, version), list(rules), [], None)
        if not gate.passed:
            return RegistryOutcome(False, "gate-failed", name, version, gate=gate)
    move = set_alias(tracking_uri, name, target, version, None, f"promote from {source}")
    if stage:
        transition_stage(tracking_uri, name, version, stage)
    return RegistryOutcome(True, "promoted", name, version, alias=move, gate=gate)


def rollback(tracking_uri: str, model_name: str, alias: str) -> RegistryOutcome:
    name = validate_model_name(model_name)
    move = rollback_alias(tracking_uri, name, validate_alias(alias))
    return RegistryOutcome(True, "rolled-back", name, move.version, alias=move)


def publish_registry_outcome(outcome: RegistryOutcome, report_path: Path | None) -> None:
    data = {
        "passed": outcome.passed, "action": outcome.action, "model_name": outcome.model_name,
        "version": outcome.version,
        "model_uri": f"models:/{outcome.model_name}/{outcome.version}" if outcome.version else None,
        "alias": {"alias": outcome.alias.alias, "version": outcome.alias.version,
                  "previous": outcome.alias.previous, "uri": outcome.alias.uri} if outcome.alias else None,
        "checks": [check_json(c) for c in outcome.gate.checks] if outcome.gate else [],
    }
    lines = [f"## Model registry: {outcome.action} `{outcome.model_name}` version {outcome.version}", ""]
    if outcome.alias:
        lines.append(f"Alias `{outcome.alias.alias}`: version {outcome.alias.previous or 'unset'} → {outcome.alias.version}")
    failures = [f"{c.metric} = {fmt(c.value)} does not meet {c.op} {fmt(c.threshold)}"
                for c in (outcome.gate.failures if outcome.gate else ())]
    lines += [f"- ❌ {message}" for message in failures]
    outputs = {"passed": outcome.passed, "action": outcome.action, "model-name": outcome.model_name,
               "model-version": outcome.version or "", "model-uri": data["model_uri"] or "",
               "alias-uri": outcome.alias.uri if outcome.alias else ""}
    publish_report(json.dumps(data, indent=2) + "\n", "\n".join(lines) + "\n", outputs, failures, report_path,
                   f"mlops-actions {outcome.action}")
