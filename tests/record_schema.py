"""Validate run records against docs/record.schema.json (shared by the record-producing tests)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "record.schema.json"


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(record: dict[str, Any]) -> list[str]:
    """Readable validation errors of ``record`` (empty when it is valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in sorted(validator().iter_errors(record), key=lambda e: list(map(str, e.absolute_path)))]


def validate_record(record: dict[str, Any], name: str = "record") -> dict[str, Any]:
    """Assert ``record`` matches the schema; return it (so it can wrap a loader)."""
    errors = schema_errors(record)
    assert not errors, f"{name} does not match docs/record.schema.json:\n" + "\n".join(errors[:20])
    return record
