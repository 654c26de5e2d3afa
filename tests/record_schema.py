"""Validate run records against docs/record.schema.json and the typed record (shared by the record-producing tests).

:func:`validate_record` checks the schema and the round trip through the typed model
(:func:`assert_round_trip`); ``tests/conftest.py`` also round-trips every ``*_nbdiag.json``
the tests write (without the slower schema check).
"""

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


def assert_round_trip(record: dict[str, Any], name: str = "record") -> Any:
    """Assert the typed record of ``record`` gives the same JSON text back and survives its own round trip.

    Returns the typed record (:func:`nbdiag.record.model.read_record`).
    """
    from nbdiag.outputs.files import dumps_record
    from nbdiag.record.model import read_record

    typed = read_record(record)
    again = typed.to_json()
    assert dumps_record(again) == dumps_record(record), f"{name}: to_json(from_json(j)) is not the JSON written"
    assert type(typed).from_json(again) == typed, f"{name}: from_json(to_json(r)) != r"
    return typed


def validate_record(record: dict[str, Any], name: str = "record") -> dict[str, Any]:
    """Assert ``record`` matches the schema and round-trips through the typed model; return it."""
    errors = schema_errors(record)
    assert not errors, f"{name} does not match docs/record.schema.json:\n" + "\n".join(errors[:20])
    assert_round_trip(record, name)
    return record
