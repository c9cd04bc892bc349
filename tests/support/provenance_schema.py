"""The statement checked against this project's stricter profile of the in-toto Statement v1 and
SLSA Provenance v1 schemas (tests/provenance_schemas; jsonschema, the test extra)."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMAS = Path(__file__).parent.parent / "provenance_schemas"


def statement_errors(statement: dict) -> list[str]:
    """Every rule the statement breaks (empty: valid)."""
    import jsonschema
    from referencing import Registry, Resource

    schemas = {path.name: json.loads(path.read_text()) for path in SCHEMAS.glob("*.json")}
    registry = Registry().with_resources(
        [(name, Resource.from_contents(schema)) for name, schema in schemas.items()]
        + [(schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()]
    )
    predicate = statement.get("predicate") if isinstance(statement.get("predicate"), dict) else {}
    found = []
    for name, document in (("in-toto-statement-v1.json", statement), ("slsa-provenance-v1.json", predicate)):
        validator = jsonschema.Draft202012Validator(schemas[name], registry=registry)
        found += [f"{name}: {error.json_path}: {error.message}" for error in validator.iter_errors(document)]
    return found


def assert_valid_statement(statement: dict) -> None:
    errors = statement_errors(statement)
    assert not errors, "\n".join(errors)
