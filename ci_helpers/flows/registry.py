"""`register-model`, `promote` and `rollback`: registry moves on their own, with an optional gate."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from ..adapters.registry import (
    RegisteredVersion,
    check_model_uri,
    find_run_model,
    register_version,
    resolve_alias,
    rollback_alias,
    set_alias,
    transition_stage,
    version_metrics,
)
from ..adapters.tracking import check_tracking_server
from ..build_progress import reworded
from ..errors import CIHelpersError, ConfigError
from ..gate import evaluate_gate, parse_gate_rules
from ..provenance_record import StatementFacts, WrittenStatement, attach_statement
from ..provenance_statement import BuildParameters, builder_id, invocation_id, tool_version
from ..registry_names import validate_alias, validate_model_name, validate_stage
from ..report.registry import publish_registry_outcome
from ..results import RegistryOutcome


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"malformed --tag '{item}': expected KEY=VALUE, e.g. team=forecasting")
        parsed[key.strip()] = value
    return parsed


def register_model(
    tracking_uri: str,
    model_name: str,
    run_id: str | None,
    model_uri: str | None,
    tags: tuple[str, ...],
    alias: str | None,
    stage: str | None,
    model_artifact_path: str = "model",
    report_path: Path | None = None,
) -> RegistryOutcome:
    """Register a run's model or a model URI, then point the alias at it; publish the outcome."""
    name = validate_model_name(model_name)
    alias = validate_alias(alias) if alias else None
    parsed = _parse_tags(tags)
    stage = validate_stage(stage) if stage else None
    if bool(run_id) == bool(model_uri):
        raise ConfigError("pass exactly one of --run-id or --model-uri")
    check_tracking_server(tracking_uri)
    source_run: str | None = run_id
    if run_id:
        source, model_id = find_run_model(tracking_uri, run_id, model_artifact_path)
    else:
        assert model_uri
        source, model_id, source_run = check_model_uri(tracking_uri, model_uri)
    if alias and not source_run and not model_uri.startswith(("models:/", "runs:/")):  # type: ignore[union-attr]
        raise ConfigError(
            f"--model-uri {model_uri} belongs to no MLflow run, so its version could hold no provenance statement "
            f"and `ci-helpers verify` would exit 2 on it; alias '{alias}' is not moved onto such a version: register "
            "it from a run (--run-id, or runs:/<run_id>/<path>), or without --alias"
        )
    key = (REGISTRATION_TAG, registration_key(source, parsed))
    registered = register_version(
        tracking_uri, name, source, source_run, {**parsed, key[0]: key[1]}, model_id=model_id, reuse_key=key
    )
    if _attach_statement(tracking_uri, registered, alias) is None and alias:
        raise ConfigError(
            f"v{registered.version} of '{name}' has no MLflow run to hold a provenance statement; alias '{alias}' "
            "not moved onto it: register the model from its run (--run-id)"
        )
    move = (
        set_alias(tracking_uri, name, alias, registered.version, parsed.get("mlops.git_commit"), "register-model")
        if alias
        else None
    )
    if stage:
        transition_stage(tracking_uri, name, registered.version, stage)
    return _published(RegistryOutcome(True, "registered", name, registered.version, registered, move), report_path)


REGISTRATION_TAG = "mlops.registration"


def registration_key(source: str, tags: dict[str, str]) -> str:
    """What makes a registration the same one: its source and tags. A re-run of a register-model
    that failed after registering finds this version again (and finishes its statement) instead
    of making another."""
    text = json.dumps({"source": source, "tags": tags}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def promote(
    tracking_uri: str,
    model_name: str,
    from_alias: str,
    to_alias: str,
    thresholds: tuple[str, ...],
    stage: str | None,
    report_path: Path | None = None,
) -> RegistryOutcome:
    """Point `to_alias` at the version behind `from_alias`, behind an optional gate; publish the outcome."""
    name = validate_model_name(model_name)
    source, target = validate_alias(from_alias, "--from-alias"), validate_alias(to_alias, "--to-alias")
    rules, _ = parse_gate_rules(thresholds, ())
    stage = validate_stage(stage) if stage else None
    check_tracking_server(tracking_uri)
    version = resolve_alias(tracking_uri, name, source)
    gate = None
    if rules:
        gate = evaluate_gate(version_metrics(tracking_uri, name, version), list(rules), [], None)
        if not gate.passed:
            return _published(RegistryOutcome(False, "gate-failed", name, version, gate=gate), report_path)
    move = set_alias(tracking_uri, name, target, version, None, f"promote from {source}")
    if stage:
        transition_stage(tracking_uri, name, version, stage)
    return _published(RegistryOutcome(True, "promoted", name, version, alias=move, gate=gate), report_path)


def rollback(tracking_uri: str, model_name: str, alias: str, report_path: Path | None = None) -> RegistryOutcome:
    """Move `alias` back to its previous holder; publish the outcome."""
    name = validate_model_name(model_name)
    alias = validate_alias(alias)
    check_tracking_server(tracking_uri)
    move = rollback_alias(tracking_uri, name, alias)
    return _published(RegistryOutcome(True, "rolled-back", name, move.version, alias=move), report_path)


def _attach_statement(tracking_uri: str, registered: RegisteredVersion, alias: str | None) -> WrittenStatement | None:
    """The new version's provenance statement, before the alias moves; a failure says that the
    version exists without one (and the alias did not move)."""

    facts = StatementFacts(
        BuildParameters("register-model", registered.name, alias, model_source=registered.source),
        builder_id(),
        invocation_id(),
        tracking_uri,
        registered.run_id,
        registered.version,
        tool_version(),
    )

    try:
        written = attach_statement(tracking_uri, registered.name, registered.version, facts)
    except CIHelpersError as error:
        moved = f", alias '{alias}' not moved" if alias else ""
        raise reworded(
            error,
            f"{error}. Registered v{registered.version} of '{registered.name}'; its provenance statement was not "
            f"written{moved}: `ci-helpers verify` exits 2 on it; re-run the same command to finish it",
        ) from None
    if written:
        sys.stderr.write(f"mlops: done: {written.done_text} (v{registered.version})\n")
    return written


def _published(outcome: RegistryOutcome, report_path: Path | None) -> RegistryOutcome:
    publish_registry_outcome(outcome, report_path)
    return outcome
