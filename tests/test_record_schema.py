"""docs/record.schema.json: checked against the code, and every kind of record validates against it."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from nbdiag.core import codes
from nbdiag.core.jsonio import jsonable
from nbdiag.core.errors import InputError
from nbdiag.record.build import _error_record, audit_saved_design
from record_schema import SCHEMA_PATH, schema_errors, validate_record

PACKAGE = Path(codes.__file__).resolve().parents[1]
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _roundtrip(record: dict) -> dict:
    return json.loads(json.dumps(jsonable(record)))


@pytest.fixture(scope="module")
def demo_records(demo_output) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(demo_output.rglob("*_nbdiag.json"))}


def test_schema_is_a_valid_draft_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_schema_codes_are_the_registry():
    assert SCHEMA["$defs"]["code"]["enum"] == list(codes.REGISTRY)
    assert codes.main(["--check-schema", str(SCHEMA_PATH)]) == 0


def test_every_demo_record_validates(demo_records):
    assert len(demo_records) == 21
    for name, record in demo_records.items():
        validate_record(record, name)


def _record_keys_in(path: Path) -> set[str]:
    """Top-level record keys a module writes: record["k"] = / record.setdefault("k") / record.update({...}) /
    record = {...} and the dict returned by _base_record."""
    keys: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))

    def dict_keys(node):
        return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "record" \
                and isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "record":
            if node.func.attr == "setdefault" and isinstance(node.args[0], ast.Constant):
                keys.add(node.args[0].value)
            elif node.func.attr == "update" and node.args and isinstance(node.args[0], ast.Dict):
                keys |= dict_keys(node.args[0])
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "record" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            keys |= dict_keys(node.value)
        elif isinstance(node, ast.FunctionDef) and node.name == "_base_record":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                    keys |= dict_keys(ret.value)
    return keys


def test_schema_covers_every_top_level_key_the_code_writes(demo_records):
    written = _record_keys_in(PACKAGE / "record" / "build.py") | _record_keys_in(PACKAGE / "outputs" / "files.py")
    assert {"nbdiag_version", "run", "settings", "design", "contrasts", "findings", "status", "error",
            "source"} <= written  # the scan sees record.py's writes
    seen = {k for r in demo_records.values() for k in r}
    assert written | seen <= set(SCHEMA["properties"]), sorted((written | seen) - set(SCHEMA["properties"]))
    assert set(SCHEMA["required"]) <= seen


def test_the_key_scan_finds_writes(tmp_path):
    mod = tmp_path / "m.py"
    mod.write_text("def _base_record():\n    return {'a': 1}\n\ndef f(record):\n    record['b'] = 1\n"
                   "    record.update({'c': 2})\n    record.setdefault('d', {})\n    record = {'e': 3}\n")
    assert _record_keys_in(mod) == {"a", "b", "c", "d", "e"}


def _saved_design(demo_output) -> Path:
    return sorted(demo_output.rglob("*_desc-nortdur_design.tsv"))[0]


@pytest.mark.parametrize("contrasts", [["zero_back", "two_back - zero_back"], ["zero_back", "no_such - column"]],
                         ids=["valid", "invalid_contrast"])
def test_saved_design_record_validates(demo_output, contrasts):
    record, _ = audit_saved_design(_saved_design(demo_output), contrasts=contrasts)
    record = validate_record(_roundtrip(record.to_json()), "saved-design record")
    assert record["variant"] == "saved"
    if "no_such - column" in contrasts:  # an invalid contrast gives status error without an error object
        assert record["status"] == "error" and "error" not in record
        assert record["contrasts"]["no_such - column"]["findings"] == [codes.CONTRAST_INVALID.code]


def _error_records(demo_records) -> list[dict]:
    base = next(r for r in demo_records.values() if r["variant"] == "nortdur")
    head = {k: copy.deepcopy(base[k]) for k in ("nbdiag_version", "nilearn_version", "run", "variant",
                                                 "settings", "notes")}
    bad = InputError("onset is not a number", file="sub-01_events.tsv", column="onset", row=4,
                     expected="a number", found="abc", code=codes.EVENTS_INVALID.code)
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        internal = _error_record(copy.deepcopy(head), exc, [])
    return [_roundtrip(_error_record(copy.deepcopy(head), bad, [])), _roundtrip(internal)]


def test_error_records_validate(demo_records):
    input_error, internal = _error_records(demo_records)
    validate_record(input_error, "input-error record")
    validate_record(internal, "internal-error record")
    assert input_error["error"]["code"] == codes.EVENTS_INVALID.code and input_error["status"] == "error"
    assert internal["error"]["code"] == codes.INTERNAL_ERROR.code
    assert internal["findings"][0]["code"] == codes.AUDIT_FAILED.code and "traceback" in internal["error"]


def _one_demo_record(demo_records) -> dict:
    return copy.deepcopy(next(r for r in demo_records.values() if r["findings"] and r["whatif"]))


MUTATIONS = {
    "unknown finding code": lambda r: r["findings"][0].update(code="not_a_code"),
    "missing status": lambda r: r.pop("status"),
    "bad status": lambda r: r.update(status="ok"),
    "finding without evidence": lambda r: r["findings"][0].pop("evidence"),
    "severity outside the scale": lambda r: r["findings"][0].update(severity="critical"),
    "score is text": lambda r: r["findings"][0].update(score="high"),
    "audited run without a design": lambda r: r.pop("design"),
    "error object with status warn": lambda r: r.update(
        status="warn", error={"code": "events_invalid", "message": "x"}),
    "unknown column role": lambda r: r["design"]["columns"][0].update(role="nuisance"),
    "contrast vector without variance": lambda r: next(iter(r["contrasts"].values())).pop("variance"),
    "unknown cause of a sensitivity entry": lambda r: next(iter(r["contrasts"].values()))["sensitivity"][0].update(
        cause="whatever"),
    "bad magnitude_source": lambda r: next(iter(r["contrasts"].values()))["sensitivity"][0].update(
        magnitude_source="guessed"),
    "measured steady median is text": lambda r: r["measured"]["signals"].update(nonsteady={"steady_median": "big"}),
    "contrast's measured estimate is text": lambda r: next(iter(r["contrasts"].values()))["measured"].update(
        nonsteady={"estimate": "big"}),
    "unknown what-if code": lambda r: r["whatif"][0].update(code="apply_mask"),
    "contrast finding list names an unknown code": lambda r: next(iter(r["contrasts"].values()))["findings"].append(
        "nope"),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS), ids=list(MUTATIONS))
def test_schema_rejects_broken_records(demo_records, mutation):
    record = _one_demo_record(demo_records)
    assert schema_errors(record) == []
    MUTATIONS[mutation](record)
    assert schema_errors(record), f"schema accepted a record with {mutation}"


def test_wave_two_fields_validate_when_present(demo_records):
    record = _one_demo_record(demo_records)
    signal = {"estimate_ols": 1.2, "estimate": 1.1, "se": 0.3, "t": 3.7, "noise_model": "ar1",
              "by_class": {"nonsteady": 4.0}}
    contrast = next(iter(record["contrasts"].values()))
    contrast["measured"] = {"nonsteady": signal}
    contrast["sensitivity"][0]["magnitude_source"] = "measured:non_steady_state_outlier00"
    contrast["sensitivity"][1]["magnitude_source"] = "assumed"
    record["manifest"] = {"anything": ["new", "fields", "are", "allowed"]}
    assert schema_errors(record) == []
